/**
 * Images in the store: finding an image from what a user types (a name, a name with a digest, an
 * image-id prefix), reading its manifest and config with their raw bytes (raw bytes are the
 * identity; the parsed form is only for reading), selecting a platform from an index, and writing
 * a new config + manifest.
 */
import type { OciStore, IndexEntry } from './store.js';
import { isDigest, parseDigest, type Digest } from '../image/digest.js';
import { isImage, isIndex, isLayer, layerCompression, layerMediaType, MediaTypes } from '../image/media-types.js';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../image/types.js';
import { familiarReference, formatReference, parseReference } from '../image/reference.js';
import { emitEvent } from './events.js';
import { imageIdOfRepoDigest } from './repo-digests.js';
import { formatPlatform as platformString, hostPlatform } from '../image/platform.js';
import { BlobNotFoundError, ImageNotFoundError } from './errors.js';
import { InvalidReferenceError, UnsupportedMediaTypeError, InvalidManifestError } from '../image/errors.js';
import { PlatformNotFoundError } from '../image/platform.js';
import { imageId, platformMatches, type LoadedImage } from '../image/model.js';
import { ImgbuildError, InvalidArgumentError } from '../errors.js';

export class AmbiguousImageIdError extends ImgbuildError {
  constructor(readonly prefix: string, readonly matches: string[]) {
    super('INVALID_ARGUMENT', `image id prefix ${JSON.stringify(prefix)} is ambiguous: matches ${matches.length} images`);
    this.name = 'AmbiguousImageIdError';
  }
}

function parseJson<T>(raw: Buffer, digest: string, what: string): T {
  try {
    return JSON.parse(raw.toString('utf8')) as T;
  } catch (e) {
    throw new InvalidManifestError(digest, `${what} is not valid JSON (${(e as Error).message})`);
  }
}

function sniffMediaType(doc: { mediaType?: unknown; manifests?: unknown; config?: unknown }): string | undefined {
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (Array.isArray(doc.manifests)) return MediaTypes.OCI_INDEX;
  if (doc.config) return MediaTypes.OCI_MANIFEST;
  return undefined;
}

async function selectFromIndex(
  store: OciStore,
  indexDesc: Descriptor,
  raw: Buffer,
  platform: Platform,
  label: string,
  depth = 0,
): Promise<Descriptor> {
  const idx = parseJson<Index>(raw, indexDesc.digest, 'index');
  if (!Array.isArray(idx.manifests)) throw new InvalidManifestError(indexDesc.digest, 'index has no "manifests" array');
  const images = idx.manifests.filter((m) => isImage(m.mediaType) || isIndex(m.mediaType));
  // Attestation manifests carry platform unknown/unknown; they are never a runnable image.
  const runnable = images.filter((m) => m.platform?.os !== 'unknown');
  let pick = runnable.find((m) => isImage(m.mediaType) && platformMatches(m.platform, platform));
  if (!pick) {
    const noPlatform = runnable.filter((m) => !m.platform);
    if (noPlatform.length === 1 && runnable.length === 1) pick = noPlatform[0];
  }
  if (!pick && depth < 4) {
    for (const m of runnable.filter((x) => isIndex(x.mediaType))) {
      if (!(await store.info(m.digest))) continue;
      return selectFromIndex(store, m, await store.read(m), platform, label, depth + 1);
    }
  }
  if (!pick) {
    throw new PlatformNotFoundError(label, platform, runnable.filter((m) => m.platform).map((m) => platformString(m.platform!)));
  }
  return pick;
}

/**
 * Reads a manifest (or an index, choosing `opts.platform`, default the host's) and its config,
 * both verified against their digests.
 */
export async function loadImage(
  store: OciStore,
  manifestDesc: Descriptor,
  opts: { platform?: Platform; ref?: string } = {},
): Promise<LoadedImage> {
  let desc = manifestDesc;
  let raw = await store.read(desc);
  let mt = desc.mediaType ?? sniffMediaType(parseJson(raw, desc.digest, 'manifest'));
  let indexDescriptor: Descriptor | undefined;
  if (isIndex(mt)) {
    indexDescriptor = desc;
    desc = await selectFromIndex(store, desc, raw, opts.platform ?? hostPlatform(), opts.ref ?? desc.digest);
    if (!(await store.info(desc.digest))) throw new BlobNotFoundError(desc.digest);
    raw = await store.read(desc);
    mt = desc.mediaType;
  }
  const manifest = parseJson<Manifest>(raw, desc.digest, 'manifest');
  if (!isImage(mt ?? '') && !(mt === undefined && manifest.config)) throw new UnsupportedMediaTypeError(String(mt), 'manifest media type');
  if (!manifest.config || typeof manifest.config.digest !== 'string' || !Array.isArray(manifest.layers)) {
    throw new InvalidManifestError(desc.digest, 'missing config or layers');
  }
  const rawConfig = await store.read(manifest.config);
  const config = parseJson<ImageConfig>(rawConfig, manifest.config.digest, 'config');
  return {
    ...(opts.ref !== undefined ? { ref: opts.ref } : {}),
    descriptor: { mediaType: mt ?? MediaTypes.OCI_MANIFEST, digest: desc.digest, size: desc.size, ...(desc.platform ? { platform: desc.platform } : {}) },
    rawManifest: raw,
    manifest,
    rawConfig,
    config,
    ...(indexDescriptor ? { indexDescriptor } : {}),
  };
}

