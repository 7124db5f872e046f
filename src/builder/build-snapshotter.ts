/**
 * The snapshotter a build uses: the one `--storage-driver` names, else the first of the chain
 * that works here (snapshots/drivers.ts): overlay, fuse-overlayfs where the kernel refuses, or the
 * copying vfs snapshotter that needs no mount at all (an unprivileged container). All have their
 * layers packed into and unpacked from the store.
 */
import { OverlayUnsupportedError } from '../snapshots/errors.js';
import { OverlaySnapshotter } from '../snapshots/overlay.js';
import { diffSnapshot, hashSnapshotLayer, keepLazyLayer } from '../snapshots/diff.js';
import { chooseDriver, openDriver, type StorageDriver } from '../snapshots/drivers.js';
import { unpackImage } from '../snapshots/unpack.js';
import { VfsSnapshotter } from '../snapshots/vfs.js';
import { diffVfsSnapshot } from '../snapshots/vfs-diff.js';
import type { OciStore } from '../store/store.js';
import type { BuildSnapshotter } from './dispatch/seams.js';

export { parseStorageDriver, type StorageDriver } from '../snapshots/drivers.js';

/** Opens the build's snapshotter: `driver`, or the first of the chain that works here. */
export async function openBuildSnapshotter(
  store: OciStore,
  root: string,
  o: { driver?: StorageDriver; signal?: AbortSignal } = {},
): Promise<BuildSnapshotter & { driver: StorageDriver }> {
  const so = o.signal ? { signal: o.signal } : {};
  let { driver } = await chooseDriver(root, o.driver);
  for (;;) {
    try {
      const sn = await openDriver(root, driver, so);
      return { ...(sn instanceof VfsSnapshotter ? vfsBuildSnapshotter(store, sn) : overlayBuildSnapshotter(store, sn)), driver };
    } catch (e) {
      // Asked for by name: its failure is the answer. Chosen by a cached probe that no longer
      // holds (a module unloaded): the next of the chain.
      if (o.driver !== undefined || !(e instanceof OverlayUnsupportedError) || driver === 'vfs') throw e;
      driver = driver === 'overlay' ? 'fuse-overlayfs' : 'vfs';
    }
  }
}

function overlayBuildSnapshotter(store: OciStore, sn: OverlaySnapshotter): BuildSnapshotter {
  return {
    ...common(store, sn),
    volatileMounts: (mounts) => sn.volatileMounts(mounts),
    // A build's layer is hashed only, and written when something needs its bytes (store/lazy.ts).
    diff: (key, { lazy, ...o }) => (lazy ? hashSnapshotLayer(sn, key, o) : diffSnapshot(store, sn, key, { compression: 'none', ...o })),
    keepLazy: (name, blob) => keepLazyLayer(store, sn, name, blob),
  };
}

/** vfs steps write into the snapshot's whole rootfs (`inPlace`), and their layer is a comparison. */
function vfsBuildSnapshotter(store: OciStore, sn: VfsSnapshotter): BuildSnapshotter {
  return {
    ...common(store, sn),
    inPlace: true,
    diff: (key, { lazy: _lazy, ...o }) => diffVfsSnapshot(store, sn, key, { compression: 'none', ...o }),
  };
}

function common(store: OciStore, sn: OverlaySnapshotter | VfsSnapshotter): Omit<BuildSnapshotter, 'diff' | 'inPlace'> {
  return {
    prepare: (key, parent, o) => sn.prepare(key, parent, o),
    view: (key, parent, o) => sn.view(key, parent, o),
    commit: (name, key, o) => sn.commit(name, key, o),
    remove: (key) => sn.remove(key),
    upperDir: (key) => sn.upperDir(key),
    mounts: (key) => sn.mounts(key),
    acquire: (key, lease, o) => sn.acquire(key, lease, o),
    unpack: async (layers, diffIds, o) => {
      await unpackImage(store, sn, layers, diffIds, o);
    },
  };
}
