/**
 * The layer of a vfs snapshot (vfs.ts), found by comparing its rootfs with its parent's, as
 * Docker's naive diff driver does. The changes are gathered in overlay form in a scratch dir
 * (changed entries hard-linked, so owners, modes, times, xattrs and content are the changed
 * ones; whiteouts as char 0:0 devices, which any user may make since Linux 5.8; opaque dirs
 * marked with `user.overlay.opaque`) and packed by the same code as an overlay upper dir, so
 * the same changes give a byte-identical layer whichever snapshotter made them.
 *
 * An entry counts as changed when its type, mode, owner, size, mtime, link count, link target,
 * device or xattrs differ from the parent's; when all of those are equal but its ctime is not
 * older than the copy (something touched it), its content is compared. A directory is part of
 * the layer when its own attributes changed or anything below it did; one that replaced a
 * non-directory is opaque (what overlayfs does there).
 */
import { closeSync, constants as fsc, linkSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, readlinkSync, chownSync, chmodSync, utimesSync, type BigIntStats } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join, posix } from 'node:path';
import { getAttributeSync, listAttributesSync, setAttributeSync } from 'fs-xattr';
import { ImgbuildError, throwIfAborted } from '../errors.js';
import type { Compression } from '../image/media-types.js';
import { writeLayerBlob, type LayerBlob } from '../store/layers.js';
import type { OciStore } from '../store/store.js';
import { packDir } from '../tar/pack.js';
import type { PhaseClock } from '../phases.js';
import type { VfsSnapshotter } from './vfs.js';

export interface ChangesOptions {
  /** The child's copy time (ms since the epoch, fractional): a ctime from then on means touched. */
  copiedAt: number;
  /** Relative paths left out of the comparison (the run's placeholders). */
  skip?: ReadonlySet<string>;
  signal?: AbortSignal;
}

function xattrsOf(p: string): Map<string, string> {
  const out = new Map<string, string>();
  let names: string[];
  try {
    names = listAttributesSync(p);
  } catch {
    return out; // ENOTSUP, or a symlink's target missing: no xattrs to compare
  }
  for (const n of names) {
    if (n.startsWith('trusted.overlay.') || n.startsWith('user.overlay.') || n.startsWith('system.')) continue;
    try {
      out.set(n, getAttributeSync(p, n).toString('base64'));
    } catch {
      // vanished between list and get
    }
  }
  return out;
}

function sameXattrs(a: string, b: string, st: BigIntStats): boolean {
  if (st.isSymbolicLink()) return true; // never read (fs-xattr follows links), never packed
  const x = xattrsOf(a);
  const y = xattrsOf(b);
  if (x.size !== y.size) return false;
  for (const [k, v] of x) if (y.get(k) !== v) return false;
  return true;
}

function kindOf(st: BigIntStats): bigint {
  return st.mode & BigInt(fsc.S_IFMT);
}

