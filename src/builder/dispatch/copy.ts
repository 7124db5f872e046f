/**
 * COPY and ADD: resolving sources (context or another stage's rootfs), Docker's destination rules,
 * and writing the files into a mounted rootfs.
 *
 * Docker semantics implemented here:
 *  - a source directory contributes its *contents*, not itself (`COPY dir /d` fills /d; a missing
 *    /d is made like a missing parent: 0755 or --chmod, root or --chown);
 *  - a file goes to `dest/<name>` when dest ends in `/` (or `/.`), or is an existing directory in
 *    the image, else to `dest` itself; several sources need a directory destination ending in `/`;
 *  - a relative dest is relative to WORKDIR; missing parents are created (0755);
 *  - sources are wildcards in Go `filepath.Match` syntax per path component, resolved inside the
 *    source root: `..` and symlinks never lead outside it (a symlink pointing out of the context is
 *    resolved as if the context were `/`);
 *  - symlinks inside a copied tree are copied as symlinks; a symlink named as the source is
 *    followed (inside the root);
 *  - files from the context become 0:0, files from another stage keep their owner; `--chown`
 *    overrides both, `--chmod` sets the permission bits of everything copied;
 *  - hard links inside one COPY stay hard links;
 *  - destination paths are resolved through the image's own symlinks but never leave its root.
 *
 * The work is split into `planCopy` (walk the sources, no writes; its digest is the cache key's
 * content part) and `applyCopy` (write into a rootfs mounted on the host). A plan keeps a bounded
 * number of entries: a larger item is walked again (copy-walk.ts) when it is written.
 */
import { lstat, stat, readdir, mkdir, lchown, chmod, open, copyFile } from 'node:fs/promises';
import { constants, lstatSync, readdirSync, unlinkSync, linkSync, symlinkSync, lchownSync, lutimesSync, writeFileSync, copyFileSync, chmodSync, mkdirSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { blake3Of, createHasher, type Digest, type Hasher } from '../../image/digest.js';
import { ImgbuildError, throwIfAborted } from '../../errors.js';
import { resolveRel, resolveInRoot, cleanAbs } from './fs-root.js';
import { patternMatcher, type IgnoreMatcher } from '../context.js';
import { chmodOf, parseOctalChmod, type ChmodSpec } from './chmod.js';
import { CopyWindow } from './copy-window.js';
import { copyBuffer, copySmallFileSync, SMALL_FILE_LIMIT } from './copy-file.js';
import { walkEntries, type Match, type PlannedEntry, type SourceTree, type WalkOptions } from './copy-walk.js';

export type { EntryType, PlannedEntry, SourceTree } from './copy-walk.js';

export class CopySourceNotFoundError extends ImgbuildError {
  constructor(readonly source: string, detail = 'no such file or directory') {
    super('NOT_FOUND', `COPY source ${JSON.stringify(source)}: ${detail}`);
    this.name = 'CopySourceNotFoundError';
  }
}

export class CopyDestinationError extends ImgbuildError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
    this.name = 'CopyDestinationError';
  }
}

export interface PlannedItem {
  /** The source word that produced this item (for messages). */
  source: string;
  /** Base name used when the item lands inside a directory destination. */
  name: string;
  /** `--parents`: the path kept below dest (source path relative to the root or its `/./` pivot). */
  parentsPath?: string;
  isDir: boolean;
  /** ADD of a local archive: extract into the destination instead of copying. */
  archive?: boolean;
  /** The item's entries, its own first; with `walk`, only that first one (see itemEntries). */
  entries: PlannedEntry[];
  /** A large item's entries, walked again from its source when written (memory stays bounded). */
  walk?: () => Iterable<PlannedEntry>;
}

/**
 * Every entry of an item, in walk order (a directory before what is below it). Entries walked
 * again carry no content hash: the plan's digest was taken on the first walk.
 */
export function itemEntries(item: PlannedItem): Iterable<PlannedEntry> {
  return item.walk ? item.walk() : item.entries;
}

export interface CopyPlan {
  items: PlannedItem[];
  /** True when more than one source word or match was given (dest must then be a directory). */
  multiple: boolean;
  /** `--parents`: the destination is a directory, made even when nothing matched (BuildKit). */
  parents?: boolean;
  /** planDigest's value, taken as the sources were walked (an item walked again is not hashed twice). */
  digest?: Digest;
}

