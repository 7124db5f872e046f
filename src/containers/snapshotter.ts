/**
 * Which snapshotter holds a container's writable layer: the one its record names
 * (`isolation.snapshotter`; overlay for records made before it was recorded), chosen when it was
 * created: the one asked for
 * (`--storage-driver`, $IMGBUILD_STORAGE_DRIVER), else the kernel's overlay, else fuse-overlayfs
 * (snapshots/drivers.ts). A container needs a mounted rootfs to run, so the copying vfs driver
 * serves builds only.
 */
import { access } from 'node:fs/promises';
import { ImgbuildError } from '../errors.js';
import { driverRoot, openDriver, type StorageDriver } from '../snapshots/drivers.js';
import { OverlayUnsupportedError } from '../snapshots/errors.js';
import type { OverlayKind, OverlaySnapshotter } from '../snapshots/overlay.js';

export type ContainerDriver = OverlayKind;
export const CONTAINER_DRIVERS: readonly ContainerDriver[] = ['overlay', 'fuse-overlayfs'];

/** The driver of a container's record. */
export function driverOf(rec: { isolation?: { snapshotter?: string } }): ContainerDriver {
  return rec.isolation?.snapshotter === 'fuse-overlayfs' ? 'fuse-overlayfs' : 'overlay';
}

/** `driver`'s snapshotter of `root`, or `open` when it is that one already (saves re-opening it). */
export async function containerSnapshotter(root: string, driver: ContainerDriver, o: { snapshotter?: OverlaySnapshotter; signal?: AbortSignal } = {}): Promise<OverlaySnapshotter> {
  if (o.snapshotter && o.snapshotter.kind === driver) return o.snapshotter;
  return openDriver(root, driver, o.signal ? { signal: o.signal } : {});
}

/**
 * The snapshotter a new container gets: `requested`, or the first of overlay and fuse-overlayfs
 * that works here. The common case (overlay, probed and cached) costs what it did before: one open.
 */
export async function newContainerSnapshotter(root: string, requested: StorageDriver | undefined, o: { signal?: AbortSignal } = {}): Promise<OverlaySnapshotter> {
  const so = o.signal ? { signal: o.signal } : {};
  if (requested === 'vfs') throw new ImgbuildError('NOT_IMPLEMENTED', 'the vfs storage driver serves builds only: a container needs overlay or fuse-overlayfs');
  if (requested !== undefined) return openDriver(root, requested, so);
  try {
    return await openDriver(root, 'overlay', so);
  } catch (e) {
    if (!(e instanceof OverlayUnsupportedError)) throw e;
    return openDriver(root, 'fuse-overlayfs', so).catch((f: unknown) => {
      if (!(f instanceof OverlayUnsupportedError)) throw f;
      throw new ImgbuildError('NOT_IMPLEMENTED', `no storage driver can mount a container's rootfs here: ${e.message}; ${f.message}`);
    });
  }
}

/** The snapshotters of every driver that has a root in this store (for sweeps over all containers' layers). */
export async function existingContainerSnapshotters(root: string, o: { snapshotter?: OverlaySnapshotter; signal?: AbortSignal } = {}): Promise<OverlaySnapshotter[]> {
  const out: OverlaySnapshotter[] = [];
  for (const d of CONTAINER_DRIVERS) {
    if (o.snapshotter?.kind === d) {
      out.push(o.snapshotter);
      continue;
    }
    // A driver never used here has no root; overlay's is opened (made) as before.
    if (d !== 'overlay' && !(await access(driverRoot(root, d)).then(() => true, () => false))) continue;
    const sn = await containerSnapshotter(root, d, o).catch((e: unknown) => {
      if (e instanceof OverlayUnsupportedError) return undefined;
      throw e;
    });
    if (sn) out.push(sn);
  }
  return out;
}

/** The bytes of snapshot `key` in the first of `sns` that holds it (0 when none does). */
export async function snapshotUsage(sns: readonly OverlaySnapshotter[], key: string): Promise<number> {
  for (const sn of sns) {
    const u = await sn.usage(key).catch(() => undefined);
    if (u) return u.size;
  }
  return 0;
}
