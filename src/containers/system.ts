/**
 * The image part of `image prune` and `system prune` (containers/prune.ts has the containers'),
 * reporting the bytes it gave back.
 */
import { pruneImageSnapshots } from '../snapshots/diff.js';
import type { OciStore } from '../store/store.js';
import { pruneImages, type PrunedImage } from './images.js';

/**
 * Removes dangling images (with `all`, every image no container was created from), then the blobs
 * and unpacked layers nothing needs any more.
 */
export async function pruneUnusedImages(store: OciStore, o: { all?: boolean; signal?: AbortSignal } = {}): Promise<{ images: PrunedImage[]; bytes: number }> {
  const images = await pruneImages(store, { all: o.all });
  const blobs = await store.gc();
  const snaps = await pruneImageSnapshots(store, o.signal ? { signal: o.signal } : {});
  return { images, bytes: blobs.bytes + snaps.bytes };
}
