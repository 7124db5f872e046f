/**
 * Snapshot → layer, and snapshot garbage collection.
 *
 * With overlay the upper dir IS the change set: diffSnapshot packs it in overlay mode (char
 * device 0:0 → `.wh.<name>`, opaque xattr → `.wh..wh..opq`) and never walks the merged rootfs.
 * The init layer lives in its own lower dir, so its placeholders are never in the upper dir.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { relative } from 'node:path';
import { isLeaseAlive, LEASE_LABEL, readLiveLeases } from '../store/lease.js';
import { listImages } from '../store/images.js';
import { writeLayerBlob, type LayerBlob } from '../store/layers.js';
import { listLazyLayers, writeLazyLayer, type LazyPack } from '../store/lazy.js';
import { layerMediaType, type Compression } from '../image/media-types.js';
import { createHasher } from '../image/digest.js';
import { chainIds } from '../image/model.js';
import type { OciStore } from '../store/store.js';
import { packDir, packDirChunks, type PackOptions } from '../tar/pack.js';
import { monotonicMs, type PhaseClock } from '../phases.js';
import { OverlaySnapshotter, overlayRoot } from './overlay.js';
import { OverlayUnsupportedError } from './errors.js';
import { VfsSnapshotter, vfsRoot } from './vfs.js';
import { blobPath, fuseOverlayRoot } from '../store/paths.js';
import type { SnapshotInfo, Usage } from './snapshotter.js';
import { isStaleUnpack } from './unpack.js';

export async function diffSnapshot(
  store: OciStore,
  sn: OverlaySnapshotter,
  key: string,
  opts: {
    compression: Compression;
    format?: 'oci' | 'docker';
    sourceDateEpoch?: number;
    /** The upper dir's owners are a user namespace's host ids (`--userns=auto`): record the container's. */
    fromHostIds?: { uid: number; gid: number; size: number };
    /** Records where the time goes (pack, hash, write, sync). */
    phases?: PhaseClock;
    signal?: AbortSignal;
  },
): Promise<LayerBlob & { usage: Usage }> {
  const { dir, pack: packOpts, usage } = await packUpper(sn, key, opts);
  const tar = packDir(dir, packOpts);
  const o: Parameters<typeof writeLayerBlob>[2] = { compression: opts.compression, signal: opts.signal, ...(opts.phases ? { phases: opts.phases } : {}) };
  if (opts.format !== undefined) o.format = opts.format;
  return { ...(await writeLayerBlob(store, tar, o)), usage };
}

/**
 * The active snapshot's upper dir packed as its layer, with how it was packed (what a lazy
 * layer's record keeps) and the snapshot's usage, measured as it is packed: the commit that
 * follows needs no walk of its own.
 */
async function packUpper(
  sn: OverlaySnapshotter,
  key: string,
  o: { sourceDateEpoch?: number; fromHostIds?: { uid: number; gid: number; size: number }; phases?: PhaseClock; signal?: AbortSignal },
): Promise<{ dir: string; pack: PackOptions; usage: Usage; lazy: LazyPack }> {
  const lazy: LazyPack = { mode: sn.kind === 'fuse-overlayfs' ? 'fuse-overlayfs' : 'overlay' };
  if (o.sourceDateEpoch !== undefined) lazy.sourceDateEpoch = o.sourceDateEpoch;
  if (o.fromHostIds) lazy.fromHostIds = o.fromHostIds;
  const usage = { size: 0, inodes: 0 };
  const pack: PackOptions = { ...lazy, usage, ...(o.phases ? { phases: o.phases } : {}), ...(o.signal ? { signal: o.signal } : {}) };
  return { dir: await sn.upperDir(key), pack, usage, lazy };
}

/**
 * The layer of the active snapshot `key` without writing it: one pass over the upper dir that
 * packs and hashes (the diffID, which is the digest of the uncompressed blob) and measures the
 * snapshot's usage. `keepLazyLayer` then records, once the snapshot is committed, where the same
 * bytes can be packed again when something needs them (store/lazy.ts).
 */
export async function hashSnapshotLayer(
  sn: OverlaySnapshotter,
  key: string,
  opts: { sourceDateEpoch?: number; phases?: PhaseClock; signal?: AbortSignal },
): Promise<LayerBlob & { usage: Usage; lazy: LazyPack }> {
  const { dir, pack, usage, lazy } = await packUpper(sn, key, opts);
  const h = createHasher('sha256');
  let size = 0;
  let chunks = 0;
  const phases = opts.phases;
  for (const c of packDirChunks(dir, pack)) {
    const t = phases ? monotonicMs() : 0;
    h.update(c);
    phases?.add('hash', monotonicMs() - t);
    size += c.length;
    // The pass is synchronous: progress output and signals get a turn every 16 MiB.
    if (++chunks % 16 === 0) await new Promise(setImmediate);
  }
  const digest = h.digest();
  return { mediaType: layerMediaType('none', 'oci'), digest, size, diffId: digest, uncompressedSize: size, usage, lazy };
}