function sameContent(a: string, b: string, size: number): boolean {
  const fa = openSync(a, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const fb = openSync(b, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const ba = Buffer.allocUnsafe(1 << 20);
      const bb = Buffer.allocUnsafe(1 << 20);
      for (let off = 0; off < size; ) {
        const n = readSync(fa, ba, 0, ba.length, off);
        const m = readSync(fb, bb, 0, n, off);
        if (n === 0 || m !== n || ba.compare(bb, 0, n, 0, n) !== 0) return false;
        off += n;
      }
      return true;
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}

/** Whether the non-directory `c` (child) differs from `p` (parent, same path). */
function changed(cp: string, pp: string, c: BigIntStats, p: BigIntStats, copiedAtNs: bigint): boolean {
  if (kindOf(c) !== kindOf(p) || c.mode !== p.mode || c.uid !== p.uid || c.gid !== p.gid) return true;
  if (c.size !== p.size || c.mtimeNs !== p.mtimeNs || c.nlink !== p.nlink || c.rdev !== p.rdev) return true;
  if (c.isSymbolicLink()) return readlinkSync(cp) !== readlinkSync(pp);
  if (!sameXattrs(cp, pp, c)) return true;
  if (c.ctimeNs < copiedAtNs) return false;
  return c.isFile() && !sameContent(cp, pp, Number(c.size));
}

function dirChanged(cp: string, pp: string, c: BigIntStats, p: BigIntStats): boolean {
  return c.mode !== p.mode || c.uid !== p.uid || c.gid !== p.gid || c.mtimeNs !== p.mtimeNs || !sameXattrs(cp, pp, c);
}

function lstatOrUndefined(p: string): BigIntStats | undefined {
  try {
    return lstatSync(p, { bigint: true });
  } catch {
    return undefined;
  }
}

/**
 * Writes the changes of `fs` against `parentFs` (none: everything is new) into the empty dir
 * `out` in overlay form; returns the number of entries written.
 */
export function gatherChanges(fs: string, parentFs: string | undefined, out: string, o: ChangesOptions): number {
  const copiedAtNs = BigInt(Math.floor(o.copiedAt * 1e6));
  let count = 0;
  // Dirs made in out, to give their times back once their children are in.
  const made: { rel: string; st: BigIntStats }[] = [];
  const madeSet = new Set<string>(['']);

  const copyDirAttrs = (rel: string, st: BigIntStats): void => {
    const dst = join(out, rel);
    chownSync(dst, Number(st.uid), Number(st.gid));
    chmodSync(dst, Number(st.mode & 0o7777n));
    for (const [k, v] of xattrsOf(join(fs, rel))) {
      try {
        setAttributeSync(dst, k, Buffer.from(v, 'base64'));
      } catch (e) {
        throw new ImgbuildError('FAILED_PRECONDITION', `cannot keep xattr ${k} of /${rel} in the layer: ${(e as Error).message}`, { cause: e });
      }
    }
  };
  const ensureDir = (rel: string): void => {
    if (madeSet.has(rel)) return;
    ensureDir(posix.dirname(rel) === '.' ? '' : posix.dirname(rel));
    const st = lstatSync(join(fs, rel), { bigint: true });
    mkdirSync(join(out, rel));
    copyDirAttrs(rel, st);
    made.push({ rel, st });
    madeSet.add(rel);
    count++;
  };
  const parentOf = (rel: string): string => (posix.dirname(rel) === '.' ? '' : posix.dirname(rel));
  const linkIn = (rel: string): void => {
    ensureDir(parentOf(rel));
    try {
      linkSync(join(fs, rel), join(out, rel));
    } catch (e) {
      // A hard link may be refused (protected_hardlinks for a file of another owner): copy it.
      const r = spawnSync('cp', ['-a', '--reflink=auto', join(fs, rel), join(out, rel)], { encoding: 'utf8' });
      if (r.status !== 0) throw new ImgbuildError('FAILED_PRECONDITION', `cannot gather /${rel} for the layer: ${r.stderr.trim() || (e as Error).message}`);
    }
    count++;
  };
  const whiteout = (rel: string): void => {
    ensureDir(parentOf(rel));
    const r = spawnSync('mknod', [join(out, rel), 'c', '0', '0'], { encoding: 'utf8' });
    if (r.status !== 0) throw new ImgbuildError('FAILED_PRECONDITION', `cannot record the deletion of /${rel}: ${r.stderr.trim()}`);
    count++;
  };
  const addTree = (rel: string, st: BigIntStats, opaque: boolean): void => {
    if (!st.isDirectory()) return linkIn(rel);
    ensureDir(rel);
    if (opaque) setAttributeSync(join(out, rel), 'user.overlay.opaque', Buffer.from('y'));
    for (const name of readdirSync(join(fs, rel))) {
      throwIfAborted(o.signal);
      const r = rel ? `${rel}/${name}` : name;
      if (o.skip?.has(r)) continue;
      const cst = lstatSync(join(fs, r), { bigint: true });
      if (cst.isSocket()) continue;
      addTree(r, cst, false);
    }
  };
  const compare = (rel: string): void => {
    const names = readdirSync(join(fs, rel));
    const parentNames = new Set(parentFs ? readdirSync(join(parentFs, rel)) : []);
    for (const name of parentNames) {
      const r = rel ? `${rel}/${name}` : name;
      if (!names.includes(name) && !o.skip?.has(r)) whiteout(r);
    }
    for (const name of names) {
      throwIfAborted(o.signal);
      const r = rel ? `${rel}/${name}` : name;
      if (o.skip?.has(r)) continue;
      const c = lstatSync(join(fs, r), { bigint: true });
      if (c.isSocket()) continue;
      const p = parentNames.has(name) && parentFs ? lstatOrUndefined(join(parentFs, r)) : undefined;
      if (!p) {
        addTree(r, c, false);
      } else if (c.isDirectory() && p.isDirectory()) {
        if (dirChanged(join(fs, r), join(parentFs!, r), c, p)) ensureDir(r);
        compare(r);
      } else if (c.isDirectory()) {
        addTree(r, c, true);
      } else if (changed(join(fs, r), join(parentFs!, r), c, p, copiedAtNs)) {
        linkIn(r);
      }
    }
  };
  compare('');
  // Children first changed their parents' mtimes in out: give the dirs their own back.
  for (const { rel, st } of made.reverse()) {
    utimesSync(join(out, rel), new Date(Number(st.atimeNs / 1000000n)), new Date(Number(st.mtimeNs / 1000000n)));
  }
  return count;
}

/** Packs the changes of the active vfs snapshot `key` into an uncompressed (or compressed) layer blob. */
export async function diffVfsSnapshot(
  store: OciStore,
  sn: VfsSnapshotter,
  key: string,
  opts: { compression: Compression; sourceDateEpoch?: number; phases?: PhaseClock; signal?: AbortSignal },
): Promise<LayerBlob> {
  const base = await sn.changeBase(key);
  const skip = new Set([...(base.init?.files ?? []), ...(base.init?.dirs ?? [])]);
  const out = await mkdtemp(join(sn.root, 'diff-'));
  try {
    gatherChanges(base.fs, base.parentFs, out, { copiedAt: base.copiedAt, skip, ...(opts.signal ? { signal: opts.signal } : {}) });
    const ph = opts.phases ? { phases: opts.phases } : {};
    const tar = packDir(out, { mode: 'overlay', sourceDateEpoch: opts.sourceDateEpoch, signal: opts.signal, ...ph });
    return await writeLayerBlob(store, tar, { compression: opts.compression, signal: opts.signal, ...ph });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
