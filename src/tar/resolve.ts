/**
 * Root-confined path resolution (containerd `fs.RootPath`, umoci/`filepath-securejoin`): a name is
 * walked one component at a time as if `root` were `/`. Symlinks met on the way are read and
 * followed, an absolute target restarts at the root, and `..` never climbs above the root (it is
 * clamped, as the kernel does at `/`). So whatever links a layer planted, the result lies inside
 * the root — by construction, not by a string-prefix check afterwards.
 *
 * Races with *other* processes changing the tree during resolution are outside the threat model
 * (layers are applied into directories nobody else writes); within one apply every tar entry is
 * resolved after the previous one has been fully written.
 */
import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { ImgbuildError } from '../errors.js';

/** Linux's limit on symlinks followed in one lookup (MAXSYMLINKS is 40; be generous like securejoin). */
const MAX_LINKS = 255;

export class SymlinkLoopError extends ImgbuildError {
  constructor(readonly path: string) {
    super('INVALID_ARGUMENT', `too many levels of symbolic links resolving ${JSON.stringify(path)}`);
    this.name = 'SymlinkLoopError';
  }
}

export class NotADirectoryError extends ImgbuildError {
  constructor(readonly path: string, readonly component: string) {
    super('INVALID_ARGUMENT', `cannot resolve ${JSON.stringify(path)}: ${JSON.stringify(component)} is not a directory`);
    this.name = 'NotADirectoryError';
  }
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too (default true). */
  followFinal?: boolean;
  /** Create missing directories on the way, the last one included (`mkdir -p`, mode 0755): a tar entry's parent. */
  mkdirs?: boolean;
  /**
   * Treat a non-directory met mid-path like a missing component (the rest is taken lexically)
   * instead of throwing NotADirectoryError: for callers that only stat or create the result and
   * report a missing path their own way. Ignored with `mkdirs`.
   */
  lenient?: boolean;
}

export interface Resolved {
  /** Absolute host path, inside root. */
  path: string;
  /** The same location relative to root, '' for the root itself (no `.`/`..`, no leading `/`). */
  rel: string;
}

/** Splits a name into components, dropping empty and `.` parts (`..` is kept for the walker). */
function components(name: string): string[] {
  return name.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `name` inside `root` (see the module comment); returns the host path and its
 * root-relative form. Missing components are fine (the rest is taken lexically) unless `mkdirs`.
 */
export function resolveInRootSync(root: string, name: string, opts: ResolveOptions = {}): Resolved {
  const base = resolvePath(root);
  const followFinal = opts.followFinal ?? true;
  const lenient = (opts.lenient ?? false) && !opts.mkdirs;
  const stack: string[] = [];
  const queue = components(name);
  let links = 0;
  let missing = false;
  while (queue.length > 0) {
    const comp = queue.shift()!;
    if (comp === '..') {
      stack.pop(); // clamped at the root
      // After '..' the remaining path may exist again even if a deeper part did not.
      missing = false;
      continue;
    }
    const isLast = queue.length === 0;
    const host = join(base, ...stack, comp);
    if (missing) {
      if (opts.mkdirs) mkdirSync(host, { mode: 0o755 });
      else {
        stack.push(comp);
        continue;
      }
    }
    let st;
    try {
      st = lstatSync(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && !(code === 'ENOTDIR' && lenient)) {
        if (code === 'ENOTDIR') throw new NotADirectoryError(name, stack.join('/'));
        throw e;
      }
      if (opts.mkdirs) {
        mkdirSync(host, { mode: 0o755 });
        stack.push(comp);
        continue;
      }
      missing = true;
      stack.push(comp);
      continue;
    }
    if (st.isSymbolicLink() && (!isLast || followFinal)) {
      if (++links > MAX_LINKS) throw new SymlinkLoopError(name);
      const target = readlinkSync(host);
      if (target.startsWith('/')) stack.length = 0;
      queue.unshift(...components(target));
      continue;
    }
    if ((!isLast || opts.mkdirs) && !st.isDirectory()) {
      if (!lenient) throw new NotADirectoryError(name, [...stack, comp].join('/'));
      missing = true;
    }
    stack.push(comp);
  }
  return { path: join(base, ...stack), rel: stack.join('/') };
}

/** Async form of the contract: the host path of `name` resolved inside `root`, symlinks followed and clamped. */
export async function resolveInRoot(root: string, name: string, opts: ResolveOptions = {}): Promise<string> {
  return resolveInRootSync(root, name, opts).path;
}
