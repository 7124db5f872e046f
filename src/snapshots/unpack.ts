/**
 * Image layers → committed snapshots keyed by chain ID (containerd's unpacker): layer n is
 * applied, in overlay form, into its own snapshot whose parent is the snapshot of layers 0..n-1.
 * A chain ID names a whole stack of layers, so images that share base layers share those
 * snapshots on disk, and a layer already unpacked is never applied again.
 *
 * Concurrency: the unpack of one chain ID holds a per-chain lock file; a second process waits
 * and then finds the snapshot committed. A layer is applied into an active snapshot under a
 * private key and only committed after the tar was applied completely and its diffID checked,
 * so a refused, corrupt or interrupted layer leaves no committed snapshot, and the active one is
 * removed on failure. One left by a killed process is recognised by its pid label and removed
 * by the next unpack of that layer or by pruneSnapshots.
 *
 * With a lease, every chain snapshot found or committed is leased, so a concurrent prune cannot
 * remove a layer between its unpack and the next layer's (or the caller's) use of it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, throwIfAborted } from '../errors.js';
import { withLock } from '../atomic.js';
import { openLayerTar } from '../store/layers.js';
import { HashingTransform, hexOf, type Digest } from '../image/digest.js';
import { DigestMismatchError } from '../image/errors.js';
import { chainIds } from '../image/model.js';
import { isProcessAlive } from '../pid.js';
import type { OciStore } from '../store/store.js';
import type { Lease } from '../store/lease.js';
import { applyLayer } from '../tar/apply.js';
import { mayMakeDevices } from '../tar/devices.js';
import type { Descriptor } from '../image/types.js';
import { SnapshotExistsError, SnapshotNotFoundError } from './errors.js';
import type { OverlaySnapshotter } from './overlay.js';
import type { VfsSnapshotter } from './vfs.js';
import type { SnapshotInfo } from './snapshotter.js';

/** Label set on every snapshot made by unpack: the diffID of its own layer. */
export const DIFF_ID_LABEL = 'imgbuild.diffid';
/** Labels on the temporary active snapshot a layer is applied into: the chain ID and the pid. */
export const UNPACKING_LABEL = 'imgbuild.unpacking';
export const UNPACKING_PID_LABEL = 'imgbuild.unpacking.pid';

/** True for the active snapshot of an unpack whose process is gone (killed mid-layer). */
export function isStaleUnpack(i: SnapshotInfo): boolean {
  if (i.kind !== 'active' || i.labels[UNPACKING_LABEL] === undefined) return false;
  return !isProcessAlive(Number(i.labels[UNPACKING_PID_LABEL])); // (not a pid: stale too)
}

async function applyOne(
  store: OciStore,
  sn: OverlaySnapshotter | VfsSnapshotter,
  layer: Descriptor,
  diffId: Digest,
  chainId: Digest,
  parent: string | undefined,
  signal?: AbortSignal,
  lease?: Lease,
): Promise<boolean> {
  const key = `unpack-${process.pid}-${randomBytes(4).toString('hex')}-${hexOf(chainId).slice(0, 12)}`;
  // Leftovers of a killed unpack of this same layer would otherwise pin its parent forever.
  const stale: string[] = [];
  await sn.walk((i) => {
    if (i.labels[UNPACKING_LABEL] === chainId && isStaleUnpack(i)) stale.push(i.key);
  });
  for (const k of stale) await sn.remove(k).catch(() => {});
  await sn.prepare(key, parent, { labels: { [UNPACKING_LABEL]: chainId, [UNPACKING_PID_LABEL]: String(process.pid) }, signal, ...(lease ? { lease } : {}) });
  try {
    const upper = await sn.upperDir(key);
    const tar = await openLayerTar(store, layer, { signal });
    const hasher = new HashingTransform('sha256');
    // applyLayer reads to EOF (past the end-of-archive marker), so the hash covers the whole tar.
    const piping = pipeline(tar, hasher, { signal });
    try {
      // Device nodes are made where the process may (Docker, podman and buildah apply them); the
      // rootfs is mounted nodev, so they stay inert.
      // A vfs snapshot is a copy of the whole parent rootfs: whiteouts there delete.
      const mode = 'layerForm' in sn ? sn.layerForm : 'overlay';
      await applyLayer(upper, hasher, { mode, opaqueXattr: sn.opaqueXattr, allowDevices: mayMakeDevices(), signal });
    } catch (e) {
      tar.destroy();
      hasher.destroy();
      await piping.catch(() => {});
      throw e;
    }
    await piping;
    const { digest, size } = hasher.result();
    if (digest !== diffId) throw new DigestMismatchError(diffId, digest, size, `layer ${layer.digest} diffID`);
    throwIfAborted(signal);
    try {
      await sn.commit(chainId, key, { labels: { [DIFF_ID_LABEL]: diffId }, signal, ...(lease ? { lease } : {}) });
      return true;
    } catch (e) {
      // Another unpacker (one that did not share our lock dir) got there first: same content.
      if (!(e instanceof SnapshotExistsError)) throw e;
      await sn.remove(key);
      return false;
    }
  } catch (e) {
    await sn.remove(key).catch(() => {});
    throw e;
  }
}

/**
 * Unpacks `layers` (with their config diffIDs) into snapshots named by chain ID and returns the
 * top chain ID (undefined for an image without layers).
 */
export async function unpackImage(
  store: OciStore,
  sn: OverlaySnapshotter | VfsSnapshotter,
  layers: Descriptor[],
  diffIds: Digest[],
  opts: { signal?: AbortSignal; lease?: Lease } = {},
): Promise<Digest | undefined> {
  if (layers.length !== diffIds.length) {
    throw new InvalidArgumentError(`image has ${layers.length} layers but ${diffIds.length} diff_ids`);
  }
  const chain = chainIds(diffIds);
  let parent: Digest | undefined;
  for (const [i, chainId] of chain.entries()) {
    throwIfAborted(opts.signal);
    const so = opts.signal ? { signal: opts.signal } : {};
    if (!(await sn.acquire(chainId, opts.lease, so))) {
      await withLock(
        join(sn.root, 'unpack', hexOf(chainId)),
        async () => {
          // Found: a concurrent unpack finished it. Committed by us: leased in the commit. Found
          // by neither: another process committed it before us and a prune removed it since.
          for (let attempt = 0; !(await sn.acquire(chainId, opts.lease, so)); attempt++) {
            if (attempt === 3) throw new SnapshotNotFoundError(chainId);
            if (await applyOne(store, sn, layers[i]!, diffIds[i]!, chainId, parent, opts.signal, opts.lease)) return;
          }
        },
        so,
      );
    }
    parent = chainId;
  }
  return parent;
}
