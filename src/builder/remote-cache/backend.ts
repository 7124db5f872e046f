/**
 * Where a build cache lives: a registry repository (registry.ts) or an OCI layout directory
 * (local.ts). Import reads a cache's manifest and config, asks whether a blob is there and brings
 * a layer blob into the store; export writes blobs first and the manifest last.
 */
import type { Descriptor } from '../../image/types.js';
import type { OciStore } from '../../store/store.js';
import type { CacheDocument } from './format.js';

export interface CacheSource {
  /** How progress and warnings name it (the ref, or the directory and tag). */
  readonly name: string;
  /** The registry repository it is, so that an export to the same registry mounts its blobs. */
  readonly repository?: { registry: string; repository: string };
  /** The cache's manifest and config (CacheFormatError, or the transport's error, when unusable). */
  read(): Promise<CacheDocument>;
  /** Whether the blob is there, with its size. */
  has(d: Descriptor): Promise<boolean>;
  /** Brings a layer blob into the store: verified against its digest, its tar checked as pull checks it. */
  fetch(store: OciStore, d: Descriptor): Promise<void>;
}

export interface CacheWrite {
  /** Every blob the manifest names but the config (layers of the store, or of an import). */
  blobs: Descriptor[];
  configBytes: Buffer;
  config: Descriptor;
  manifest: Buffer;
  manifestDescriptor: Descriptor;
  /** Brings a blob the store lacks into it (a layer that was only hit in an imported cache). */
  ensureLocal(d: Descriptor): Promise<void>;
  /** Repositories of the target's registry that hold imported blobs (cross-repository mounts). */
  mountFrom: string[];
  signal?: AbortSignal;
}

export interface CacheTarget {
  readonly name: string;
  /** The registry it is on, to pick the imports it may mount from. */
  readonly registry?: string;
  /** Writes the blobs, then the manifest: a reader finds either the previous cache or this one whole. */
  write(store: OciStore, w: CacheWrite): Promise<void>;
}
