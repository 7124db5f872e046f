/**
 * The overlay snapshotter, modelled on containerd's `plugins/snapshots/overlay`:
 *
 *   <root>/metadata.json           kinds, parents, labels, ids (metadata.ts)
 *   <root>/snapshots/<id>/fs       the layer: upper dir of an active snapshot, content of a committed one
 *   <root>/snapshots/<id>/work     overlay workdir (active snapshots)
 *   <root>/snapshots/<id>/init     optional init layer of placeholders (active snapshots, never committed)
 *   <root>/new-*, <root>/rm-*      a snapshot dir being created / removed
 *   <root>/probe-<pid>-*           the overlay probe's scratch dir (probe.ts)
 *
 * A snapshot dir is built under `new-*` and renamed into place under the metadata lock, and the
 * metadata is saved before the lock is released; whatever a crash leaves (a `new-*` or `rm-*`
 * dir, or a `snapshots/<id>` the metadata does not know) is invisible and removed on open.
 *
 * Leases (store/lease.ts): an active snapshot or view made under a lease carries its id as a
 * label and is temporary, garbage once the lease's process is gone; a committed snapshot made or
 * found (`acquire`) under a lease is added to it inside the metadata transaction, and `removeWhere`
 * runs its selection under the same lock, so a collector reading leases there never removes a
 * snapshot between another process finding it and leasing it.
 *
 * Mounts use paths relative to `<root>/snapshots` plus `cwd`, so 128+ layers fit in the page of
 * mount data; a read-only single layer is a bind mount because overlay needs two lowers without
 * an upper.
 */
import { chmod, chown, lstat, mkdir, mkdtemp, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ImgbuildError, throwIfAborted } from '../errors.js';
import { sweepLocks, sweepTempFiles } from '../atomic.js';
import { LEASE_LABEL } from '../store/lease.js';
import { isProcessAlive } from '../pid.js';
import type { Mount } from '../sandbox/spec.js';
import { OverlayUnsupportedError, SnapshotNotFoundError, SnapshotStateError } from './errors.js';
import { parentIdsOf, type SnapshotRecord } from './metadata.js';
import { mountPointsUnder, unmount } from './mount.js';
import { probeOverlay, PROBE_DIR } from './probe.js';
import { fuseOverlayMount, probeFuseOverlay } from './fuse-probe.js';
import { diskUsage, RecordedSnapshotter } from './records.js';
import { hasPlaceholders, type InitLayer, type PrepareOptions, type ProbeResult, type SnapshotOptions, type Snapshotter, type Usage } from './snapshotter.js';
import { LayerView, type MergedEntry } from './upper-view.js';

/** The kernel's limit on mount data (one page) and on overlay stack depth (OVL_MAX_STACK). */
const MOUNT_DATA_LIMIT = 4095;
const MAX_LOWERS = 500;

/** Where a store keeps its overlay snapshots (image layers and containers alike). */
export { overlayRoot } from '../store/paths.js';

/** What mounts an overlay snapshotter's layers: the kernel, or fuse-overlayfs where the kernel refuses. */
export type OverlayKind = 'overlay' | 'fuse-overlayfs';

export interface OverlayOpenOptions {
  signal?: AbortSignal;
  /** `fuse-overlayfs`: the same layout under its own root, mounted by the fuse-overlayfs binary. */
  kind?: OverlayKind;
  /** Re-run the overlay probe instead of trusting `<root>/probe.json`. */
  reprobe?: boolean;
}

function normalizeInitPath(p: string): string {
  // Normalising against '/' clamps any '..' at the root; the init dir is freshly made, holds no
  // symlinks, so the joined path cannot leave it.
  const n = posix.normalize(`/${p}`).replace(/^\/+/, '').replace(/\/+$/, '');
  if (n === '' || n === '.') throw new ImgbuildError('INVALID_ARGUMENT', `init path ${JSON.stringify(p)} names the root`);
  return n;
}

export class OverlaySnapshotter extends RecordedSnapshotter implements Snapshotter {
  private constructor(
    root: string,
    readonly probe: ProbeResult,
    readonly kind: OverlayKind,
  ) {
    super(root);
  }

