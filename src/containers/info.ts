/**
 * What `info` reports of this host and store: container counts by state, images, the storage
 * driver and its overlay options, the cgroup version and driver, the kernel and OS, whether this
 * runs rootless. Everything is read from the store and the kernel; there is no daemon to ask.
 */
import { readFile } from 'node:fs/promises';
import { arch, availableParallelism, release, totalmem } from 'node:os';
import { detectCgroupVersion } from '../host/cgroups.js';
import { findDelegation } from '../host/rootless-cgroup.js';
import { probeOverlay } from '../snapshots/probe.js';
import { overlayRoot } from '../snapshots/overlay.js';
import { probeFuseOverlay } from '../snapshots/fuse-probe.js';
import { chooseDriver, type StorageDriver } from '../snapshots/drivers.js';
import { fuseOverlayRoot } from '../store/paths.js';
import { listImages } from '../store/images.js';
import type { OciStore } from '../store/store.js';
import { imageId } from '../image/model.js';
import { listContainers } from './list.js';
import { hostIsolation, type HostIsolation, type SnapshotterName } from './isolation.js';
import { rootlessIds } from '../host/userns.js';
import { probeRootlessNetwork } from '../host/rootless-network.js';
import { resolveIsolation, type IsolationChoice } from '../sandbox/isolation.js';

export interface SystemInfo extends HostIsolation {
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  DriverStatus: [string, string][];
  KernelVersion: string;
  OperatingSystem: string;
  OSType: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  RootDir: string;
  Rootless: boolean;
  Runtimes: string[];
  DefaultRuntime: string;
  LoggingDriver: string;
  /** Why build steps get only chroot isolation here (the probe's failing step), when they do. */
  IsolationReason?: string;
}

/** PRETTY_NAME of /etc/os-release (`Debian GNU/Linux 12 (bookworm)`). */
async function operatingSystem(): Promise<string> {
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(await readFile(p, 'utf8'));
      if (m) return m[1]!;
    } catch {
      // next
    }
  }
  return 'Linux';
}

/** `info`'s Driver, DriverStatus and Snapshotter: the driver a new container or build gets, and why. */
async function storageInfo(root: string, requested?: StorageDriver): Promise<{ DriverStatus: [string, string][]; Snapshotter: SnapshotterName }> {
  const choice = await chooseDriver(root, requested);
  const { driver } = choice;
  const probe = driver === 'vfs' ? undefined : (choice.probes[driver] ?? (await (driver === 'overlay' ? probeOverlay(overlayRoot(root)) : probeFuseOverlay(fuseOverlayRoot(root))).catch(() => undefined)));
  const refused = (['overlay', 'fuse-overlayfs'] as const).flatMap((d) => {
    const p = choice.probes[d];
    return p && !p.supported ? [[`${d} refused`, p.reason ?? 'unknown reason'] as [string, string]] : [];
  });
  const status: [string, string][] =
    driver === 'vfs'
      ? [['Status', 'containers need overlay or fuse-overlayfs; builds copy each step\'s rootfs (vfs)']]
      : [
          ['Backing Filesystem', `${driver === 'overlay' ? 'overlay' : 'fuse-overlayfs'} upper and work dirs under the store root`],
          ['Supports d_type', 'true'],
          ['Native Overlay Diff', String(driver === 'overlay')],
          ['userxattr', String(probe?.userxattr ?? false)],
          ...(driver === 'overlay' ? [['Mount Options', (probe?.options ?? []).join(',') || '(none)'] as [string, string]] : [['Mount Program', 'fuse-overlayfs'] as [string, string]]),
        ];
  return { DriverStatus: [...status, ...refused], Snapshotter: driver === 'overlay' ? 'overlayfs' : driver };
}

export async function systemInfo(store: OciStore, o: { signal?: AbortSignal; storageDriver?: StorageDriver; isolation?: IsolationChoice } = {}): Promise<SystemInfo> {
  const root = store.root;
  const [containers, images, storage, cgroupVersion, os, build] = await Promise.all([
    listContainers(root, o),
    listImages(store),
    storageInfo(root, o.storageDriver),
    detectCgroupVersion().catch(() => undefined),
    operatingSystem(),
    // What build steps get here (sandbox/isolation.ts probes it). The sandbox helper may be
    // missing (an install without a compiler): then nothing runs, and nothing is said.
    resolveIsolation(o.isolation ?? 'auto', o.signal ? { signal: o.signal } : {}).catch(() => ({ isolation: 'oci' as const, reason: undefined })),
  ]);
  const byState = (s: string): number => containers.filter((c) => (c.state.status as string) === s).length;
  const ids = new Set(images.flatMap((li) => (li.image ? [imageId(li.image)] : [])));
  const rootlessUser = rootlessIds();
  const rootless = rootlessUser !== undefined;
  const delegation = rootless && cgroupVersion === 2 ? await findDelegation({ version: 2, hostUid: rootlessUser.uid }) : undefined;
  const rootlessNetwork = rootless ? probeRootlessNetwork() : undefined;
  const isolation = hostIsolation({
    rootless,
    ...(rootlessNetwork ? { rootlessNetworkCmd: rootlessNetwork } : {}),
    snapshotter: storage.Snapshotter,
    ...(build.isolation === 'chroot' ? { isolation: 'chroot' as const } : {}),
    ...(cgroupVersion ? { cgroupVersion } : {}),
    ...(delegation?.delegated ? { cgroupDelegation: { path: delegation.dir, controllers: delegation.controllers } } : {}),
  });
  return {
    Containers: containers.length,
    ContainersRunning: byState('running'),
    ContainersPaused: byState('paused'),
    ContainersStopped: containers.length - byState('running') - byState('paused'),
    Images: ids.size,
    DriverStatus: storage.DriverStatus,
    ...isolation,
    KernelVersion: release(),
    OperatingSystem: os,
    OSType: 'linux',
    Architecture: arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch(),
    NCPU: availableParallelism(),
    MemTotal: totalmem(),
    RootDir: root,
    Rootless: rootless,
    Runtimes: ['imgbuild', 'runc'],
    DefaultRuntime: 'imgbuild',
    // The container's output as written, in one file per container (`logs` reads it back).
    LoggingDriver: 'file',
    ...(build.reason ? { IsolationReason: build.reason } : {}),
  };
}
