/**
 * Confined application of an uncompressed layer tar onto a directory (containerd `pkg/archive`
 * `Apply`, umoci `oci/layer` unpack), in one of two forms:
 *
 * - 'overlay': `root` is the empty directory of ONE layer (a snapshot's upper dir to be). Entries
 *   are written as they are; a `.wh.<name>` whiteout becomes a char device 0:0 `<name>`, an opaque
 *   marker `<dir>/.wh..wh..opq` becomes the opaque xattr on `<dir>` — overlayfs's own vocabulary.
 * - 'flat': `root` is a merged rootfs holding the layers below. A whiteout deletes `<name>`, an
 *   opaque marker deletes what `<dir>` held before this layer, sparing what this layer itself
 *   unpacked there — wherever in the tar the marker sits (image-spec layer.md only says SHOULD
 *   come first; umoci `ociWhiteout`, containerd `unpackedPaths`).
 *
 * Confinement (DESIGN.md "Path confinement everywhere"):
 * - Every entry is first held to the rules of `rules.ts` (planEntry), the same ones `load` and
 *   `pull` check before an image is tagged: refused with UnsafePathError (naming the entry) are a
 *   name that climbs above root (`../x`, `a/../../x`), a hard link whose target name does, a
 *   whiteout naming `..`, device nodes unless `allowDevices`. Absolute entry names (`/etc/passwd`)
 *   are made relative, as GNU tar and containerd do.
 * - Every entry's parent is resolved with `resolveInRootSync` (symlinks followed, clamped at root),
 *   and the last component is never followed: an existing entry there is removed (`lstat`) before a
 *   non-directory is created, so a symlink planted by an earlier entry of the same name can never
 *   redirect a write (the "duplicate-entry race").
 * - Xattrs are never set on symlinks: fs-xattr only offers the following (set/get)xattr calls, and
 *   following a layer's symlink would write outside the tree. overlay-private xattrs
 *   (`trusted.overlay.*`, `user.overlay.*`) from a tar are dropped: a layer must not forge
 *   overlayfs metadata (redirects, opaque flags).
 *
 * A refused or failing layer throws; applyLayer does not clean up what it already wrote. The caller
 * owns `root` and removes the partial directory (it created it; for overlay snapshots it is a
 * `new-*` temp dir that never gets committed). Nothing is ever written outside `root`.
 *
 * Filesystem calls are synchronous on purpose: each is a short syscall on local disk, and the
 * thread-pool round trip of the async forms costs more than the call for the many small entries of
 * a typical layer. The event loop still turns between entries while the source stream is awaited.
 */
