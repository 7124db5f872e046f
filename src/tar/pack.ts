/**
 * Deterministic tar of a directory tree — the layer generator (umoci `GenerateLayer`, containerd
 * `WriteDiff` for an overlay upper dir).
 *
 * Same tree → same bytes: entries depth-first with each directory's children sorted, numeric
 * uid/gid only (no uname/gname), permission bits as stored, mtimes in whole seconds, clamped to
 * `sourceDateEpoch` when given; no atime/ctime, no pids in PAX header names. Hard links are kept
 * as links: a later path of an inode already written becomes a `link` entry naming the first.
 * xattrs (e.g. `security.capability`) go into PAX `SCHILY.xattr.*` records as raw bytes.
 *
 * 'overlay' mode reads an overlay upper dir: a char device 0:0 is a whiteout and becomes an empty
 * `.wh.<name>` file; a directory with `trusted.overlay.opaque=y` or `user.overlay.opaque=y` gets a
 * `<dir>/.wh..wh..opq` entry right after its own entry, before its children; overlay-private
 * xattrs never leave the machine. Within a directory, whiteouts come before the other children
 * (image-spec layer.md: whiteouts SHOULD appear before sibling entries).
 *
 * 'fuse-overlayfs' mode reads a fuse-overlayfs upper dir, which marks the same changes in the forms
 * its privileges allow (fuse-overlayfs 1.x create_whiteout, set_fd_opaque): a deletion is a char
 * device 0:0 or, where mknod is refused, an empty `.wh.<name>` file; an opaque directory gets a
 * `.wh..wh..opq` file, an xattr (`trusted.overlay.opaque`, else `user.fuseoverlayfs.opaque`) and,
 * where mknod works, a char 0:0 named `.wh..opq` (the whiteout of that name). Each form becomes
 * the one entry overlay mode writes for it, so both upper dirs of one change give one layer.
 *
 * The stream is pull-driven (Readable.from over a generator): nothing is read from disk until the
 * consumer asks, so memory stays at one read chunk whatever the tree size.
 *
 * Limits: sockets are skipped (tar cannot hold them, GNU tar skips them too); xattrs on symlinks
 * are not read (fs-xattr only has the symlink-following getxattr); file names that are not valid
 * UTF-8 are not supported (Node decodes directory entries as UTF-8).
 */
import { closeSync, lstatSync, openSync, readSync, readdirSync, constants as fsc, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { listAttributesSync, getAttributeSync } from 'fs-xattr';
import { ImgbuildError, throwIfAborted } from '../errors.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor, type EntryType, type TarHeader } from './format.js';

export interface PackOptions {
  mode: 'overlay' | 'fuse-overlayfs' | 'plain';
  sourceDateEpoch?: number;
  /**
   * Absolute paths whose contents are left out (a container's /proc and /sys mounts, for `cp`): a
   * directory among them is archived empty, anything else not at all.
   */
  exclude?: ReadonlySet<string>;
  /**
   * The dir's owners are a user namespace's host ids (`--userns=auto`): host id `uid` + n is
   * recorded as n (likewise for gids), so the layer holds the ids its container saw.
   */
  fromHostIds?: { uid: number; gid: number; size: number };
  signal?: AbortSignal;
}

export class PackError extends ImgbuildError {
  constructor(readonly path: string, reason: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', `cannot pack ${JSON.stringify(path)}: ${reason}`, options);
    this.name = 'PackError';
  }
}

const READ_CHUNK = 1024 * 1024;
const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'];
const FUSE_OPAQUE_XATTRS = [...OPAQUE_XATTRS, 'user.fuseoverlayfs.opaque'];
/** fuse-overlayfs's opaque marker file, and the name whose char 0:0 whiteout marks the same. */
const OPAQUE_FILE = '.wh..wh..opq';
const OPAQUE_WHITEOUT_NAME = '.wh..opq';

function isOverlayPrivateXattr(name: string): boolean {
  // user.fuseoverlayfs.* and user.containers.* are fuse-overlayfs's own (origin, opaque, stat overrides).
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.') || name.startsWith('user.fuseoverlayfs.') || name.startsWith('user.containers.');
}

/** Linux dev_t split (glibc gnu_dev_major/minor). */
function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

function readXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    names = listAttributesSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return out;
    throw e;
  }
  for (const n of names) {
    if (isOverlayPrivateXattr(n)) continue;
    // system.* (POSIX ACLs as stored by some filesystems) is not portable between hosts.
    if (n.startsWith('system.')) continue;
    try {
      out.set(n, getAttributeSync(path, n));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENODATA') continue;
      throw e;
    }
  }
  return out;
}

function isOpaque(path: string, fuse: boolean): boolean {
  if (fuse) {
    for (const n of [OPAQUE_FILE, OPAQUE_WHITEOUT_NAME]) {
      try {
        lstatSync(join(path, n));
        return true;
      } catch {
        // absent: try the next form
      }
    }
  }
  for (const x of fuse ? FUSE_OPAQUE_XATTRS : OPAQUE_XATTRS) {
    try {
      if (getAttributeSync(path, x).toString() === 'y') return true;
    } catch {
      // ENODATA / ENOTSUP: not opaque
    }
  }
  return false;
}

