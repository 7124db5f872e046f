/**
 * What images and containers take on disk, for `system df`: an image is its blobs (manifest,
 * config, layers) and its unpacked layers (the committed snapshots of its chain ids); bytes
 * that several images share are counted once in the totals and reported as shared per image. A
 * container is its writable layer. An image is active while a container was created from it.
 */
import type { Digest } from '../image/digest.js';
import { chainIds, imageId } from '../image/model.js';
import { existingContainerSnapshotters, snapshotUsage } from './snapshotter.js';
import { listImages } from '../store/images.js';
import type { OciStore } from '../store/store.js';
import { imageUsers } from './images.js';
import { listContainers } from './list.js';
import type { ContainerRecord } from './record.js';

export interface ImageUsage {
  id: string;
  /** Full references (none for a dangling image). */
  refs: string[];
  created?: string;
  size: number;
  sharedSize: number;
  /** Containers created from it. */
  containers: number;
}

export interface ContainerUsage {
  record: ContainerRecord;
  /** Bytes of its writable layer. */
  size: number;
}

export interface DiskUsage {
  images: ImageUsage[];
  /** Bytes of all images, shared bytes once. */
  imagesSize: number;
  /** Bytes no active image needs. */
  imagesReclaimable: number;
  containers: ContainerUsage[];
  /** The blobs images reach (so the build cache can leave them out). */
  imageBlobs: Set<Digest>;
}

export async function diskUsage(store: OciStore, o: { signal?: AbortSignal } = {}): Promise<DiskUsage> {
  const root = store.root;
  const sns = await existingContainerSnapshotters(root, o).catch(() => []);
  const sn = sns.length > 0 ? { usage: async (key: string) => ({ size: await snapshotUsage(sns, key) }) } : undefined;
  const users = await imageUsers(root);
  // Every piece of an image: blobs by digest, unpacked layers by chain id, with their sizes.
  const pieceSize = new Map<string, number>();
  const byId = new Map<string, { usage: ImageUsage; pieces: Set<string> }>();
  const imageBlobs = new Set<Digest>();
  for (const li of await listImages(store)) {
    if (!li.image) continue;
    const img = li.image;
    const id = imageId(img);
    let e = byId.get(id);
    if (!e) {
      e = { usage: { id, refs: [], ...(img.config.created ? { created: img.config.created } : {}), size: 0, sharedSize: 0, containers: 0 }, pieces: new Set() };
      byId.set(id, e);
    }
    if (li.entry.ref !== undefined) e.usage.refs.push(li.entry.ref);
    e.usage.containers = Math.max(e.usage.containers, (users.get(li.entry.descriptor.digest)?.length ?? 0) + (img.descriptor.digest !== li.entry.descriptor.digest ? (users.get(img.descriptor.digest)?.length ?? 0) : 0));
    const blobs = [li.entry.descriptor, ...(img.indexDescriptor && img.indexDescriptor.digest !== li.entry.descriptor.digest ? [img.indexDescriptor] : []), img.descriptor, img.manifest.config, ...img.manifest.layers];
    for (const b of blobs) {
      imageBlobs.add(b.digest);
      e.pieces.add(b.digest);
      pieceSize.set(b.digest, b.size);
    }
    for (const c of chainIds(img.config.rootfs?.diff_ids ?? [])) {
      const key = `snapshot:${c}`;
      if (!e.pieces.has(key) && sn) {
        if (!pieceSize.has(key)) pieceSize.set(key, (await sn.usage(c).catch(() => ({ size: 0 }))).size);
        e.pieces.add(key);
      }
    }
  }
  const holders = new Map<string, number>();
  for (const { pieces } of byId.values()) for (const p of pieces) holders.set(p, (holders.get(p) ?? 0) + 1);
  const all = new Set<string>();
  const active = new Set<string>();
  for (const { usage, pieces } of byId.values()) {
    for (const p of pieces) {
      const n = pieceSize.get(p) ?? 0;
      usage.size += n;
      if ((holders.get(p) ?? 0) > 1) usage.sharedSize += n;
      all.add(p);
      if (usage.containers > 0) active.add(p);
    }
  }
  const sum = (s: Iterable<string>): number => {
    let n = 0;
    for (const p of s) n += pieceSize.get(p) ?? 0;
    return n;
  };
  const imagesSize = sum(all);
  const containers: ContainerUsage[] = [];
  for (const record of await listContainers(root, o)) {
    const size = sn ? (await sn.usage(record.snapshotKey).catch(() => ({ size: 0 }))).size : 0;
    containers.push({ record, size });
  }
  return { images: [...byId.values()].map((e) => e.usage), imagesSize, imagesReclaimable: imagesSize - sum(active), containers, imageBlobs };
}
