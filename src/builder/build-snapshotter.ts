/**
 * The snapshotter a build uses: overlay where overlayfs can be mounted, else the copying vfs
 * snapshotter (snapshots/vfs.ts) that needs no mount at all (an unprivileged container), or the
 * one `--storage-driver` names. Both have their layers packed into and unpacked from the store.
 */
import { ImgbuildError } from '../errors.js';
import { OverlayUnsupportedError } from '../snapshots/errors.js';
import { OverlaySnapshotter } from '../snapshots/overlay.js';
import { diffSnapshot } from '../snapshots/diff.js';
import { unpackImage } from '../snapshots/unpack.js';
import { VfsSnapshotter } from '../snapshots/vfs.js';
import { diffVfsSnapshot } from '../snapshots/vfs-diff.js';
import { overlayRoot, vfsRoot } from '../store/paths.js';
import type { OciStore } from '../store/store.js';
import type { BuildSnapshotter } from './dispatch/seams.js';

export type StorageDriver = 'overlay' | 'vfs';

export function parseStorageDriver(v: string): StorageDriver {
  if (v === 'overlay' || v === 'vfs') return v;
  throw new ImgbuildError('INVALID_ARGUMENT', `invalid storage driver ${JSON.stringify(v)}: overlay or vfs`);
}

/** Opens the build's snapshotter: `driver`, or overlay when it mounts here and vfs otherwise. */
export async function openBuildSnapshotter(
  store: OciStore,
  root: string,
  o: { driver?: StorageDriver; signal?: AbortSignal } = {},
): Promise<BuildSnapshotter & { driver: StorageDriver }> {
  const so = o.signal ? { signal: o.signal } : {};
  if (o.driver !== 'vfs') {
    try {
      return { ...overlayBuildSnapshotter(store, await OverlaySnapshotter.open(overlayRoot(root), so)), driver: 'overlay' };
    } catch (e) {
      // Asked for overlay by name: its failure is the answer.
      if (o.driver === 'overlay' || !(e instanceof OverlayUnsupportedError)) throw e;
    }
  }
  return { ...vfsBuildSnapshotter(store, await VfsSnapshotter.open(vfsRoot(root), so)), driver: 'vfs' };
}

function overlayBuildSnapshotter(store: OciStore, sn: OverlaySnapshotter): BuildSnapshotter {
  return {
    ...common(store, sn),
    diff: (key, o) => diffSnapshot(store, sn, key, { compression: 'none', ...o }),
  };
}

/** vfs steps write into the snapshot's whole rootfs (`inPlace`), and their layer is a comparison. */
function vfsBuildSnapshotter(store: OciStore, sn: VfsSnapshotter): BuildSnapshotter {
  return {
    ...common(store, sn),
    inPlace: true,
    diff: (key, o) => diffVfsSnapshot(store, sn, key, { compression: 'none', ...o }),
  };
}

function common(store: OciStore, sn: OverlaySnapshotter | VfsSnapshotter): Omit<BuildSnapshotter, 'diff' | 'inPlace'> {
  return {
    prepare: (key, parent, o) => sn.prepare(key, parent, o),
    view: (key, parent, o) => sn.view(key, parent, o),
    commit: (name, key, o) => sn.commit(name, key, o),
    remove: (key) => sn.remove(key),
    upperDir: (key) => sn.upperDir(key),
    acquire: (key, lease, o) => sn.acquire(key, lease, o),
    unpack: async (layers, diffIds, o) => {
      await unpackImage(store, sn, layers, diffIds, o);
    },
  };
}