const HEX_PREFIX = /^(?:sha256:)?([0-9a-f]{1,64})$/;

/** The config digest an index entry leads to (for id lookups); undefined when unreadable. */
async function entryImageId(store: OciStore, e: IndexEntry, platform?: Platform): Promise<Digest | undefined> {
  try {
    return imageId(await loadImage(store, e.descriptor, platform ? { platform } : {}));
  } catch {
    return undefined;
  }
}

/**
 * Finds an image from user input: `busybox`, `busybox:1`, `host:5000/a/b:t`, `name@sha256:...`,
 * a full image id (`sha256:<config digest>` or its 64 hex digits) or an unambiguous id prefix.
 * Throws ImageNotFoundError(input) when nothing matches.
 */
export async function findImage(store: OciStore, input: string, opts: { platform?: Platform } = {}): Promise<LoadedImage> {
  const lo = opts.platform ? { platform: opts.platform } : {};
  const hex = HEX_PREFIX.exec(input);
  const fullId = hex && hex[1]!.length === 64;
  let refErr: InvalidReferenceError | undefined;
  if (!fullId) {
    let parsed: ReturnType<typeof parseReference> | undefined;
    try {
      parsed = parseReference(input);
    } catch (e) {
      if (!(e instanceof InvalidReferenceError)) throw e;
      refErr = e;
    }
    if (parsed) {
      if (parsed.digest) {
        const entries = await store.list();
        const repo = `${parsed.registry}/${parsed.repository}`;
        const byDigest = entries.filter((e) => e.descriptor.digest === parsed.digest);
        const sameRepo = byDigest.find((e) => e.ref !== undefined && e.ref.startsWith(`${repo}:`)) ?? byDigest[0];
        if (sameRepo) return loadImage(store, sameRepo.descriptor, { ...lo, ...(sameRepo.ref ? { ref: sameRepo.ref } : {}) });
        // A platform manifest inside a stored index, or a manifest kept only as a blob.
        const info = await store.info(parsed.digest);
        if (info) {
          const raw = await store.read({ digest: parsed.digest, size: info.size });
          const mt = sniffMediaType(parseJson(raw, parsed.digest, 'manifest'));
          if (mt && (isImage(mt) || isIndex(mt))) return loadImage(store, { mediaType: mt, digest: parsed.digest, size: info.size }, lo);
        }
        // The digest a registry served when the image was pushed or pulled (repo-digests.ts).
        const id = await imageIdOfRepoDigest(store.root, `${repo}@${parsed.digest}`);
        if (id !== undefined && id !== input) return findImage(store, id, opts).catch((e: unknown) => {
          if (e instanceof ImageNotFoundError) throw new ImageNotFoundError(input);
          throw e;
        });
      } else {
        const full = formatReference(parsed);
        const d = await store.resolve(full);
        if (d) return loadImage(store, d, { ...lo, ref: full });
      }
    }
  }
  if (hex) {
    const prefix = `sha256:${hex[1]}`;
    const entries = await store.list();
    const matches = new Map<Digest, IndexEntry>();
    for (const e of entries) {
      const id = await entryImageId(store, e, opts.platform);
      if (id?.startsWith(prefix) && !matches.has(id)) matches.set(id, e);
    }
    // `sha256:<manifest digest>` is accepted too, for scripts that hold a manifest digest.
    if (matches.size === 0 && fullId) {
      const e = entries.find((x) => x.descriptor.digest === prefix);
      if (e) return loadImage(store, e.descriptor, { ...lo, ...(e.ref ? { ref: e.ref } : {}) });
    }
    if (matches.size > 1) throw new AmbiguousImageIdError(input, [...matches.keys()]);
    const only = [...matches.values()][0];
    if (only) return loadImage(store, only.descriptor, { ...lo, ...(only.ref ? { ref: only.ref } : {}) });
  }
  if (refErr && !hex) throw refErr;
  throw new ImageNotFoundError(input);
}