  static async open(rootArg: string, opts: OverlayOpenOptions = {}): Promise<OverlaySnapshotter> {
    // Mount options name layer dirs relative to an absolute mount cwd: resolve a relative root
    // (`--root ./store`) once, against the cwd of the caller.
    const root = resolve(rootArg);
    await mkdir(join(root, 'snapshots'), { recursive: true });
    const kind = opts.kind ?? 'overlay';
    const probe = await (kind === 'fuse-overlayfs' ? probeFuseOverlay : probeOverlay)(root, { refresh: opts.reprobe ?? false });
    if (!probe.supported) throw new OverlayUnsupportedError(probe, `${kind === 'overlay' ? 'overlayfs' : kind} is not usable here: ${probe.reason ?? 'unknown reason'}`);
    const sn = new OverlaySnapshotter(root, probe, kind);
    await sn.cleanup(opts.signal);
    return sn;
  }

  /** The overlay xattr that marks an opaque directory in this root's layers. */
  get opaqueXattr(): ProbeResult['opaqueXattr'] {
    return this.probe.opaqueXattr;
  }

  /**
   * fuse-overlayfs serves a running container on `<snapshot>/merged` (mount.ts sandboxRootfs);
   * a CLI killed before dropping its copy leaves it mounted there: unmounted before deletion. The
   * kernel's overlay mounts nothing in a snapshot's dir, and pays nothing for this.
   */
  protected override async releaseMounts(dir: string): Promise<void> {
    if (this.kind !== 'fuse-overlayfs') return;
    if ((await mountPointsUnder(resolve(dir))).length > 0) await unmount(dir);
  }

  /** A probe killed with its test mount in place (probe.ts) is the overlay root's own leftover. */
  protected async removeLeftover(name: string): Promise<boolean> {
    const probe = PROBE_DIR.exec(name);
    if (!probe || isProcessAlive(Number(probe[1]))) return false;
    // Never rm into a mount.
    const dir = join(this.root, name);
    if ((await mountPointsUnder(dir)).length > 0) await unmount(dir);
    await rm(dir, { recursive: true, force: true });
    return true;
  }

  protected async create(kind: 'active' | 'view', key: string, parent: string | undefined, o: PrepareOptions): Promise<Mount[]> {
    throwIfAborted(o.signal);
    if (kind === 'view' && o.init) throw new ImgbuildError('INVALID_ARGUMENT', 'a view cannot have an init layer');
    return this.meta.update(async (tx, save) => {
      // Fail on a bad key or parent before touching the disk.
      tx.checkCreate(key, parent);
      const parentIds = parent === undefined ? [] : [tx.require(parent).id, ...tx.parentIds(parent)];
      const tmp = await mkdtemp(join(this.root, 'new-'));
      let placed: string | undefined;
      try {
        const fs = join(tmp, 'fs');
        await mkdir(fs);
        // The merged root takes the upper dir's attributes: copy the parent's root.
        if (parentIds[0] !== undefined) await copyAttrs(join(this.dirOf(parentIds[0]), 'fs'), fs);
        else await chmod(fs, 0o755);
        if (kind === 'active') await mkdir(join(tmp, 'work'), { mode: 0o700 });
        const init = hasPlaceholders(o.init);
        if (init) await this.makeInit(join(tmp, 'init'), o.init!, parentIds);
        const labels = { ...(o.labels ?? {}), ...(o.lease ? { [LEASE_LABEL]: o.lease.id } : {}) };
        const rec = tx.create(key, kind, parent, labels, !!init);
        // Computed before anything is saved: a stack too deep to mount is refused, not recorded.
        const mounts = this.mountsFor(rec, parentIds);
        const dest = this.dirOf(rec.id);
        // A dir with this id can only be left by a crash before its metadata was saved.
        await rm(dest, { recursive: true, force: true });
        await rename(tmp, dest);
        placed = dest;
        await save();
        return mounts;
      } catch (e) {
        await rm(placed ?? tmp, { recursive: true, force: true });
        throw e;
      }
    }, { signal: o.signal });
  }

