/**
 * Snapshot → layer, and snapshot garbage collection.
 *
 * With overlay the upper dir IS the change set: diffSnapshot packs it in overlay mode (char
 * device 0:0 → `.wh.<name>`, opaque xattr → `.wh..wh..opq`) and never walks the merged rootfs.
 * The init layer lives in its own lower dir, so its placeholders are never in the upper dir.
 */
import { ImgbuildError } from '../errors.js';
import { writeLayerBlob, type LayerBlob } from '../layers/compress.js';
import type { Compression } from '../layers/media-types.js';
import type { OciStore } from '../layers/store.js';
import { packDir } from '../layers/tar/pack.js';
import type { OverlaySnapshotter } from './overlay.js';
import type { SnapshotInfo } from './snapshotter.js';
import { isStaleUnpack } from './unpack.js';

export async function diffSnapshot(
  store: OciStore,
  sn: OverlaySnapshotter,
  key: string,
  opts: { compression: Compression; format?: 'oci' | 'docker'; sourceDateEpoch?: number; signal?: AbortSignal },
): Promise<LayerBlob> {
  const upper = await sn.upperDir(key);
  const tar = packDir(upper, { mode: 'overlay', sourceDateEpoch: opts.sourceDateEpoch, signal: opts.signal });
  const o: Parameters<typeof writeLayerBlob>[2] = { compression: opts.compression, signal: opts.signal };
  if (opts.format !== undefined) o.format = opts.format;
  return writeLayerBlob(store, tar, o);
}

/**
 * Removes every snapshot that is not needed: kept are the committed snapshots named in `keep`,
 * every active snapshot and view (except the leftovers of a killed unpack), and every ancestor
 * of those. Children are removed before their
 * parents. Returns the removed keys and the bytes they held.
 */
export async function pruneSnapshots(sn: OverlaySnapshotter, keep: Set<string>): Promise<{ removed: string[]; bytes: number }> {
  const all = new Map<string, SnapshotInfo>();
  await sn.walk((i) => void all.set(i.key, i));
  const live = new Set<string>();
  const mark = (key: string | undefined): void => {
    for (let k = key; k !== undefined && !live.has(k); k = all.get(k)?.parent) {
      if (!all.has(k)) break;
      live.add(k);
    }
  };
  for (const [key, info] of all) {
    if ((info.kind !== 'committed' && !isStaleUnpack(info)) || keep.has(key)) mark(key);
  }
  // Depth of each dead snapshot, so the deepest (children) go first.
  const depth = (key: string): number => {
    let d = 0;
    for (let k = all.get(key)?.parent; k !== undefined; k = all.get(k)?.parent) d++;
    return d;
  };
  const dead = [...all.keys()].filter((k) => !live.has(k)).sort((a, b) => depth(b) - depth(a));
  const removed: string[] = [];
  let bytes = 0;
  for (const key of dead) {
    const { size } = await sn.usage(key);
    try {
      await sn.remove(key);
    } catch (e) {
      // A child appeared meanwhile (another process prepared on it): it is live now, skip it.
      if (e instanceof ImgbuildError && e.code === 'FAILED_PRECONDITION') continue;
      throw e;
    }
    removed.push(key);
    bytes += size;
  }
  return { removed, bytes };
}