function cleanDescriptor(d: Descriptor): Descriptor {
  return {
    mediaType: d.mediaType,
    digest: parseDigest(d.digest),
    size: d.size,
    ...(d.urls?.length ? { urls: d.urls } : {}),
    ...(d.annotations && Object.keys(d.annotations).length ? { annotations: d.annotations } : {}),
  };
}

/**
 * Writes `config` and a manifest over `layers` (whose blobs must be in the store) and returns the
 * manifest descriptor. Digests are computed over exactly the bytes written. Layer media types are
 * translated to the Docker vocabulary when `format: 'docker'` (same bytes, other name).
 */
export async function writeImage(
  store: OciStore,
  config: ImageConfig,
  layers: Descriptor[],
  opts: { format?: 'oci' | 'docker'; annotations?: Record<string, string> } = {},
): Promise<Descriptor> {
  const format = opts.format ?? 'oci';
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds)) throw new InvalidArgumentError('image config has no rootfs.diff_ids');
  if (diffIds.length !== layers.length) {
    throw new InvalidArgumentError(`image config lists ${diffIds.length} diff_ids but ${layers.length} layers were given`);
  }
  for (const d of diffIds) if (!isDigest(d)) throw new InvalidArgumentError(`invalid diff_id ${JSON.stringify(d)}`);
  const rawConfig = Buffer.from(JSON.stringify(config));
  const configDesc = await store.put(rawConfig, format === 'docker' ? MediaTypes.DOCKER_CONFIG : MediaTypes.OCI_CONFIG);
  return writeManifest(store, configDesc, layers, opts);
}

/**
 * Writes a manifest around a config blob already in the store (keeping its bytes, hence the image
 * id, as they are: `load` uses this for configs that come from an archive).
 */
export async function writeManifest(
  store: OciStore,
  configDesc: Descriptor,
  layers: Descriptor[],
  opts: { format?: 'oci' | 'docker'; annotations?: Record<string, string> } = {},
): Promise<Descriptor> {
  const format = opts.format ?? 'oci';
  const cinfo = await store.info(configDesc.digest);
  if (!cinfo) throw new BlobNotFoundError(configDesc.digest);
  const outLayers: Descriptor[] = [];
  for (const l of layers) {
    if (!isLayer(l.mediaType)) throw new UnsupportedMediaTypeError(l.mediaType, 'layer media type');
    const info = await store.info(l.digest);
    if (!info) throw new BlobNotFoundError(l.digest);
    if (info.size !== l.size) throw new InvalidArgumentError(`layer ${l.digest} is ${info.size} bytes in the store, descriptor says ${l.size}`);
    const c = layerCompression(l.mediaType)!;
    const nondist = l.mediaType.includes('nondistributable') || l.mediaType.includes('foreign');
    const mediaType = nondist ? l.mediaType : layerMediaType(c, format);
    outLayers.push(cleanDescriptor({ ...l, mediaType }));
  }
  const configType = format === 'docker' ? MediaTypes.DOCKER_CONFIG : MediaTypes.OCI_CONFIG;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: format === 'docker' ? MediaTypes.DOCKER_MANIFEST : MediaTypes.OCI_MANIFEST,
    config: { mediaType: configType, digest: configDesc.digest, size: cinfo.size },
    layers: outLayers,
    ...(opts.annotations && Object.keys(opts.annotations).length && format === 'oci' ? { annotations: opts.annotations } : {}),
  };
  return store.put(Buffer.from(JSON.stringify(manifest)), manifest.mediaType!);
}

export interface ListedImage {
  entry: IndexEntry;
  /** Undefined when the entry's manifest or config could not be read (shown, never hidden). */
  image?: LoadedImage;
  error?: Error;
}

/** Every index entry with its image loaded (for the host platform unless told otherwise). */
export async function listImages(store: OciStore, opts: { platform?: Platform } = {}): Promise<ListedImage[]> {
  const out: ListedImage[] = [];
  for (const entry of await store.list()) {
    try {
      out.push({ entry, image: await loadImage(store, entry.descriptor, { ...(opts.platform ? { platform: opts.platform } : {}), ...(entry.ref ? { ref: entry.ref } : {}) }) });
    } catch (e) {
      out.push({ entry, error: e as Error });
    }
  }
  return out;
}

/** `tag`: names the image `source` finds `target` (a full normalised reference) and records the event. */
export async function tagImage(store: OciStore, source: string, target: string): Promise<void> {
  const img = await findImage(store, source);
  await store.tag(target, img.indexDescriptor ?? img.descriptor);
  await emitEvent(store.root, { type: 'image', action: 'tag', id: imageId(img), attributes: { name: familiarReference(parseReference(target)) } });
}