  /**
   * Builds the init layer. Directories copy the attributes of the same directory in the parent
   * chain (an init `/tmp` must not turn the image's 1777 `/tmp` into 0755 in the merged view).
   * A file to mount a file on is made only where the parent chain's merged view lacks the path:
   * it is not laid over the image's own file, and where a symlink is on the way the runtime
   * resolves the path inside the rootfs at mount time instead, as Docker does.
   */
  private async makeInit(dir: string, init: InitLayer, parentIds: number[]): Promise<void> {
    await mkdir(dir);
    await chmod(dir, 0o755);
    const view = new LayerView(parentIds.map((id) => join(this.dirOf(id), 'fs')));
    const below = (rel: string): MergedEntry => view.lookup(`/${rel}`);
    // Each dir made, with the parent chain's dir it took its attributes from (none: new).
    const made = new Map<string, string | undefined>();
    const ensureDir = async (rel: string): Promise<void> => {
      if (rel === '.' || rel === '' || made.has(rel)) return;
      await ensureDir(posix.dirname(rel));
      const p = join(dir, rel);
      await mkdir(p);
      await chmod(p, 0o755); // whatever the umask
      const e = below(rel);
      const src = e.kind === 'dir' ? e.stack[0]! : undefined;
      made.set(rel, src);
      if (src) await copyAttrs(src, p);
    };
    const makeFile = async (rel: string): Promise<void> => {
      await ensureDir(posix.dirname(rel));
      await writeFile(join(dir, rel), '', { flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      await chmod(join(dir, rel), 0o644);
    };
    for (const d of init.dirs) await ensureDir(normalizeInitPath(d));
    for (const f of init.files) {
      const rel = normalizeInitPath(f);
      if (!made.has(rel)) await makeFile(rel);
    }
    for (const f of init.mountFiles ?? []) {
      const rel = normalizeInitPath(f);
      if (!made.has(rel) && below(rel).kind === 'missing') await makeFile(rel);
    }
    // Parent dirs were created before their children changed their mtimes; restore them last.
    for (const [rel, src] of [...made].sort((a, b) => b[0].length - a[0].length)) {
      if (!src) continue;
      const st = await lstat(src);
      await utimes(join(dir, rel), st.atime, st.mtime);
    }
  }

  private mountsFor(rec: SnapshotRecord, parentIds: number[]): Mount[] {
    const abs = (id: number): string => join(this.dirOf(id), 'fs');
    if (rec.kind === 'active') {
      const lowers = [...(rec.init ? [`${rec.id}/init`] : []), ...parentIds.map((id) => `${id}/fs`)];
      if (lowers.length === 0) return [{ type: 'bind', source: abs(rec.id), options: ['rbind', 'rw'] }];
      return [this.overlay(lowers, { upperdir: `${rec.id}/fs`, workdir: `${rec.id}/work` })];
    }
    // Read-only: a view shows its parent chain; a committed snapshot shows itself and its parents.
    const chain = rec.kind === 'committed' ? [rec.id, ...parentIds] : parentIds;
    if (chain.length === 0) return [{ type: 'bind', source: abs(rec.id), options: ['rbind', 'ro'] }];
    if (chain.length === 1) return [{ type: 'bind', source: abs(chain[0]!), options: ['rbind', 'ro'] }];
    return [this.overlay(chain.map((id) => `${id}/fs`))];
  }

  private overlay(lowers: string[], upper?: { upperdir: string; workdir: string }): Mount {
    // fuse-overlayfs takes its options on its command line: no page limit, no kernel stack depth.
    if (this.kind === 'fuse-overlayfs') return fuseOverlayMount(lowers, this.snapshotsDir, upper);
    if (lowers.length > 1 && !this.probe.multipleLowers) {
      throw new OverlayUnsupportedError(this.probe, 'this kernel\'s overlayfs takes only one lowerdir');
    }
    if (lowers.length > MAX_LOWERS) {
      throw new ImgbuildError('INVALID_ARGUMENT', `${lowers.length} layers exceed overlayfs' limit of ${MAX_LOWERS} lower dirs`);
    }
    const options = [...this.probe.options, `lowerdir=${lowers.join(':')}`, ...(upper ? [`upperdir=${upper.upperdir}`, `workdir=${upper.workdir}`] : [])];
    const data = options.join(',');
    if (data.length > MOUNT_DATA_LIMIT) {
      throw new ImgbuildError('INVALID_ARGUMENT', `${lowers.length} layers need ${data.length} bytes of mount options, over the ${MOUNT_DATA_LIMIT}-byte limit`);
    }
    return { type: 'overlay', source: 'overlay', options, cwd: this.snapshotsDir };
  }

  /**
   * `mounts` (an active snapshot's) with its overlay mounted `volatile`: no flush of the upper
   * file system at its umount, and no mount of that upper dir after it (overlay marks its work
   * dir). Undefined for fuse-overlayfs, a kernel without the option, or options that would not fit.
   */
  volatileMounts(mounts: Mount[]): Mount[] | undefined {
    if (this.kind !== 'overlay' || !this.probe.volatile) return undefined;
    const ov = mounts.find((m) => m.type === 'overlay' && m.options.some((o) => o.startsWith('upperdir=')));
    if (!ov || [...ov.options, 'volatile'].join(',').length > MOUNT_DATA_LIMIT) return undefined;
    return mounts.map((m) => (m === ov ? { ...m, options: [...m.options, 'volatile'] } : m));
  }

  async mounts(key: string): Promise<Mount[]> {
    const doc = await this.meta.read();
    const rec = Object.hasOwn(doc.snapshots, key) ? doc.snapshots[key] : undefined;
    if (!rec) throw new SnapshotNotFoundError(key);
    return this.mountsFor(rec, parentIdsOf(doc, key));
  }

  async commit(name: string, key: string, o: SnapshotOptions & { usage?: Usage } = {}): Promise<void> {
    const doc = await this.meta.read();
    const cur = Object.hasOwn(doc.snapshots, key) ? doc.snapshots[key] : undefined;
    if (!cur) throw new SnapshotNotFoundError(key);
    if (cur.kind !== 'active') throw new SnapshotStateError(key, `only an active snapshot can be committed, it is ${cur.kind}`);
    // Measured outside the lock: the layer is the caller's and no longer changes.
    const usage = o.usage ?? (await diskUsage(join(this.dirOf(cur.id), 'fs'), o.signal));
    const trash = await this.meta.update(async (tx, save) => {
      const r = tx.commit(name, key, usage, o.labels ?? {});
      if (r.id !== cur.id) throw new SnapshotStateError(key, 'changed while it was being committed');
      // A committed snapshot outlives the lease its active one was made under.
      delete r.labels[LEASE_LABEL];
      await o.lease?.add({ snapshots: [name] });
      await save();
      // The init layer and overlay's scratch space are not part of a committed snapshot: moved
      // out at once (a crash just before leaves them unused in it, until the next prune).
      const moved: string[] = [];
      for (const sub of ['init', 'work']) {
        const dest = join(this.root, `rm-${r.id}-${sub}-${randomBytes(4).toString('hex')}`);
        // (Committed already: a failure here only leaves them for prune.)
        await rename(join(this.dirOf(r.id), sub), dest).then(() => moved.push(dest), () => {});
      }
      return moved;
    }, { signal: o.signal });
    for (const t of trash) await rm(t, { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Removes the lock files (metadata, per-layer unpack locks: owner files, stale locks) and
   * metadata temp files that dead processes left, and scratch dirs left in committed snapshots.
   */
  async sweep(): Promise<string[]> {
    const removed = [...(await sweepLocks(this.root)), ...(await sweepTempFiles(this.root))];
    for (const n of await sweepLocks(join(this.root, 'unpack'))) removed.push(`unpack/${n}`);
    // What a commit killed between saving and moving them out left in a committed snapshot.
    const doc = await this.meta.read();
    for (const r of Object.values(doc.snapshots)) {
      if (r.kind !== 'committed') continue;
      for (const sub of ['init', 'work', 'merged']) {
        const p = join(this.dirOf(r.id), sub);
        if (await lstat(p).then(() => true, () => false)) {
          await rm(p, { recursive: true, force: true });
          removed.push(`snapshots/${r.id}/${sub}`);
        }
      }
    }
    return removed;
  }

  /** The keys of `key`'s parent chain, nearest first (for pruning and export). */
  async parents(key: string): Promise<string[]> {
    const doc = await this.meta.read();
    if (!Object.hasOwn(doc.snapshots, key)) throw new SnapshotNotFoundError(key);
    const out: string[] = [];
    for (let p = doc.snapshots[key]!.parent; p !== undefined; p = doc.snapshots[p]?.parent) out.push(p);
    return out;
  }
}

async function copyAttrs(from: string, to: string): Promise<void> {
  const st = await lstat(from);
  await chown(to, st.uid, st.gid);
  await chmod(to, st.mode & 0o7777);
  await utimes(to, st.atime, st.mtime);
}
