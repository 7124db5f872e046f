/**
 * The image model over the store: finding an image from what a user types (a name, a name with a
 * digest, an image-id prefix), reading its manifest and config with their raw bytes (raw bytes are
 * the identity; the parsed form is only for reading), selecting a platform from an index, and
 * writing a new config + manifest. An image's id is the digest of its config, as Docker shows it.
 */
import { createHash } from 'node:crypto';
import type { OciStore, IndexEntry } from './store.js';
import { refOf } from './store.js';
import { isDigest, parseDigest, type Digest } from './digest.js';
import { isImage, isIndex, isLayer, layerCompression, layerMediaType, MediaTypes } from './media-types.js';
import type { ContainerConfig, Descriptor, ImageConfig, Index, Manifest, Platform } from './types.js';
import { formatReference, parseReference } from './reference.js';
import { formatPlatform as platformString, hostPlatform } from './platform.js';
import { BlobNotFoundError, ImageNotFoundError, InvalidReferenceError, UnsupportedMediaTypeError } from './errors.js';
import { ImgbuildError, InvalidArgumentError } from '../errors.js';

export interface LoadedImage {
  /** The full reference it was found by (`docker.io/library/busybox:latest`), when found by tag. */
  ref?: string;
  /** The image manifest (after platform selection). */
  descriptor: Descriptor;
  rawManifest: Buffer;
  manifest: Manifest;
  rawConfig: Buffer;
  config: ImageConfig;
  /** The index entry that led here when it differs from `descriptor` (an image index). */
  indexDescriptor?: Descriptor;
}

export class PlatformNotFoundError extends ImgbuildError {
  constructor(readonly image: string, readonly wanted: Platform, readonly available: string[]) {
    super(
      'NOT_FOUND',
      `no manifest for platform ${platformString(wanted)} in ${image}` +
        (available.length ? ` (available: ${available.join(', ')})` : ''),
    );
    this.name = 'PlatformNotFoundError';
  }
}

export class AmbiguousImageIdError extends ImgbuildError {
  constructor(readonly prefix: string, readonly matches: string[]) {
    super('INVALID_ARGUMENT', `image id prefix ${JSON.stringify(prefix)} is ambiguous: matches ${matches.length} images`);
    this.name = 'AmbiguousImageIdError';
  }
}

export class InvalidManifestError extends ImgbuildError {
  constructor(readonly digest: string, reason: string) {
    super('FAILED_PRECONDITION', `invalid manifest ${digest}: ${reason}`);
    this.name = 'InvalidManifestError';
  }
}

// One platform parser for the whole project (src/layers/platform.ts); kept importable from here.
export { hostPlatform, parsePlatform, formatPlatform as platformString } from './platform.js';

function normVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8')) return 'v8';
  return p.variant;
}

/** containerd's platform matcher, reduced to exact os/arch and a variant check when one is asked for. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant !== undefined || want.architecture === 'arm64') return normVariant(have) === normVariant(want);
  return true;
}

/** chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)) (image-spec config.md). */
export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  let prev: Digest | undefined;
  for (const d of diffIds) {
    prev = prev === undefined ? d : (`sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}` as Digest);
    out.push(prev);
  }
  return out;
}

/** The image id: the config digest. */
export function imageId(img: Pick<LoadedImage, 'manifest'>): Digest {
  return img.manifest.config.digest;
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

/** Sum of the manifest, config and layer blob sizes (what `images` shows as SIZE). */
export function imageSize(img: LoadedImage): number {
  return img.descriptor.size + img.manifest.config.size + img.manifest.layers.reduce((n, l) => n + l.size, 0);
}

export { refOf };

/** Splits Dockerfile-style words (`k=v "a b" 'c'`), removing quotes and backslash escapes. */
function words(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let any = false;
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (q) {
      if (ch === q) q = undefined;
      else if (ch === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      q = ch;
      any = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      any = true;
    } else if (/\s/.test(ch)) {
      if (any || cur) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (q) throw new InvalidArgumentError(`unterminated quote in ${JSON.stringify(s)}`);
  if (any || cur) out.push(cur);
  return out;
}

function jsonArray(rest: string): string[] | undefined {
  if (!rest.trimStart().startsWith('[')) return undefined;
  try {
    const v = JSON.parse(rest) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

function keyValues(kw: string, rest: string): [string, string][] {
  const ws = words(rest);
  if (ws.length === 0) throw new InvalidArgumentError(`${kw} needs at least one argument`);
  if (!ws[0]!.includes('=')) {
    // legacy `ENV key value with spaces`
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) throw new InvalidArgumentError(`${kw} ${rest}: expected key=value or "key value"`);
    return [[m[1]!, m[2]!.trim()]];
  }
  return ws.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`${kw}: ${JSON.stringify(w)} is not key=value`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/**
 * Applies Dockerfile instructions to a container config, as `docker import/commit --change` does:
 * CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL. Returns a new object.
 */
export function applyConfigChanges(base: ContainerConfig | undefined, changes: string[]): ContainerConfig {
  const c: ContainerConfig = structuredClone(base ?? {});
  for (const change of changes) {
    const m = /^\s*(\w+)\s*([\s\S]*)$/.exec(change);
    if (!m) throw new InvalidArgumentError(`invalid change ${JSON.stringify(change)}`);
    const kw = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    switch (kw) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const v = jsonArray(rest) ?? (rest === '' ? [] : ['/bin/sh', '-c', rest]);
        if (kw === 'CMD') c.Cmd = v;
        else {
          c.Entrypoint = v;
          // As in a Dockerfile, a new ENTRYPOINT resets an inherited CMD.
          if (!changes.some((x) => /^\s*cmd\b/i.test(x))) c.Cmd = null;
        }
        break;
      }
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(kw, rest)) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        c.Env = env;
        break;
      }
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(kw, rest)) };
        break;
      case 'EXPOSE': {
        const ports = { ...(c.ExposedPorts ?? {}) };
        for (const p of words(rest)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw new InvalidArgumentError(`EXPOSE: invalid port ${JSON.stringify(p)}`);
          ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        c.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const vols = { ...(c.Volumes ?? {}) };
        for (const v of jsonArray(rest) ?? words(rest)) vols[v] = {};
        c.Volumes = vols;
        break;
      }
      case 'USER':
        c.User = rest;
        break;
      case 'WORKDIR':
        c.WorkingDir = rest.startsWith('/') ? rest : `${(c.WorkingDir ?? '/').replace(/\/$/, '')}/${rest}`;
        break;
      case 'STOPSIGNAL':
        c.StopSignal = rest;
        break;
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      default:
        throw new InvalidArgumentError(`unsupported change instruction ${JSON.stringify(m[1])}: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR or STOPSIGNAL`);
    }
  }
  return c;
}