/**
 * Records that the layer `blob` (from hashSnapshotLayer) is packed from the committed snapshot
 * `name`, leasing it for this process until an image names it. Nothing is recorded when the
 * blob is in the store already.
 */
export async function keepLazyLayer(store: OciStore, sn: OverlaySnapshotter, name: string, blob: LayerBlob & { lazy: LazyPack }): Promise<void> {
  await store.protect([blob.digest]);
  if (existsSync(blobPath(store.root, blob.digest))) return;
  const dir = relative(store.root, await sn.upperDir(name));
  await writeLazyLayer(store.root, { v: 1, digest: blob.digest, size: blob.size, dir, snapshot: { driver: sn.kind, key: name }, pack: blob.lazy });
}

/** Whether an active snapshot or view is the leftover of a process that is gone. */
async function isAbandoned(i: SnapshotInfo): Promise<boolean> {
  if (i.kind === 'committed') return false;
  if (isStaleUnpack(i)) return true;
  const lease = i.labels[LEASE_LABEL];
  return lease !== undefined && !(await isLeaseAlive(lease));
}

/**
 * Removes every snapshot that is not needed. Kept are the committed snapshots named in `keep`
 * or leased by a live process (the leases of the store at `storeRoot`), every active snapshot and
 * view except those a dead process left (its lease's owner, or an unpack's pid, is gone), and
 * every ancestor of those. The choice is made under the metadata lock, where snapshots are
 * leased, so a snapshot a build has just found or committed is never taken from under it.
 * Returns the removed keys and the bytes they held.
 */
export async function pruneSnapshots(
  sn: Pick<OverlaySnapshotter, 'removeWhere' | 'sweep'>,
  keep: Set<string>,
  opts: { storeRoot?: string; signal?: AbortSignal } = {},
): Promise<{ removed: string[]; bytes: number }> {
  const result = await sn.removeWhere(async (all) => {
    const leased = opts.storeRoot !== undefined ? (await readLiveLeases(opts.storeRoot)).snapshots : new Set<string>();
    const live = new Set<string>();
    const mark = (key: string | undefined): void => {
      for (let k = key; k !== undefined && !live.has(k) && all.has(k); k = all.get(k)?.parent) live.add(k);
    };
    for (const [key, info] of all) {
      const wanted = info.kind === 'committed' ? keep.has(key) || leased.has(key) : !(await isAbandoned(info));
      if (wanted) mark(key);
    }
    return [...all.keys()].filter((k) => !live.has(k));
  }, opts.signal ? { signal: opts.signal } : {});
  await sn.sweep();
  return result;
}

/**
 * The snapshot part of `prune`: removes the snapshots of `store`'s snapshotters (overlay and vfs) that no image of
 * the store needs (pruneSnapshots). An image that cannot be read keeps everything, because its
 * chain cannot be known; a store without snapshots has nothing to remove.
 */
export async function pruneImageSnapshots(store: OciStore, opts: { signal?: AbortSignal } = {}): Promise<{ removed: string[]; bytes: number }> {
  const total = { removed: [] as string[], bytes: 0 };
  const so = opts.signal ? { signal: opts.signal } : {};
  let keep: Set<string> | undefined;
  for (const [dir, open] of [
    [overlayRoot(store.root), (d: string) => OverlaySnapshotter.open(d, so)],
    [fuseOverlayRoot(store.root), (d: string) => OverlaySnapshotter.open(d, { ...so, kind: 'fuse-overlayfs' })],
    // Builds where overlay cannot be mounted keep whole-rootfs copies here (vfs.ts).
    [vfsRoot(store.root), (d: string) => VfsSnapshotter.open(d, so)],
  ] as const) {
    if (!(await stat(dir).then(() => true, () => false))) continue;
    if (!keep) {
      keep = new Set<string>();
      for (const li of await listImages(store)) {
        if (!li.image) return total;
        for (const c of chainIds(li.image.config.rootfs?.diff_ids ?? [])) keep.add(c);
      }
      // A build layer kept unwritten is packed from its snapshot when needed (store gc, run
      // before this, has removed the records nothing needs).
      for (const rec of await listLazyLayers(store.root)) keep.add(rec.snapshot.key);
    }
    let sn: Pick<OverlaySnapshotter, 'removeWhere' | 'sweep'>;
    try {
      sn = await open(dir);
    } catch (e) {
      // A store made where overlay cannot be mounted may still have its (empty) overlay dir.
      if (e instanceof OverlayUnsupportedError) continue;
      throw e;
    }
    // Snapshots leased by running builds are spared.
    const r = await pruneSnapshots(sn, keep, { storeRoot: store.root, ...so });
    total.removed.push(...r.removed);
    total.bytes += r.bytes;
  }
  return total;
}
