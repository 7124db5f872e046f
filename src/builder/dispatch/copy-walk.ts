/**
 * The walk of one COPY source item into planned entries, as a generator: entries come out in walk
 * order (a directory before its children, each directory's names sorted) and are not collected
 * here, so a caller can digest a tree of any size, or write it, holding only the entry at hand.
 * planCopy keeps the entries of small items and walks a large item again when it is written
 * (copy.ts), which bounds a COPY's memory whatever the number of files.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { blake3Of, type Digest } from '../../image/digest.js';
import { throwIfAborted } from '../../errors.js';
import { hashFileSync, type IgnoreMatcher, type StatCache } from '../context.js';

/** Where sources are read from: the build context, or a (mounted) rootfs of a stage or image. */
export interface SourceTree {
  /** Host directory that plays `/` for source lookup. */
  root: string;
  kind: 'context' | 'image';
  /** `.dockerignore` of the context (context only). */
  ignore?: IgnoreMatcher;
  /** Content-hash cache; without it files are hashed from their bytes each time. */
  statCache?: StatCache;
}

export type EntryType = 'file' | 'dir' | 'symlink';

export interface PlannedEntry {
  /** Path below the item's destination ('' for the item itself). */
  rel: string;
  type: EntryType;
  /** Host path of the source (undefined for inline content). */
  src?: string;
  /** `dev:ino` of a file with more than one link (hard links stay links); no Stats are kept per entry. */
  inode?: string;
  linkTarget?: string;
  /** Inline content (heredoc source or downloaded file kept in memory). */
  data?: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  /** Size in bytes when walked (files from a source tree): picks how the file is copied. */
  size?: number;
  /** blake3 of the content (files only, when hashed). */
  hash?: Digest;
}

/** A source word's match inside the root. */
export interface Match {
  /** Path relative to the root as written/matched (before symlink resolution). */
  rel: string;
  /** Path relative to the root after following symlinks (confined). */
  real: string;
}

export interface WalkOptions {
  tree: SourceTree;
  exclude: { ignores(p: string): boolean } | undefined;
  /** Hash file contents (the cache key); a walk that only writes the files needs no hashes. */
  hash: boolean;
  signal?: AbortSignal;
}

export const EMPTY = Buffer.alloc(0);

function typeOf(st: Stats): EntryType | undefined {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  return undefined; // sockets, fifos, devices are not copied from a context
}

/**
 * The entries of one source item (a dir, file or symlink), ignore/exclude applied. `top` is the
 * item's own stat (symlinks followed: Docker follows the named source); anything else but a
 * file or directory yields nothing.
 *
 * A directory excluded by `.dockerignore` whose exceptions may re-include something below it is
 * still walked; it comes out only when a kept entry is found below it, right before that entry,
 * which is where it stood in the walk (everything between was left out).
 */
export function* walkEntries(root: string, m: Match, top: Stats, o: WalkOptions): Generator<PlannedEntry> {
  const kind = o.tree.kind;
  // An image's entries keep their owners; a context's are root's.
  const image = kind === 'image';
  const host = (real: string): string => (real === '' ? root : `${root}/${real}`);
  const file = (e: PlannedEntry, st: Stats): PlannedEntry => {
    if (st.nlink > 1) e.inode = `${st.dev}:${st.ino}`;
    e.size = st.size;
    if (o.hash && e.src) {
      // Unchanged files are answered from the stat cache without I/O; only misses are read, with
      // synchronous reads into one buffer (see hashFileSync).
      e.hash = o.tree.statCache ? o.tree.statCache.hashSync(e.src, st) : hashFileSync(e.src, st.size);
    }
    return e;
  };
  const t = typeOf(top);
  if (t === 'file') {
    yield file({ rel: '', type: 'file', src: host(m.real), mode: top.mode & 0o7777, uid: image ? top.uid : 0, gid: image ? top.gid : 0, mtimeMs: top.mtimeMs }, top);
    return;
  }
  if (t !== 'dir') return;
  yield { rel: '', type: 'dir', src: host(m.real), mode: top.mode & 0o7777, uid: image ? top.uid : 0, gid: image ? top.gid : 0, mtimeMs: top.mtimeMs };
  const ignore = o.tree.ignore;
  // Excluded dirs walked for their exceptions, not yet given out (outermost first).
  const pending: PlannedEntry[] = [];
  // The walk is synchronous on purpose: thousands of short lstat calls cost far less inline
  // than as thread-pool round trips, which dominates a no-op rebuild of a large context.
  function* walk(dirReal: string, dirRel: string, ctxRel: string): Generator<PlannedEntry> {
    throwIfAborted(o.signal);
    const dirHost = host(dirReal);
    const names = readdirSync(dirHost).sort();
    for (const n of names) {
      const rel = dirRel === '' ? n : `${dirRel}/${n}`;
      const cRel = ctxRel === '' ? n : `${ctxRel}/${n}`;
      const src = `${dirHost}/${n}`;
      const st = lstatSync(src);
      // A socket in the context arrives as an empty regular file (BuildKit's context transfer).
      const socket = kind === 'context' && st.isSocket();
      const type = socket ? 'file' : typeOf(st);
      if (!type) continue;
      const ignored = (ignore?.ignores(cRel) ?? false) || (o.exclude?.ignores(rel) ?? false);
      if (ignored && !(type === 'dir' && (ignore?.mayReinclude(cRel) ?? false))) continue;
      // Built field by field, with no generator per entry: this loop runs once per file of the
      // context on every build, a no-op rebuild included.
      const base: PlannedEntry = { rel, type, src, mode: st.mode & 0o7777, uid: image ? st.uid : 0, gid: image ? st.gid : 0, mtimeMs: st.mtimeMs };
      if (!ignored && pending.length) {
        // Excluded dirs above this kept entry come out first, where they stood in the walk.
        yield* pending;
        pending.length = 0;
      }
      if (type === 'dir') {
        const depth = pending.length;
        if (ignored) pending.push(base);
        else yield base;
        yield* walk(dirReal === '' ? n : `${dirReal}/${n}`, rel, cRel);
        // Nothing below was kept: the excluded dir is not copied.
        if (pending.length > depth) pending.length = depth;
      } else if (type === 'symlink') yield { ...base, linkTarget: readlinkSync(src) };
      else if (socket) yield { rel, type, data: EMPTY, hash: blake3Of(EMPTY), mode: base.mode, uid: 0, gid: 0, mtimeMs: st.mtimeMs };
      else yield file(base, st);
    }
  }
  yield* walk(m.real, '', m.rel);
}
