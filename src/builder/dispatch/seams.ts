/**
 * What dispatch needs of the image store, the snapshotter and the step cache: only the methods it
 * calls. build.ts binds them to the OciStore, the overlay snapshotter and the BuildCache; tests
 * dispatch through them with fakes held in memory.
 */
import type { PhaseClock } from '../../phases.js';
import type { Descriptor, History, Platform } from '../../image/types.js';
import type { Digest } from '../../image/digest.js';
import type { LoadedImage } from '../../image/model.js';
import type { Lease } from '../../store/lease.js';
import type { LayerBlob } from '../../store/layers.js';
import type { LazyPack } from '../../store/lazy.js';
import type { Mount, Snapshotter, Usage } from '../../snapshots/snapshotter.js';
import type { CacheRecord } from '../cache.js';

export interface BuildStore {
  /** The build's lease: the blobs and snapshots it names stay out of prune's reach until the end. */
  readonly lease: Lease;
  /** Leases the blobs that are present; returns the digests of those that are not. */
  protect(digests: Iterable<Digest>): Promise<Digest[]>;
  /** The image `ref` (a reference or an id) for `platform`; ImageNotFoundError when absent. */
  findImage(ref: string, platform: Platform): Promise<LoadedImage>;
  /** Writes the blob of a layer kept unwritten (a no-op for a stored blob). */
  materialize(d: Digest, o?: { signal?: AbortSignal }): Promise<void>;
}

export interface BuildSnapshotter extends Pick<Snapshotter, 'prepare' | 'view' | 'commit' | 'remove' | 'upperDir'> {
  /**
   * Its mounts are binds of plain directories (vfs), used where they are: no mount is made on the
   * host for COPY or a read of an image, so a build needs no mount permission outside RUN.
   */
  readonly inPlace?: boolean;
  /**
   * An active snapshot's mounts with its kernel overlay made `volatile`, for the last mount a RUN
   * makes of it (overlay refuses to mount a volatile upper again): its umount then flushes
   * nothing, and the step flushes the upper file system beside the layer's hashing. Undefined
   * where the kernel lacks the option.
   */
  volatileMounts?(mounts: Mount[]): Mount[] | undefined;
  /** The read-only mounts of the committed snapshot `key` (its layer dirs, for reading them in place). */
  mounts?: Snapshotter['mounts'];
  /** Whether the committed snapshot `key` exists; with a lease, it is leased too. */
  acquire(key: string, lease?: Lease, o?: { signal?: AbortSignal }): Promise<boolean>;
  /**
   * The uncompressed layer of the changes of the active snapshot `key`. With `lazy` (where the
   * snapshotter can) it is only hashed, and `lazy` in the result says how to pack it again:
   * `keepLazy` records that once the snapshot is committed. Else it is written to the store.
   */
  diff(key: string, o: { sourceDateEpoch?: number; phases?: PhaseClock; signal?: AbortSignal; lazy?: boolean }): Promise<LayerBlob & { usage?: Usage; lazy?: LazyPack }>;
  /** Records that the lazy layer `blob` is packed from the committed snapshot `name` (store/lazy.ts). */
  keepLazy?(name: string, blob: LayerBlob & { lazy: LazyPack }): Promise<void>;
  /** Unpacks `layers` into committed snapshots named by their chain ids. */
  unpack(layers: Descriptor[], diffIds: Digest[], o: { lease: Lease; signal?: AbortSignal }): Promise<void>;
}

/** The step cache (cache.ts): records by step key. */
export interface StepCache {
  get(key: Digest): Promise<CacheRecord | undefined>;
  put(key: Digest, rec: Omit<CacheRecord, 'v'>): Promise<void>;
}

/**
 * RUN cache mounts shared through a build cache (`--cache-to ...,cache-mounts=true`,
 * builder/remote-cache/mounts.ts): which mounts the build names, and their imported content.
 */
export interface CacheMountSeam {
  /** A RUN of the build names the cache mount `id`, whether it runs or is served from the cache. */
  use(id: string): void;
  /**
   * Fills the mount's directory `dir` (just made, or found empty) with imported content before a
   * step runs with it, if the imported caches hold some; a failure is a warning, never thrown.
   */
  restore(id: string, dir: string, o?: { phases?: PhaseClock }): Promise<void>;
}

/** Steps of imported caches (remote-cache/import.ts ImportedCache). */
export interface RemoteStepCache {
  /** The step `key`'s record, its layer blob perhaps not in the store; `warn` gets one line per unusable entry. */
  get(key: Digest, warn: (line: string) => void): Promise<Omit<CacheRecord, 'v'> | undefined>;
  /** Brings into the store the layers of imported hits it lacks (others are left as they are). */
  fetchLayers(layers: readonly Descriptor[]): Promise<void>;
}

/** A layer step's result as an export writes it (remote-cache/export.ts). */
export interface StepLogEntry {
  key: Digest;
  /** The chain the step ran on (its key's parent). */
  parent: string;
  chainId: Digest;
  diffId: Digest;
  layer: Descriptor;
  history: History;
}