function typeOf(st: Stats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // socket
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function* generate(dir: string, opts: PackOptions, name?: string): AsyncGenerator<Buffer> {
  const fuse = opts.mode === 'fuse-overlayfs';
  const overlay = opts.mode === 'overlay' || fuse;
  const sde = opts.sourceDateEpoch;
  const clamp = (st: Stats): number => {
    const t = Math.floor(st.mtimeMs / 1000);
    return sde !== undefined && t > sde ? sde : t;
  };
  const firstPathOfInode = new Map<string, string>();
  const shift = opts.fromHostIds;

  function header(name: string, st: Stats, type: EntryType, over: Partial<TarHeader> = {}): TarHeader {
    return {
      name,
      type,
      mode: st.mode & 0o7777,
      uid: shift && st.uid >= shift.uid && st.uid - shift.uid < shift.size ? st.uid - shift.uid : st.uid,
      gid: shift && st.gid >= shift.gid && st.gid - shift.gid < shift.size ? st.gid - shift.gid : st.gid,
      size: 0,
      mtime: clamp(st),
      linkname: '',
      devmajor: 0,
      devminor: 0,
      xattrs: new Map(),
      ...over,
    };
  }

  function whiteoutHeader(name: string, mtime: number): TarHeader {
    return { name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() };
  }

  async function* walk(abs: string, rel: string): AsyncGenerator<Buffer> {
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (e) {
      throw new PackError(abs, (e as Error).message, { cause: e });
    }
    const whiteouts: { name: string; st: Stats }[] = [];
    const others: { name: string; st: Stats }[] = [];
    const whitedOut = new Set<string>();
    for (const name of names) {
      const st = lstatSync(join(abs, name));
      // fuse-overlayfs's opaque markers were written as the directory's own entry (isOpaque).
      if (fuse && (name === OPAQUE_FILE || (name === OPAQUE_WHITEOUT_NAME && st.isCharacterDevice() && st.rdev === 0))) continue;
      const target = overlay && st.isCharacterDevice() && st.rdev === 0 ? name : fuse && st.isFile() && name.startsWith('.wh.') ? name.slice(4) : undefined;
      if (target === undefined) others.push({ name, st });
      else if (!whitedOut.has(target)) {
        whitedOut.add(target);
        whiteouts.push({ name: target, st });
      }
    }
    whiteouts.sort((a, b) => byteCompare(a.name, b.name));
    others.sort((a, b) => byteCompare(a.name, b.name));
    for (const w of whiteouts) {
      throwIfAborted(opts.signal);
      yield encodeHeader(whiteoutHeader(rel ? `${rel}/.wh.${w.name}` : `.wh.${w.name}`, clamp(w.st)));
    }
    for (const { name, st } of others) {
      throwIfAborted(opts.signal);
      const p = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const type = typeOf(st);
      if (!type) continue;
      if (opts.exclude?.has(p)) {
        if (type === 'dir') yield encodeHeader(header(r, st, 'dir'));
        continue;
      }
      yield* one(p, r, st, type);
    }
  }

  async function* one(p: string, r: string, st: Stats, type: EntryType): AsyncGenerator<Buffer> {
    if (type === 'dir') {
      yield encodeHeader(header(r, st, 'dir', { xattrs: readXattrs(p) }));
      if (overlay && isOpaque(p, fuse)) yield encodeHeader(whiteoutHeader(`${r}/.wh..wh..opq`, clamp(st)));
      yield* walk(p, r);
      return;
    }
    if (type !== 'symlink' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstPathOfInode.get(key);
      if (first !== undefined) {
        yield encodeHeader(header(r, st, 'link', { linkname: first }));
        return;
      }
      firstPathOfInode.set(key, r);
    }
    switch (type) {
      case 'symlink':
        yield encodeHeader(header(r, st, 'symlink', { linkname: readlinkSync(p) }));
        break;
      case 'char':
      case 'block':
        yield encodeHeader(header(r, st, type, { devmajor: major(st.rdev), devminor: minor(st.rdev), xattrs: readXattrs(p) }));
        break;
      case 'fifo':
        yield encodeHeader(header(r, st, 'fifo', { xattrs: readXattrs(p) }));
        break;
      case 'file':
        yield* file(p, r, st);
        break;
    }
  }

  async function* file(p: string, r: string, st: Stats): AsyncGenerator<Buffer> {
    const fd = openSync(p, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      yield encodeHeader(header(r, st, 'file', { size: st.size, xattrs: readXattrs(p) }));
      let left = st.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        let n = 0;
        while (n < buf.length) {
          const got = readSync(fd, buf, n, buf.length - n, null);
          if (got === 0) throw new PackError(p, `file shrank while being packed (${st.size - left + n} of ${st.size} bytes)`);
          n += got;
        }
        left -= n;
        yield buf;
      }
      const pad = paddingFor(st.size);
      if (pad) yield Buffer.alloc(pad);
    } finally {
      closeSync(fd);
    }
  }

  const rootSt = lstatSync(dir);
  if (name !== undefined) {
    // One path as one named entry (a directory with everything below it).
    const type = typeOf(rootSt);
    if (!type) throw new PackError(dir, 'a socket cannot be archived');
    yield* one(dir, name, rootSt, type);
  } else {
    if (!rootSt.isDirectory()) throw new PackError(dir, 'not a directory');
    yield* walk(dir, '');
  }
  yield END_OF_ARCHIVE;
}

/**
 * A tar of `path` itself named `name` (`cp`, Docker's TarResourceRebase): a file, a symlink (never
 * followed) or a directory entry followed by everything below it as `name/...`.
 */
export function packPath(path: string, name: string, opts: PackOptions): Readable {
  return Readable.from(generate(path, opts, name), { objectMode: false, highWaterMark: READ_CHUNK });
}

/** An uncompressed, deterministic tar stream of `dir` (see the module comment). */
export function packDir(dir: string, opts: PackOptions): Readable {
  return Readable.from(generate(dir, opts), { objectMode: false, highWaterMark: READ_CHUNK });
}
