/**
 * The storage drivers (snapshotters) and the choice among them, podman's chain for rootless use:
 * the kernel's overlay (`userxattr` in a user namespace, kernel >= 5.11), else fuse-overlayfs where
 * the kernel refuses, else the copying vfs that mounts nothing. Each is found usable by a probe
 * (the overlay ones cached in their root's probe.json, so a later command mounts nothing to know).
 *
 * Every driver keeps its snapshots under its own root (`<root>/overlay`, `<root>/fuse-overlayfs`,
 * `<root>/vfs`), unpacked from the store's blobs, and a container records the one it was made
 * with: images are blobs, not a driver's dirs, so two drivers on one store cost only an unpack
 * each, and nothing needs refusing (podman must refuse, its layers being the driver's dirs).
 */
import { ImgbuildError } from '../errors.js';
import { fuseOverlayRoot, overlayRoot, vfsRoot } from '../store/paths.js';
import { probeFuseOverlay } from './fuse-probe.js';
import { OverlaySnapshotter } from './overlay.js';
import { probeOverlay } from './probe.js';
import type { ProbeResult } from './snapshotter.js';
import { VfsSnapshotter } from './vfs.js';

export type StorageDriver = 'overlay' | 'fuse-overlayfs' | 'vfs';
export const STORAGE_DRIVERS: readonly StorageDriver[] = ['overlay', 'fuse-overlayfs', 'vfs'];
/** The environment variable naming the driver when no `--storage-driver` does (podman: STORAGE_DRIVER). */
export const STORAGE_DRIVER_ENV = 'IMGBUILD_STORAGE_DRIVER';

export function parseStorageDriver(v: string): StorageDriver {
  if ((STORAGE_DRIVERS as readonly string[]).includes(v)) return v as StorageDriver;
  throw new ImgbuildError('INVALID_ARGUMENT', `invalid storage driver ${JSON.stringify(v)}: overlay, fuse-overlayfs or vfs`);
}

/** The driver `--storage-driver` or, without it, $IMGBUILD_STORAGE_DRIVER asks for (undefined: choose). */
export function requestedDriver(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): StorageDriver | undefined {
  const v = flag ?? env[STORAGE_DRIVER_ENV];
  return v === undefined || v === '' ? undefined : parseStorageDriver(v);
}

export function driverRoot(root: string, driver: StorageDriver): string {
  return driver === 'overlay' ? overlayRoot(root) : driver === 'fuse-overlayfs' ? fuseOverlayRoot(root) : vfsRoot(root);
}

export interface DriverChoice {
  driver: StorageDriver;
  /** The overlay drivers' probe results, as far as the chain went (why one was passed over). */
  probes: Partial<Record<'overlay' | 'fuse-overlayfs', ProbeResult>>;
}

/** The first driver of the chain that works for `root`, or `requested` as it is. */
export async function chooseDriver(root: string, requested?: StorageDriver): Promise<DriverChoice> {
  if (requested !== undefined) return { driver: requested, probes: {} };
  const overlay = await probeOverlay(overlayRoot(root));
  if (overlay.supported) return { driver: 'overlay', probes: { overlay } };
  const fuse = await probeFuseOverlay(fuseOverlayRoot(root));
  return { driver: fuse.supported ? 'fuse-overlayfs' : 'vfs', probes: { overlay, 'fuse-overlayfs': fuse } };
}

/** Opens driver `driver`'s snapshotter of `root` (an overlay one refuses with OverlayUnsupportedError where it cannot mount). */
export function openDriver(root: string, driver: 'overlay' | 'fuse-overlayfs', o?: { signal?: AbortSignal }): Promise<OverlaySnapshotter>;
export function openDriver(root: string, driver: StorageDriver, o?: { signal?: AbortSignal }): Promise<OverlaySnapshotter | VfsSnapshotter>;
export function openDriver(root: string, driver: StorageDriver, o: { signal?: AbortSignal } = {}): Promise<OverlaySnapshotter | VfsSnapshotter> {
  const so = o.signal ? { signal: o.signal } : {};
  if (driver === 'vfs') return VfsSnapshotter.open(vfsRoot(root), so);
  return OverlaySnapshotter.open(driverRoot(root, driver), { ...so, kind: driver });
}
