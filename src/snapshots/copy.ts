/**
 * `cp` between a container and the host, with Docker's rules (moby pkg/archive/copy.go):
 * - SRC must exist; a SRC ending in `/` must be a directory; `SRC/.` copies the directory's contents.
 * - DEST existing as a directory: SRC goes inside it under its own name (its contents for `/.`).
 * - DEST existing as a file: a file SRC replaces it; a directory SRC fails ("cannot copy directory").
 * - DEST missing: its parent must exist; SRC is copied as DEST (a file SRC with DEST ending in `/`
 *   fails: "no such directory").
 * - `-` is a tar stream: to stdout (entries named as SRC's base, `.` for `/.`), or from stdin
 *   extracted into DEST, which must be a directory.
 * Into the container, files are owned by root unless `archive` (then the source's uid/gid). A tar
 * from stdin is held to the rules of any layer, relative to DEST: no entry may climb out of it.
 * Paths inside the root are resolved there (resolveInRoot: a symlink to `/` or `../..` stays
 * inside); the host side is the user's own. Keeping the root still meanwhile is the caller's part
 * (containers/root-access.ts freezes a running container).
 */
import { lstat, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ImgbuildError } from '../errors.js';
import { writeAllTo } from '../fs.js';
import { applyLayer, type ApplyOptions } from '../tar/apply.js';
import { packPath } from '../tar/pack.js';
import { resolveInRootSync, NotADirectoryError } from '../tar/resolve.js';

export interface CopyOptions {
  /** `-a`: keep the source's uid/gid inside the root (default: root's). */
  archive?: boolean;
  /** `-L`: follow a symlink named by SRC. */
  followLink?: boolean;
  signal?: AbortSignal;
}

/** The ids of a root that belongs to a user namespace's range (`--userns=auto`): container 0 is the host's uid/gid. */
export interface RootIds {
  uid: number;
  gid: number;
  size: number;
}

/** A root to copy into or out of: a container's `/` as a host path. */
export interface CopyRoot {
  /** Host path of the root (may itself be a link such as /proc/<pid>/root). */
  path: string;
  /** How paths in it are named in messages (`ctr:/path`). */
  label: string;
  /** Host paths never archived (the kernel's filesystems mounted inside). */
  exclude?: ReadonlySet<string>;
  /** Refuses (throws) a resolved root-relative path the caller cannot serve (a stopped container's volume). */
  check?: (rel: string, writing: boolean) => void;
  /** Its files are owned by a range's host ids: archives carry, and copies in get, the container's. */
  ids?: RootIds;
}

export class CopyError extends ImgbuildError {
  constructor(code: ImgbuildError['code'], message: string) {
    super(code, message);
    this.name = 'CopyError';
  }
}

/** Where the entries go and what the top entry is named there. */
interface Placement {
  /** The directory to extract into. */
  dir: string;
  /** The name the source gets in it ('.' for the contents of a directory copied into `dir` itself). */
  name: string;
}

const endsWithSep = (p: string): boolean => p.endsWith('/');
const contentsOnly = (p: string): boolean => p === '.' || p.endsWith('/.');

/** The source's name in the archive: its base name, or `.` for `dir/.` and `/`. */
function sourceName(p: string): string {
  const clean = posix.normalize(p);
  if (contentsOnly(p) || clean === '/') return '.';
  return posix.basename(clean.replace(/\/+$/, ''));
}

/** Docker's words for a destination that cannot be (they differ between the host and the container side). */
interface DestMessages {
  /** DEST is a file: how it is named. */
  describe: string;
  /** DEST's parent does not exist. */
  parentMissing: string;
  /** DEST is a file but was written with a trailing `/`. */
  fileWithSlash: string;
}

/**
 * Docker's destination rules (see the module comment), given what DEST is (`dst`, followed) and
 * whether its parent is a directory.
 */
function place(srcIsDir: boolean, srcName: string, dest: string, dst: Stats | undefined, parentIsDir: boolean, m: DestMessages): Placement {
  if (dst?.isDirectory()) return { dir: dest, name: srcName };
  if (dst) {
    if (srcIsDir) throw new CopyError('FAILED_PRECONDITION', `cannot copy directory: ${m.describe} is a file`);
    if (endsWithSep(dest)) throw new CopyError('FAILED_PRECONDITION', m.fileWithSlash);
    return { dir: dirname(dest), name: basename(dest) };
  }
  if (!parentIsDir) throw new CopyError('NOT_FOUND', m.parentMissing);
  if (!srcIsDir && endsWithSep(dest)) throw new CopyError('NOT_FOUND', 'no such directory');
  return { dir: dirname(dest.replace(/\/+$/, '') || '/'), name: basename(dest.replace(/\/+$/, '')) };
}