/**
 * Entries a plan keeps in memory, over all its items; an item that would pass this is walked
 * again when it is written instead (about 200 bytes of heap an entry: 16k entries ~ 3 MiB).
 */
const KEEP_ENTRIES = 16384;

export interface PlanOptions {
  /** Source words after expansion (heredoc words `<<NAME` are resolved through `inline`). */
  sources: string[];
  tree: SourceTree | undefined;
  exclude?: string[];
  parents?: boolean;
  /** Inline sources by heredoc name (COPY <<EOF). */
  inline?: Map<string, Buffer>;
  /** ADD: recognise local archives for extraction. */
  detectArchives?: boolean;
  /** Hash file contents (needed for the cache key of context copies). */
  hash?: boolean;
  /** Entries kept in memory over all items (default KEEP_ENTRIES; tests set it low). */
  keepEntries?: number;
  signal?: AbortSignal;
}

const GLOB_CHARS = /[*?[\\]/;

/** Go filepath.Match syntax for one path component, as a RegExp. */
export function globToRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i] as string}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new ImgbuildError('INVALID_ARGUMENT', `bad pattern ${JSON.stringify(pattern)}: unterminated [`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\(?=[^\]\-^])/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's');
}

function hasGlob(s: string): boolean {
  return GLOB_CHARS.test(s);
}

/** Source word → clean relative path inside the root (`/a/../b` → `b`, `..` clamped). */
function cleanSource(word: string): string {
  return cleanAbs(word).slice(1);
}

/** Every directory below `m` (not through symlinks), `m` first: what a `**` component matches. */
function descendantDirs(root: string, m: Match): Match[] {
  const out: Match[] = [m];
  for (let i = 0; i < out.length; i++) {
    const d = out[i]!;
    const host = d.real === '' ? root : `${root}/${d.real}`;
    let names: string[];
    try {
      names = readdirSync(host).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (!lstatSync(`${host}/${n}`).isDirectory()) continue;
      out.push({ rel: d.rel === '' ? n : `${d.rel}/${n}`, real: d.real === '' ? n : `${d.real}/${n}` });
    }
  }
  return out;
}

/**
 * Expands one source word to matching paths inside the root. With `doubleStar` (--parents, whose
 * sources BuildKit matches as include patterns) a `**` component matches any number of directories.
 */
async function matchSource(root: string, word: string, ignore: IgnoreMatcher | undefined, doubleStar = false): Promise<Match[]> {
  const rel = cleanSource(word);
  if (!hasGlob(rel)) {
    if (rel !== '' && ignore?.ignores(rel)) return [];
    const real = await resolveRel(root, rel, true);
    try {
      await lstat(real === '' ? root : `${root}/${real}`);
    } catch {
      return [];
    }
    return [{ rel, real }];
  }
  let frontier: Match[] = [{ rel: '', real: '' }];
  const comps = rel.split('/');
  for (let i = 0; i < comps.length; i++) {
    const comp = comps[i] as string;
    const next: Match[] = [];
    for (const m of frontier) {
      if (doubleStar && comp === '**') {
        next.push(...descendantDirs(root, m));
        continue;
      }
      if (!hasGlob(comp)) {
        const r = m.rel === '' ? comp : `${m.rel}/${comp}`;
        next.push({ rel: r, real: await resolveRel(root, r, true) });
        continue;
      }
      const re = globToRegExp(comp);
      let names: string[];
      try {
        names = await readdir(m.real === '' ? root : `${root}/${m.real}`);
      } catch {
        continue;
      }
      names.sort();
      for (const n of names) {
        if (!re.test(n)) continue;
        const r = m.rel === '' ? n : `${m.rel}/${n}`;
        next.push({ rel: r, real: await resolveRel(root, r, true) });
      }
    }
    frontier = next;
  }
  const out: Match[] = [];
  const seen = new Set<string>();
  for (const m of frontier) {
    if (ignore?.ignores(m.rel) || seen.has(m.rel)) continue;
    seen.add(m.rel);
    try {
      await lstat(m.real === '' ? root : `${root}/${m.real}`);
      out.push(m);
    } catch {
      // a literal component after a wildcard may not exist under every match
    }
  }
  return out;
}

