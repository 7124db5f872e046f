/**
 * A container's size as `ps -s` shows it: its writable layer (Docker's SizeRw) and everything it
 * sees, that layer and its image's unpacked layers (SizeRootFs, "virtual").
 */
import { chainIds, imageId } from '../image/model.js';
import { existingContainerSnapshotters, snapshotUsage } from './snapshotter.js';
import { listImages } from '../store/images.js';
import type { OciStore } from '../store/store.js';
import type { ContainerRecord } from './record.js';

export interface ContainerSize {
  rw: number;
  rootFs: number;
}

export async function containerSizes(store: OciStore, records: readonly ContainerRecord[], o: { signal?: AbortSignal } = {}): Promise<Map<string, ContainerSize>> {
  const out = new Map<string, ContainerSize>();
  const sns = await existingContainerSnapshotters(store.root, o).catch(() => []);
  if (sns.length === 0) return out;
  const usage = (key: string): Promise<number> => snapshotUsage(sns, key);
  // An image's unpacked size: the sum of its layers' snapshots, each counted once per image.
  const wanted = new Set(records.map((r) => r.imageId));
  const imageSize = new Map<string, number>();
  for (const li of await listImages(store)) {
    if (!li.image || !wanted.has(imageId(li.image)) || imageSize.has(imageId(li.image))) continue;
    let n = 0;
    for (const c of chainIds(li.image.config.rootfs?.diff_ids ?? [])) n += await usage(c);
    imageSize.set(imageId(li.image), n);
  }
  for (const r of records) {
    const rw = await usage(r.snapshotKey);
    out.set(r.id, { rw, rootFs: rw + (imageSize.get(r.imageId) ?? 0) });
  }
  return out;
}