async function statOrUndef(p: string, follow: boolean): Promise<Stats | undefined> {
  try {
    return await (follow ? stat(p) : lstat(p));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** A path resolved inside the root: host path and root-relative path ('' when it cannot be). */
function resolveIn(r: CopyRoot, p: string, follow: boolean): { path: string; rel: string } {
  try {
    return resolveInRootSync(r.path, p, { followFinal: follow, lenient: true });
  } catch (e) {
    if (e instanceof NotADirectoryError) return { path: '', rel: '' };
    throw e;
  }
}

/** What a resolved container path holds (its last component is not followed; the root itself is: /proc/<pid>/root is a link). */
function statResolved(r: { path: string; rel: string }): Promise<Stats | undefined> {
  return r.path ? statOrUndef(r.path, r.rel === '') : Promise.resolve(undefined);
}

/** `cp CTR:SRC DEST|-`: SRC inside root `r` to a host path or a tar stream. */
export async function copyOutOfRoot(r: CopyRoot, src: string, dest: string | Writable, o: CopyOptions = {}): Promise<void> {
  const follow = Boolean(o.followLink) || endsWithSep(src) || contentsOnly(src);
  const s = resolveIn(r, src, follow);
  const st = await statResolved(s);
  if (!st) throw new CopyError('NOT_FOUND', `Could not find the file ${src} in container ${r.label}`);
  if ((endsWithSep(src) || contentsOnly(src)) && !st.isDirectory()) throw new CopyError('FAILED_PRECONDITION', `${r.label}:${src}: not a directory`);
  r.check?.(s.rel, false);
  const name = sourceName(src);
  // The root itself is reached through a link (/proc/<pid>/root): name the directory, not it.
  const from = s.rel === '' ? `${s.path}/.` : s.path;
  const pack = { mode: 'plain' as const, ...(r.exclude ? { exclude: r.exclude } : {}), ...(r.ids ? { fromHostIds: r.ids } : {}), ...(o.signal ? { signal: o.signal } : {}) };
  if (typeof dest !== 'string') {
    await writeAllTo(packPath(from, name, pack), dest);
    return;
  }
  // Stat without a trailing /: a file named so is Docker's "not a directory", not a missing path.
  const dst = await statOrUndef(dest.replace(/(.)\/+$/, '$1'), true);
  const parentDir = dirname(dest.replace(/\/+$/, '') || '/');
  const parent = await statOrUndef(parentDir, true);
  const at = place(st.isDirectory(), name, dest, dst, parent?.isDirectory() ?? false, {
    describe: JSON.stringify(dest),
    parentMissing: `invalid output path: directory ${JSON.stringify(parentDir)} does not exist`,
    fileWithSlash: `stat ${dest}: not a directory`,
  });
  // As `docker cp` extracts: owned by the user running it (NoLchown), whatever -a says.
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  await applyLayer(at.dir, packPath(from, at.name, pack), { mode: 'flat', plain: true, owner, ...(o.signal ? { signal: o.signal } : {}) });
}

/** A host source: SRC as given (it names the copy) and the path packed. */
export interface HostSource {
  path: string;
  from: string;
  st: Stats;
}

/** A host source of `cp SRC CTR:DEST`, checked by Docker's rules before the container is touched. */
export async function hostSource(src: string, o: CopyOptions = {}): Promise<HostSource> {
  const st = await statOrUndef(src, Boolean(o.followLink) || endsWithSep(src) || contentsOnly(src));
  if (!st && endsWithSep(src) && (await statOrUndef(src.replace(/\/+$/, ''), false))) throw new CopyError('FAILED_PRECONDITION', `${src}: not a directory`);
  if (!st) throw new CopyError('NOT_FOUND', `lstat ${src}: no such file or directory`);
  if ((endsWithSep(src) || contentsOnly(src)) && !st.isDirectory()) throw new CopyError('FAILED_PRECONDITION', `${src}: not a directory`);
  // What is packed: the path itself (a link stays a link), or with -L or a trailing / what it names.
  const follow = Boolean(o.followLink) || endsWithSep(src) || contentsOnly(src);
  return { path: src, from: follow ? await realpath(src) : src, st };
}

/** `cp SRC|- CTR:DEST`: a host source (from hostSource) or a tar stream into DEST inside root `r`. */
export async function copyIntoRoot(r: CopyRoot, src: HostSource | Readable, dest: string, o: CopyOptions = {}): Promise<void> {
  const srcPath = 'st' in src ? src.path : undefined;
  const srcSt = 'st' in src ? src.st : undefined;
  const describe = `${r.label}:${dest}`;
  const d = resolveIn(r, dest, true);
  const dst = await statResolved(d);
  const apply: ApplyOptions = {
    mode: 'flat',
    plain: true,
    ...(o.archive ? {} : { owner: { uid: 0, gid: 0 } }),
    ...(r.ids ? { toHostIds: r.ids } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  let at: { rel: string; name: string };
  let tar: Readable;
  if (srcPath === undefined || !srcSt) {
    if (!dst?.isDirectory()) throw new CopyError('FAILED_PRECONDITION', `destination ${JSON.stringify(describe)} must be a directory`);
    at = { rel: d.rel, name: '' };
    tar = src as Readable;
  } else {
    const parentName = posix.dirname(posix.normalize(`/${dest}`).replace(/\/+$/, '') || '/');
    const p = resolveIn(r, parentName, true);
    const parentSt = await statResolved(p);
    const where = place(srcSt.isDirectory(), sourceName(srcPath), dest, dst, parentSt?.isDirectory() ?? false, {
      describe: JSON.stringify(describe),
      parentMissing: `Could not find the file ${parentName} in container ${r.label}`,
      fileWithSlash: 'no such directory',
    });
    // `where.dir` is DEST itself or its parent: both were resolved inside the root just now.
    at = { rel: where.dir === dest ? d.rel : p.rel, name: where.name };
    tar = packPath((src as HostSource).from, where.name, { mode: 'plain', ...(o.signal ? { signal: o.signal } : {}) });
  }
  r.check?.(at.rel, true);
  await applyLayer(r.path, tar, { ...apply, under: at.rel.split('/').filter(Boolean) });
}