import {
  closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync,
  lutimesSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeSync, chmodSync,
  type Stats,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { setAttributeSync } from 'fs-xattr';
import { ImgbuildError, throwIfAborted } from '../errors.js';
import type { TarHeader } from './format.js';
import { readTar } from './reader.js';
import { planEntry } from './rules.js';
import { NotADirectoryError, SymlinkLoopError, resolveInRootSync } from './resolve.js';
import { lstatIfThere } from '../fs.js';

export interface ApplyOptions {
  mode: 'overlay' | 'flat';
  /** Overlay mode: the xattr that marks a directory opaque (`user.` when the mount uses userxattr). */
  opaqueXattr?: 'trusted.overlay.opaque' | 'user.overlay.opaque';
  allowDevices?: boolean;
  /** Every entry gets this owner instead of its header's (ADD --chown of an archive). */
  owner?: { uid: number; gid: number };
  /**
   * The root belongs to a user namespace's range (`--userns=auto`): id n below `size` is written
   * as the host's `uid`/`gid` + n, so the container sees n.
   */
  toHostIds?: { uid: number; gid: number; size: number };
  /**
   * Not a layer but a plain archive (`cp`): `.wh.` names are ordinary files, and a directory never
   * replaces a non-directory nor the reverse (Docker's NoOverwriteDirNonDir).
   */
  plain?: boolean;
  /**
   * Root-relative directory the entries go under (`cp` into a container's `/dest`): names are held
   * to the rules relative to it (none may climb out of it), then resolved inside `root`.
   */
  under?: string[];
  signal?: AbortSignal;
}

export class LayerApplyError extends ImgbuildError {
  constructor(readonly entry: string, reason: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', `cannot apply tar entry ${JSON.stringify(entry)}: ${reason}`, options);
    this.name = 'LayerApplyError';
  }
}

function isOverlayPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

interface DirTime { rel: string; ino: number; dev: number; mtime: number }

class Applier {
  readonly root: string;
  // A rootless CLI is root only of its user namespace (IMGBUILD_ROOTLESS, src/host/userns.ts): ids
  // outside its mapping (EINVAL) and trusted.* xattrs (EPERM) stay out of reach there too.
  private readonly isRoot = process.getuid?.() === 0 && !process.env.IMGBUILD_ROOTLESS;
  /** Root-relative resolved paths this layer created (flat mode opaque/whiteout bookkeeping). */
  private readonly unpacked = new Set<string>();
  /** Ancestor directories of `unpacked` paths (kept by an opaque marker, their other contents not). */
  private readonly unpackedDirs = new Set<string>();
  private readonly dirTimes: DirTime[] = [];
  /** Resolved parent directories, valid until something that could be on a path is removed. */
  private parentCache = new Map<string, { path: string; rel: string }>();
  entries = 0;
  bytes = 0;

  constructor(root: string, private readonly opts: ApplyOptions) {
    this.root = resolvePath(root);
  }

  private markUnpacked(rel: string): void {
    this.unpacked.add(rel);
    let i = rel.lastIndexOf('/');
    while (i > 0) {
      const d = rel.slice(0, i);
      if (this.unpackedDirs.has(d)) break;
      this.unpackedDirs.add(d);
      i = d.lastIndexOf('/');
    }
  }

  /** The parent dir of an entry, confined, created when missing. */
  private parentOf(parts: string[]): { path: string; rel: string } {
    const key = parts.slice(0, -1).join('/');
    const hit = this.parentCache.get(key);
    if (hit) return hit;
    const r = resolveInRootSync(this.root, key, { mkdirs: true });
    this.parentCache.set(key, r);
    return r;
  }

  /** Removes whatever is at `p` (never following it); invalidates cached resolutions if it mattered. */
  private removeExisting(p: string, st: Stats): void {
    if (st.isDirectory()) {
      rmSync(p, { recursive: true, force: true });
      this.parentCache.clear();
    } else {
      unlinkSync(p);
      if (st.isSymbolicLink()) this.parentCache.clear();
    }
  }

  async apply(tar: Readable): Promise<{ entries: number; bytes: number }> {
    try {
      for await (const { header, body } of readTar(tar, { signal: this.opts.signal })) {
        throwIfAborted(this.opts.signal);
        this.entries++;
        await this.entry(header, body);
      }
    } catch (e) {
      tar.destroy();
      throw e;
    }
    this.finishDirTimes();
    return { entries: this.entries, bytes: this.bytes };
  }

  private async entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    let plan = planEntry(h, { root: this.root, ...(this.opts.allowDevices ? { allowDevices: true } : {}) });
    if (this.opts.plain && (plan.kind === 'opaque' || plan.kind === 'whiteout')) plan = { kind: 'entry', parts: plan.parts, base: plan.parts[plan.parts.length - 1]! };
    if (plan.kind === 'skip') {
      // The archive's own root (`./`) names the directory it goes under: nothing to make.
      return;
    }
    const under = this.opts.under ?? [];
    if (plan.kind === 'opaque') return this.opaque(h.name, [...under, ...plan.parts]);
    if (plan.kind === 'whiteout') return this.whiteout(h.name, [...under, ...plan.parts], plan.name, h.mtime);
    const parts = [...under, ...plan.parts];
    const base = plan.base;
    let linkSource: string | undefined;
    if (plan.link) {
      // The link names an entry of the archive: its parents resolve inside the root; its own last
      // component is not followed (link(2) links a symlink itself).
      linkSource = resolveInRootSync(this.root, [...under, ...plan.link].join('/'), { followFinal: false }).path;
    }

    let parent: { path: string; rel: string };
    try {
      parent = this.parentOf(parts);
    } catch (e) {
      throw wrap(h.name, e);
    }
    const target = join(parent.path, base);
    const rel = parent.rel ? `${parent.rel}/${base}` : base;
    try {
      const existing = lstatIfThere(target);
      if (this.opts.plain && existing && existing.isDirectory() !== (h.type === 'dir')) {
        const [what, by] = existing.isDirectory() ? ['directory', 'non-directory'] : ['non-directory', 'directory'];
        throw new LayerApplyError(h.name, `cannot overwrite ${what} ${JSON.stringify(`/${rel}`)} with ${by}`);
      }
      if (h.type === 'dir') {
        if (existing && !existing.isDirectory()) this.removeExisting(target, existing);
        if (!existing || !existing.isDirectory()) mkdirSync(target, { mode: 0o700 });
        this.setOwner(target, h);
        chmodSync(target, h.mode);
        this.setXattrs(target, h);
        const st = lstatSync(target);
        this.dirTimes.push({ rel, ino: st.ino, dev: st.dev, mtime: h.mtime });
      } else {
        if (existing) {
          if (linkSource !== undefined && linkSource === target) {
            // A hard link to itself: nothing to do (removing first would lose the file).
            this.markUnpacked(rel);
            return;
          }
          this.removeExisting(target, existing);
        }
        await this.create(h, target, body, linkSource);
      }
      this.markUnpacked(rel);
    } catch (e) {
      throw wrap(h.name, e);
    }
  }

  private async create(h: TarHeader, target: string, body: AsyncIterable<Buffer>, linkSource: string | undefined): Promise<void> {
    switch (h.type) {
      case 'file': {
        const fd = openSync(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
            this.bytes += chunk.length;
          }
          this.tryChown(() => fchownSync(fd, ...this.ownerOf(h)));
          fchmodSync(fd, h.mode);
          futimesSync(fd, h.mtime, h.mtime);
        } finally {
          closeSync(fd);
        }
        this.setXattrs(target, h);
        return;
      }
      case 'symlink':
        // Stored verbatim: confinement happens whenever a path is resolved through it.
        symlinkSync(h.linkname, target);
        this.tryChown(() => lchownSync(target, ...this.ownerOf(h)));
        lutimesSync(target, h.mtime, h.mtime);
        return;
      case 'link': {
        linkSync(linkSource!, target);
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = h.type === 'char' ? 'c' : h.type === 'block' ? 'b' : 'p';
        mknod(target, kind, h.devmajor, h.devminor);
        this.setOwner(target, h);
        chmodSync(target, h.mode);
        this.setXattrs(target, h);
        lutimesSync(target, h.mtime, h.mtime);
        return;
      }
      default:
        throw new Error(`unsupported entry type ${String(h.type)}`);
    }
  }

  private tryChown(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      // Without CAP_CHOWN (rootless) files keep the caller's ownership, as rootless tar does.
      const code = (e as NodeJS.ErrnoException).code;
      if (this.isRoot || (code !== 'EPERM' && code !== 'EINVAL')) throw e;
    }
  }

  private ownerOf(h: TarHeader): [number, number] {
    const uid = this.opts.owner?.uid ?? h.uid;
    const gid = this.opts.owner?.gid ?? h.gid;
    const m = this.opts.toHostIds;
    if (!m) return [uid, gid];
    return [uid < m.size ? uid + m.uid : uid, gid < m.size ? gid + m.gid : gid];
  }

  private setOwner(p: string, h: TarHeader): void {
    this.tryChown(() => lchownSync(p, ...this.ownerOf(h)));
  }

  private setXattrs(p: string, h: TarHeader): void {
    for (const [k, v] of h.xattrs) {
      if (isOverlayPrivateXattr(k)) continue;
      try {
        setAttributeSync(p, k, v);
      } catch (e) {
        // Unprivileged, trusted.* / security.* cannot be set; tar and containerd skip them too.
        const code = (e as NodeJS.ErrnoException).code;
        if (!this.isRoot && (code === 'EPERM' || code === 'ENOTSUP')) continue;
        if (code === 'ENOTSUP' && !k.startsWith('user.')) continue;
        throw e;
      }
    }
  }

  /** `name` passed planEntry: a plain file name. */
  private whiteout(entry: string, parts: string[], name: string, mtime: number): void {
    const dirParts = parts.slice(0, -1);
    if (this.opts.mode === 'overlay') {
      let parent: { path: string; rel: string };
      try {
        parent = this.parentOf(parts);
      } catch (e) {
        throw wrap(entry, e);
      }
      const target = join(parent.path, name);
      const rel = parent.rel ? `${parent.rel}/${name}` : name;
      // A same-named entry of this layer already hides the lower one; keep it.
      if (this.unpacked.has(rel) || lstatIfThere(target)) return;
      try {
        mknod(target, 'c', 0, 0);
        // The entry's time, as a device node gets: packed again, the upper dir gives the same bytes.
        lutimesSync(target, mtime, mtime);
      } catch (e) {
        throw wrap(entry, e);
      }
      this.markUnpacked(rel);
      return;
    }
    // flat: delete the lower layers' file, confined; a missing parent means nothing to delete.
    let parent: { path: string; rel: string };
    try {
      parent = resolveInRootSync(this.root, dirParts.join('/'));
    } catch (e) {
      if (e instanceof NotADirectoryError) return; // nothing below a non-directory to delete
      throw e;
    }
    const rel = parent.rel ? `${parent.rel}/${name}` : name;
    if (this.unpacked.has(rel) || this.unpackedDirs.has(rel)) return; // same layer: not hidden
    const target = join(parent.path, name);
    const st = lstatIfThere(target);
    if (!st) return;
    try {
      this.removeExisting(target, st);
    } catch (e) {
      throw wrap(entry, e);
    }
  }

  private opaque(entry: string, parts: string[]): void {
    const dirParts = parts.slice(0, -1);
    if (this.opts.mode === 'overlay') {
      try {
        const dir = resolveInRootSync(this.root, dirParts.join('/'), { mkdirs: true });
        setAttributeSync(dir.path, this.opts.opaqueXattr ?? 'trusted.overlay.opaque', 'y');
        if (dir.rel) this.markUnpacked(dir.rel);
      } catch (e) {
        throw wrap(entry, e);
      }
      return;
    }
    const dir = resolveInRootSync(this.root, dirParts.join('/'));
    const st = lstatIfThere(dir.path);
    if (!st?.isDirectory()) return;
    try {
      this.clearLower(dir.path, dir.rel);
    } catch (e) {
      throw wrap(entry, e);
    }
  }

  /** Deletes what a directory held from lower layers, keeping this layer's entries (recursively). */
  private clearLower(path: string, rel: string): void {
    for (const name of readdirSync(path)) {
      const childRel = rel ? `${rel}/${name}` : name;
      const childPath = join(path, name);
      const st = lstatSync(childPath);
      const isAncestor = this.unpackedDirs.has(childRel);
      if (st.isDirectory() && isAncestor) {
        this.clearLower(childPath, childRel);
        continue;
      }
      if (this.unpacked.has(childRel)) continue;
      this.removeExisting(childPath, st);
    }
  }

  /** Directory mtimes last, deepest first, each re-resolved and checked to still be the same dir. */
  private finishDirTimes(): void {
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const d = this.dirTimes[i]!;
      const r = resolveInRootSync(this.root, d.rel, { followFinal: false });
      const st = lstatIfThere(r.path);
      if (!st || !st.isDirectory() || st.ino !== d.ino || st.dev !== d.dev) continue;
      lutimesSync(r.path, d.mtime, d.mtime);
    }
  }
}

/**
 * Node has no mknod(2); whiteouts and device nodes are rare in layers, so exec'ing coreutils'
 * `mknod` (a few ms) is cheaper than a native addon to build and ship.
 */
function mknod(path: string, kind: 'c' | 'b' | 'p', major: number, minor: number): void {
  const args = kind === 'p' ? [path, 'p'] : [path, kind, String(major), String(minor)];
  const r = spawnSync('mknod', ['-m', '0600', ...args], { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`mknod ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

function wrap(entry: string, e: unknown): Error {
  // Resolution errors (loops, a file where a directory is needed) get the entry name added.
  if (e instanceof NotADirectoryError || e instanceof SymlinkLoopError) return new LayerApplyError(entry, e.message, { cause: e });
  if (e instanceof ImgbuildError) return e;
  const err = e as NodeJS.ErrnoException;
  return new LayerApplyError(entry, String(err.message ?? e), { cause: e });
}

/** Applies an uncompressed layer tar onto `root` (see the module comment for both modes). */
export async function applyLayer(root: string, tar: Readable, opts: ApplyOptions): Promise<{ entries: number; bytes: number }> {
  throwIfAborted(opts.signal);
  return new Applier(root, opts).apply(tar);
}
