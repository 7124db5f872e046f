/**
 * The format of a build cache shared through a registry or an OCI layout (`build --cache-to` and
 * `--cache-from`), with no I/O: an OCI image manifest whose config is imgbuild's own JSON (the
 * map from step cache keys to layers) and whose layers are the steps' layer blobs, compressed.
 * An image manifest rather than an index naming blobs: registries check that the blobs a manifest
 * names exist before they accept it and keep them from garbage collection, and some (ECR, older
 * Harbor) refuse an index whose entries are not manifests (BuildKit's `image-manifest=true` for
 * the same reason). docs/architecture.md, "Build cache in a registry", describes the format.
 */
import { digestOf, isDigest, type Digest } from '../../image/digest.js';
import { isConfig, isLayer, MediaTypes } from '../../image/media-types.js';
import type { Descriptor, History, Manifest } from '../../image/types.js';

/** The manifest's artifactType: what a registry browser shows the cache as. */
export const CACHE_ARTIFACT_TYPE = 'application/vnd.imgbuild.cache.v1';
/** The config blob's media type: the JSON of CacheConfig. */
export const CACHE_CONFIG_TYPE = 'application/vnd.imgbuild.cache.config.v1+json';
/** Bound on the config blob read from a cache (a step is ~600 bytes of JSON). */
export const MAX_CACHE_CONFIG_SIZE = 16 * 1024 * 1024;

/** One cached step: its key and what replaying it adds to the image. */
export interface CacheStep {
  /** The step's cache key (src/builder/cache.ts stepKey): parent chain, instruction, inputs. */
  key: Digest;
  /** The chain the step ran on (the key's `parent`: a chain id, `empty:<platform>`, or `link`). */
  parent: string;
  /** The chain id after the step, as the exporting build had it (a hit recomputes it from its own parent). */
  chainId: Digest;
  /** sha256 of the layer's uncompressed tar. */
  diffId: Digest;
  /** Index into the manifest's `layers`: the blob as pushed (compressed). */
  layer: number;
  /** The layer as the built image names it (the uncompressed tar: digest = diffId, its size). */
  image: Descriptor;
  /** The history entry the step added, replayed as it is on a hit (its `created` time included). */
  history: History;
}

/**
 * The content of a `RUN --mount=type=cache` target at the end of the exporting build, as a layer
 * (written by the cache-mount export; absent from caches that do not carry mounts).
 */
export interface CacheMountEntry {
  /** The cache mount's id (its `id=`, else its target), as the store keys it. */
  id: string;
  /** Index into the manifest's `layers`. */
  layer: number;
  /** sha256 of the layer's uncompressed tar. */
  diffId: Digest;
  /** Fields the cache-mount export adds (owner, mode, sharing), kept as read. */
  [extra: string]: unknown;
}

/** The config blob of a cache manifest. */
export interface CacheConfig {
  schemaVersion: 1;
  /** Steps in build order, stage by stage. */
  steps: CacheStep[];
  mounts?: CacheMountEntry[];
}

/** A cache as read: its manifest, config, and the steps by key. */
export interface CacheDocument {
  manifest: Manifest;
  config: CacheConfig;
  /** The steps by key (the first of a key wins). */
  byKey: Map<Digest, CacheStep>;
}

/** Thrown for a cache whose manifest or config is not this format; the build reads it as no cache. */
export class CacheFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CacheFormatError';
  }
}

function isDescriptor(d: unknown): d is Descriptor {
  const o = d as Descriptor;
  return typeof o === 'object' && o !== null && typeof o.mediaType === 'string' && isDigest(o.digest) && Number.isSafeInteger(o.size) && o.size >= 0;
}

/** Checks a fetched manifest is a cache manifest; returns it typed. */
export function parseCacheManifest(raw: Buffer | string): Manifest {
  let m: Manifest & { artifactType?: string };
  try {
    m = JSON.parse(raw.toString()) as Manifest;
  } catch {
    throw new CacheFormatError('the cache manifest is not JSON');
  }
  if (typeof m !== 'object' || m === null || m.schemaVersion !== 2) throw new CacheFormatError('the cache manifest is not an OCI manifest');
  if (m.mediaType !== undefined && m.mediaType !== MediaTypes.OCI_MANIFEST) throw new CacheFormatError(`the cache manifest is a ${m.mediaType}, not an imgbuild cache`);
  if (isDescriptor(m.config) && isConfig(m.config.mediaType)) throw new CacheFormatError('an image, not an imgbuild build cache (images carry no step map: write a cache with --cache-to)');
  if (!isDescriptor(m.config) || m.config.mediaType !== CACHE_CONFIG_TYPE) throw new CacheFormatError('not an imgbuild build cache (its config is not application/vnd.imgbuild.cache.config.v1+json)');
  if (!Array.isArray(m.layers) || !m.layers.every((l) => isDescriptor(l) && isLayer(l.mediaType))) throw new CacheFormatError('the cache manifest has an invalid layer list');
  if (m.config.size > MAX_CACHE_CONFIG_SIZE) throw new CacheFormatError(`the cache config is too large (${m.config.size} bytes)`);
  return m;
}

/** Parses and checks a cache config against its manifest; entries that do not check out are dropped. */
export function parseCacheConfig(raw: Buffer | string, manifest: Manifest): CacheDocument {
  let c: CacheConfig;
  try {
    c = JSON.parse(raw.toString()) as CacheConfig;
  } catch {
    throw new CacheFormatError('the cache config is not JSON');
  }
  if (typeof c !== 'object' || c === null || c.schemaVersion !== 1 || !Array.isArray(c.steps)) throw new CacheFormatError('the cache config is not schema version 1');
  const n = manifest.layers.length;
  const inRange = (i: unknown): boolean => Number.isSafeInteger(i) && (i as number) >= 0 && (i as number) < n;
  const steps = c.steps.filter((s) =>
    typeof s === 'object' && s !== null && isDigest(s.key) && isDigest(s.diffId) && isDigest(s.chainId) && typeof s.parent === 'string'
    && inRange(s.layer) && isDescriptor(s.image) && isLayer(s.image.mediaType) && typeof s.history === 'object' && s.history !== null);
  const mounts = Array.isArray(c.mounts) ? c.mounts.filter((m) => typeof m === 'object' && m !== null && typeof m.id === 'string' && inRange(m.layer) && isDigest(m.diffId)) : undefined;
  const config: CacheConfig = { schemaVersion: 1, steps, ...(mounts ? { mounts } : {}) };
  const byKey = new Map<Digest, CacheStep>();
  for (const s of steps) if (!byKey.has(s.key)) byKey.set(s.key, s);
  return { manifest, config, byKey };
}

/** What an export writes: the config blob's bytes and the manifest naming it and the layers. */
export function encodeCache(config: CacheConfig, layers: Descriptor[]): { configBytes: Buffer; manifest: Manifest } {
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = digestOf(configBytes);
  const manifest: Manifest & { artifactType: string } = {
    schemaVersion: 2,
    mediaType: MediaTypes.OCI_MANIFEST,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: { mediaType: CACHE_CONFIG_TYPE, digest: configDigest, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  return { configBytes, manifest };
}

/** The blobs of a cache config as a layer list without repeats, and each blob's index in it. */
export class LayerList {
  readonly layers: Descriptor[] = [];
  private readonly at = new Map<string, number>();

  add(d: Descriptor): number {
    let i = this.at.get(d.digest);
    if (i === undefined) {
      i = this.layers.length;
      this.layers.push({ mediaType: d.mediaType, digest: d.digest, size: d.size });
      this.at.set(d.digest, i);
    }
    return i;
  }
}