const ARCHIVE_MAGICS: { magic: number[]; offset?: number }[] = [
  { magic: [0x1f, 0x8b] }, // gzip
  { magic: [0x42, 0x5a, 0x68] }, // bzip2
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] }, // xz
  { magic: [0x28, 0xb5, 0x2f, 0xfd] }, // zstd
  { magic: [0x75, 0x73, 0x74, 0x61, 0x72], offset: 257 }, // ustar
];

export async function isArchive(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(262);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return ARCHIVE_MAGICS.some(({ magic, offset = 0 }) => bytesRead >= offset + magic.length && magic.every((b, i) => head[offset + i] === b));
  } finally {
    await fh.close();
  }
}

/** Resolves the sources of a COPY/ADD into items and entries; reads no destination. */
export async function planCopy(o: PlanOptions): Promise<CopyPlan> {
  const items: PlannedItem[] = [];
  const exclude = o.exclude && o.exclude.length ? patternMatcher(o.exclude) : undefined;
  let count = 0;
  // planDigest's bytes, taken as each item is walked: a large item's entries are not kept. Only a
  // hashed plan is digested (a COPY --from or a git source never is).
  const digest = o.hash ? digestWriter() : undefined;
  let keep = o.keepEntries ?? KEEP_ENTRIES;
  for (const word of o.sources) {
    throwIfAborted(o.signal);
    const heredoc = /^<<-?(["']?)([^"']+)\1$/.exec(word);
    if (heredoc && o.inline?.has(heredoc[2] as string)) {
      const name = heredoc[2] as string;
      const data = o.inline.get(name) as Buffer;
      const item: PlannedItem = {
        source: word, name, isDir: false,
        entries: [{ rel: '', type: 'file', data, mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, hash: blake3Of(data) }],
      };
      digest?.item(item);
      for (const e of item.entries) digest?.entry(e);
      items.push(item);
      count++;
      continue;
    }
    if (!o.tree) throw new CopySourceNotFoundError(word, 'no build context was given');
    const root = o.tree.root;
    // `--parents` keeps the path after a `/./` pivot, or the whole path.
    let pivot = '';
    let pattern = word;
    if (o.parents) {
      const i = word.indexOf('/./');
      if (i >= 0) {
        pivot = cleanSource(word.slice(0, i));
        pattern = word;
      }
    }
    const matches = await matchSource(root, pattern, o.tree.ignore, o.parents ?? false);
    if (matches.length === 0) {
      if (hasGlob(cleanSource(word))) continue; // BuildKit allows a wildcard to match nothing
      throw new CopySourceNotFoundError(word);
    }
    count += matches.length;
    const tree = o.tree;
    const walkOpts: Omit<WalkOptions, 'hash'> = { tree, exclude, ...(o.signal ? { signal: o.signal } : {}) };
    for (const m of matches) {
      // The item itself is resolved with symlinks followed (Docker follows the named source).
      const top = await stat(m.real === '' ? root : `${root}/${m.real}`);
      if (!top.isFile() && !top.isDirectory()) throw new CopySourceNotFoundError(m.rel, 'not a regular file, directory or symlink');
      const entries = walkEntries(root, m, top, { ...walkOpts, hash: o.hash ?? false });
      const first = entries.next().value as PlannedEntry;
      const isDir = first.type === 'dir';
      const name = m.rel === '' ? '' : posix.basename(m.rel);
      const item: PlannedItem = { source: word, name, isDir, entries: [first] };
      // The pivot's components (wildcards among them) each matched one component of the path.
      if (o.parents) item.parentsPath = pivot ? m.rel.split('/').slice(pivot.split('/').length).join('/') : m.rel;
      if (o.detectArchives && !isDir && first.src && (await isArchive(first.src))) item.archive = true;
      digest?.item(item);
      digest?.entry(first);
      keep--;
      for (const e of entries) {
        digest?.entry(e);
        if (item.walk) continue;
        if (keep > 0) {
          item.entries.push(e);
          keep--;
          continue;
        }
        // Past the plan's budget: only the digest is taken now; the entries are walked again
        // (without hashing) when the item is written.
        keep += item.entries.length - 1;
        item.entries.length = 1;
        item.walk = () => walkEntries(root, m, top, { ...walkOpts, hash: false });
      }
      items.push(item);
    }
  }
  return { items, multiple: o.sources.length > 1 || count > 1, ...(o.parents ? { parents: true } : {}), ...(digest ? { digest: digest.end(o.sources.length > 1 || count > 1) } : {}) };
}

/** planDigest's byte stream, written item by item and entry by entry. */
function digestWriter(): { item(it: PlannedItem): void; entry(e: PlannedEntry): void; end(multiple: boolean): Digest } {
  const h: Hasher = createHasher('blake3');
  // Records are gathered into ~64k characters per update: one native call and one buffer per
  // record was a tenth of walking a context of small files. The bytes hashed are the same (every
  // record ends with a NUL, so no character is encoded differently for being joined).
  let pending = '';
  const enc = (s: string): void => {
    pending += `${s}\0`;
    if (pending.length >= 1 << 16) flush();
  };
  const flush = (): void => {
    if (pending) h.update(Buffer.from(pending));
    pending = '';
  };
  return {
    item: (it) => enc(`item ${it.name} ${it.isDir ? 'd' : 'f'} ${it.archive ? 'a' : ''} ${it.parentsPath ?? ''}`),
    entry: (e) => enc(`${e.rel} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${e.type === 'file' ? (e.hash ?? 'nohash') : (e.linkTarget ?? '')}`),
    end: (multiple) => {
      enc(multiple ? 'multi' : 'single');
      flush();
      return h.digest();
    },
  };
}

/** The content part of a COPY cache key: names, types, modes, owners and content hashes. */
export function planDigest(plan: CopyPlan): Digest {
  if (plan.digest) return plan.digest;
  const d = digestWriter();
  for (const it of plan.items) {
    d.item(it);
    for (const e of itemEntries(it)) d.entry(e);
  }
  return d.end(plan.multiple);
}

export interface ApplyOptions {
  /** Host path of the destination rootfs (a mounted overlay or a plain dir). */
  root: string;
  /** Destination as written (expanded). */
  dest: string;
  /** WORKDIR of the stage (absolute). */
  workdir: string;
  chown?: { uid: number; gid: number };
  /** Permission bits for everything copied (`--chmod`): octal, or symbolic (chmod.ts). */
  chmod?: ChmodSpec;
  /** Extract archives (ADD) with this function: (archive host path, destination host dir, --chown). */
  extract?: (archive: string, destDir: string, owner?: { uid: number; gid: number }) => Promise<void>;
  signal?: AbortSignal;
}

/** Parses an octal `--chmod` (0 to 07777); chmod.ts's parseChmodSpec takes symbolic modes too. */
export function parseChmod(s: string): number {
  return parseOctalChmod(s);
}

function endsAsDir(dest: string): boolean {
  return dest.endsWith('/') || dest.endsWith('/.') || dest === '.' || dest === '';
}

/**
 * Makes the directory `abs` (absolute in the image) exist, creating missing components with
 * `mode` (0755, or an octal --chmod as BuildKit does) and the given owner, and returns its
 * confined host path.
 */
async function ensureDir(root: string, abs: string, owner: { uid: number; gid: number }, mode = 0o755): Promise<string> {
  const rel = await resolveRel(root, abs, true);
  if (rel === '') return root;
  const comps = rel.split('/');
  let cur = root;
  for (let i = 0; i < comps.length; i++) {
    cur = `${cur}/${comps[i] as string}`;
    let st: Stats | undefined;
    try {
      st = await lstat(cur);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st) {
      if (!st.isDirectory()) throw new CopyDirectoryConflict(abs, cur);
      continue;
    }
    await mkdir(cur, 0o755);
    await chmod(cur, mode);
    await lchown(cur, owner.uid, owner.gid);
  }
  return cur;
}

class CopyDirectoryConflict extends CopyDestinationError {
  constructor(abs: string, host: string) {
    super(`cannot copy to ${abs}: ${host.split('/').pop() ?? host} exists and is not a directory`);
  }
}

/** Writes a planned COPY into the rootfs at `o.root`. Returns the number of entries written. */
export async function applyCopy(plan: CopyPlan, o: ApplyOptions): Promise<number> {
  const copies = new CopyWindow();
  try {
    return await applyPlan(plan, o, copies);
  } finally {
    await copies.drain().catch(() => {});
  }
}

async function applyPlan(plan: CopyPlan, o: ApplyOptions, copies: CopyWindow): Promise<number> {
  const destAbs = cleanAbs(o.dest.startsWith('/') ? o.dest : posix.join(o.workdir || '/', o.dest));
  const dirSyntax = endsAsDir(o.dest);
  // Directories' contents and archives go into a destination directory whatever its spelling
  // (BuildKit): only several files need it to end in '/' (or to exist as a directory).
  const files = plan.items.filter((i) => !i.isDir && !i.archive && i.parentsPath === undefined).length;
  if (plan.multiple && !dirSyntax && files > 1) {
    // Docker: several sources need a directory destination that ends in '/'. An existing directory
    // is accepted too (BuildKit copies into it).
    const host = await resolveInRoot(o.root, destAbs);
    const st = await stat(host).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new CopyDestinationError(`when using COPY with more than one source file, the destination must be a directory and end with a /: ${o.dest}`);
    }
  }
  const rootOwner = o.chown ?? { uid: 0, gid: 0 };
  // Directories a COPY makes (parents, a destination) take an octal --chmod, else 0755 (BuildKit).
  const madeDirMode = typeof o.chmod === 'number' ? o.chmod : 0o755;
  if (plan.parents) await ensureDir(o.root, destAbs, rootOwner, madeDirMode);
  let written = 0;
  const hardlinks = new Map<string, string>();
  const dirTimes: { host: string; mtimeMs: number }[] = [];
  let buf: Buffer | undefined; // copySmallFileSync's, made at the first small file

  for (const item of plan.items) {
    throwIfAborted(o.signal);
    // Where does this item go (absolute path in the image)?
    let target: string;
    if (item.parentsPath !== undefined) {
      target = posix.join(destAbs, item.parentsPath);
    } else if (item.isDir || item.archive) {
      target = destAbs;
    } else {
      let intoDir = dirSyntax || plan.multiple;
      if (!intoDir) {
        const st = await stat(await resolveInRoot(o.root, destAbs)).catch(() => undefined);
        intoDir = st?.isDirectory() ?? false;
      }
      target = intoDir ? posix.join(destAbs, item.name) : destAbs;
    }

    if (item.archive) {
      const hostDir = await ensureDir(o.root, target, rootOwner, madeDirMode);
      const src = item.entries[0]?.src;
      if (!src || !o.extract) throw new ImgbuildError('NOT_IMPLEMENTED', `cannot extract ${item.source}: no archive support`);
      await o.extract(src, hostDir, o.chown);
      written++;
      continue;
    }

    // Parent of the target must exist as a directory; the target itself is handled per type.
    const parentHost = await ensureDir(o.root, posix.dirname(target), rootOwner, madeDirMode);
    const base = posix.basename(target);
    const dirs = new Map<string, string>(); // entry rel → host dir
    // Dirs this item made: empty when made, so its files in them need no look for what is there.
    const made = new Set<string>();
    let aliased = false;
    // Synchronous calls on purpose: each is a short syscall on local disk, and for the many small
    // files of a typical context the thread-pool round trips of the async forms cost more than
    // the calls themselves (the same choice as tar/apply.ts).
    const lstatOrUndefined = (p: string): Stats | undefined => {
      try {
        return lstatSync(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    };
    // One pass in walk order (a directory comes before what is below it), so a large item walked
    // again from its source is walked once.
    for (const e of itemEntries(item)) {
      throwIfAborted(o.signal);
      let host: string;
      let parent: string | undefined;
      if (e.rel === '') {
        host = e.type === 'dir' && target === '/' ? o.root : `${parentHost}/${base}`;
      } else {
        parent = dirs.get(posix.dirname(e.rel) === '.' ? '' : posix.dirname(e.rel));
        if (parent === undefined) continue;
        host = `${parent}/${posix.basename(e.rel)}`;
      }
      if (e.type === 'dir') {
        let st = !aliased && parent !== undefined && made.has(parent) ? undefined : lstatOrUndefined(host);
        if (st?.isSymbolicLink()) {
          // An existing symlink in the image where the source has a dir: follow it, confined.
          const rel = host.slice(o.root.length);
          host = await resolveInRoot(o.root, rel);
          st = lstatOrUndefined(host);
          // Two source dirs may now land in one host dir: look before writing everywhere, once
          // the copies already started have ended.
          if (!aliased) await copies.drain();
          aliased = true;
        }
        if (st && !st.isDirectory()) {
          unlinkSync(host);
          st = undefined;
        }
        if (!st && e.rel === '' && item.parentsPath === undefined) {
          // A directory's contents go into the destination, which is made like a missing parent
          // (0755 or --chmod, root or --chown, now), not as a copy of the source dir (BuildKit, moby).
          mkdirSync(host);
          lchownSync(host, rootOwner.uid, rootOwner.gid);
          chmodSync(host, madeDirMode);
          made.add(host);
          written++;
        } else if (!st) {
          mkdirSync(host);
          lchownSync(host, o.chown?.uid ?? e.uid, o.chown?.gid ?? e.gid);
          chmodSync(host, chmodOf(o.chmod, e.mode, true));
          dirTimes.push({ host, mtimeMs: e.mtimeMs });
          made.add(host);
          written++;
        } else if (e.rel !== '' && host !== o.root) {
          // Merging into an existing dir of a copied tree: the copied dir's metadata wins (Docker).
          lchownSync(host, o.chown?.uid ?? e.uid, o.chown?.gid ?? e.gid);
          chmodSync(host, chmodOf(o.chmod, e.mode, true));
          dirTimes.push({ host, mtimeMs: e.mtimeMs });
        }
        dirs.set(e.rel, host);
        continue;
      }
      const inMade = !aliased && parent !== undefined && made.has(parent);
      const key = e.type === 'file' ? e.inode : undefined;
      const first = key ? hardlinks.get(key) : undefined;
      if (key && !first) hardlinks.set(key, host);
      const existing = inMade ? undefined : lstatOrUndefined(host);
      if (existing?.isDirectory()) throw new CopyDestinationError(`cannot overwrite directory ${host.slice(o.root.length) || '/'} with a non-directory`);
      if (existing) {
        await copies.done(host); // a copy to it may still be in flight (two sources reaching one path)
        unlinkSync(host);
      }
      written++;
      if (first) {
        await copies.done(first); // its first path must be there to link to
        linkSync(first, host);
        continue;
      }
      const uid = o.chown?.uid ?? e.uid;
      const gid = o.chown?.gid ?? e.gid;
      if (e.type === 'file' && e.src && e.size !== undefined && e.size <= SMALL_FILE_LIMIT) {
        copySmallFileSync(e.src, host, (buf ??= copyBuffer()), { uid, gid, mode: chmodOf(o.chmod, e.mode, false), mtimeMs: e.mtimeMs, size: e.size });
        continue;
      }
      const finish = (): void => {
        if (uid !== 0 || gid !== 0) lchownSync(host, uid, gid);
        chmodSync(host, chmodOf(o.chmod, e.mode, false));
        lutimesSync(host, e.mtimeMs / 1000, e.mtimeMs / 1000);
      };
      if (e.type === 'symlink') {
        symlinkSync(e.linkTarget as string, host);
        lchownSync(host, uid, gid);
        lutimesSync(host, e.mtimeMs / 1000, e.mtimeMs / 1000);
      } else if (e.data) {
        writeFileSync(host, e.data, { flag: 'wx' });
        finish();
      } else if (inMade) {
        // A large file in a dir this item made, which no other entry can reach: the kernel's copy
        // runs on the thread pool, one round trip per file, beside others.
        await copies.start(host, copyFile(e.src as string, host, constants.COPYFILE_EXCL).then(finish));
      } else {
        copyFileSync(e.src as string, host, constants.COPYFILE_EXCL);
        finish();
      }
    }
    // The next item may write the same paths: this one's copies end first.
    await copies.drain();
  }
  // Directory times last, deepest first, since writing into a dir updates its mtime.
  dirTimes.sort((a, b) => b.host.length - a.host.length);
  for (const d of dirTimes) lutimesSync(d.host, d.mtimeMs / 1000, d.mtimeMs / 1000);
  return written;
}
