/**
 * Push: upload an image's blobs (in parallel, skipping what the registry has, mounting from another
 * repository of the same registry when we know one that holds the blob), then PUT the manifest.
 *
 * Layers are sent in the compression asked for: stored images may hold uncompressed layers (builds
 * keep them so), which go out gzip-compressed by default; conversion goes through
 * `ensureCompressed`, which remembers its result so later pushes reuse it. When no layer changes the
 * stored manifest bytes are pushed unchanged, so the pushed digest equals the local one.
 *
 * Uploads are monolithic (POST + PUT) below a size threshold and chunked (PATCH ranges + PUT) above
 * it; a registry that refuses one style gets the other.
 */
import { emitEvent } from '../store/events.js';
import { addRepoDigest } from '../store/repo-digests.js';
import { createReadStream } from 'node:fs';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import pLimit from 'p-limit';
import { createHasher, type Digest } from '../image/digest.js';
import { isImage, layerCompression, MediaTypes, type Compression } from '../image/media-types.js';
import { familiarName, familiarReference, formatReference, parseReference, repositoryName, type Reference } from '../image/reference.js';
import type { OciStore } from '../store/store.js';
import type { Descriptor, Index, Manifest } from '../image/types.js';
import { DigestMismatchError } from '../image/errors.js';
import { AbortedError, InvalidArgumentError, throwIfAborted } from '../errors.js';
import { findImage, loadImage } from '../store/images.js';
import { ensureCompressed } from '../store/layers.js';
import { imageId, type LoadedImage } from '../image/model.js';
import { RegistryError, ProtocolError, describeNetworkError } from './errors.js';
import { discardBody } from './http.js';
import { BlobMeter, type PushEvent } from './progress.js';
import { sessionFor, type RemoteOptions } from './pull.js';
import type { RetryPolicy } from './retry.js';
import { recordSources, sourcesOf } from './sources.js';
import { repositoryScope, responseHeader, type RegistryClient } from './transport.js';

export interface PushOptions extends RemoteOptions {
  /**
   * Compression of the pushed layers. Default: compressed layers go as stored, uncompressed ones
   * are gzip-compressed. Given explicitly, every layer is converted to it.
   */
  compression?: Compression;
  /** Level of the compression done for the push (gzip 1-9, zstd 1-22); see ensureCompressed. */
  compressionLevel?: number;
  onProgress?: (e: PushEvent) => void;
  /** Parallel blob uploads (default 5, as docker). */
  concurrency?: number;
  /** Blobs of at least this many bytes are uploaded in chunks (default 256 MiB). */
  chunkThreshold?: number;
  /** Chunk size of chunked uploads (default 32 MiB). */
  chunkSize?: number;
  /** Repositories (on the destination registry) that may hold our blobs, for cross-repo mounts. */
  mountFrom?: string[];
  /** Converts a layer to another compression (default: `ensureCompressed` of compress/compress.ts). */
  convert?: (store: OciStore, layer: Descriptor, c: Compression, o: { format: 'oci' | 'docker'; level?: number; signal?: AbortSignal }) => Promise<Descriptor>;
}

/** Counts bytes flowing to the registry for progress. */
class Counter extends Transform {
  n = 0;
  constructor(private readonly onBytes: (n: number) => void) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    this.onBytes(this.n);
    cb(null, chunk);
  }
}

/** Statuses with which a registry says it does not do this upload style (vs. a transient failure). */
const REFUSED = new Set([400, 405, 411, 413, 416, 501]);

export interface UploadCtx {
  store: OciStore;
  client: RegistryClient;
  registry: string;
  repo: string;
  scopes: string[];
  mountFrom: string[];
  chunkThreshold: number;
  chunkSize: number;
  retry: RetryPolicy;
  /** Styles the registry refused during this push; never tried again. */
  refused: Set<'chunked' | 'monolithic'>;
  /** Brings a blob into the store before it is uploaded (one the registry neither has nor can mount). */
  ensureLocal?: (d: Descriptor) => Promise<void>;
  signal?: AbortSignal;
}

function blobStream(store: OciStore, d: Digest, start?: number, end?: number): Readable {
  // Read straight from the store: the registry recomputes and checks the digest on commit.
  return createReadStream(store.blobPath(d), { highWaterMark: 1 << 20, ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}) });
}

/**
 * An upload body: `src` through a byte counter. Joined with `pipeline`, not `pipe`, so that a read
 * error reaches the request as the body's error, and the HTTP client destroying the body (a
 * session closed while another upload failed) is an error someone listens to, not a crash.
 */
export function countedBody(src: Readable, onBytes: (n: number) => void): Readable {
  const counter = new Counter(onBytes);
  pipeline(src, counter, () => {});
  return counter;
}

/** Above this size a blob is uploaded in chunks of CHUNK_SIZE (PATCH per chunk). */
export const CHUNK_THRESHOLD = 256 * 1024 * 1024;
export const CHUNK_SIZE = 32 * 1024 * 1024;

/**
 * Whether the repository serves the blob (HEAD). With `sizeMustMatch`, a blob whose length the
 * registry gives and the descriptor disagrees with counts as absent.
 */
export async function blobExists(
  ctx: Pick<UploadCtx, 'client' | 'repo' | 'scopes' | 'signal'>,
  d: Descriptor,
  o: { sizeMustMatch?: boolean } = {},
): Promise<boolean> {
  const res = await ctx.client.request({
    method: 'HEAD',
    path: `/v2/${ctx.repo}/blobs/${d.digest}`,
    scopes: ctx.scopes,
    expect: [200, 404],
    what: `HEAD blob ${d.digest}`,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  await discardBody(res.body);
  if (res.status !== 200) return false;
  const len = res.headers['content-length'];
  return !o.sizeMustMatch || len === undefined || Number(len) === d.size;
}

/** Starts an upload session, or mounts the blob from `from` (returns undefined when mounted). */
async function startUpload(ctx: UploadCtx, d: Descriptor, from?: string): Promise<URL | undefined> {
  const q = from ? `?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}` : '';
  const res = await ctx.client.request({
    method: 'POST',
    path: `/v2/${ctx.repo}/blobs/uploads/${q}`,
    scopes: from ? [...ctx.scopes, repositoryScope(from, ['pull'])] : ctx.scopes,
    headers: { 'content-length': '0' },
    expect: from ? [201, 202] : [202],
    what: from ? `mount blob ${d.digest} from ${from}` : `start upload of ${d.digest}`,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  await discardBody(res.body);
  if (res.status === 201) return undefined;
  return location(ctx, res, `start upload of ${d.digest}`);
}

async function location(ctx: UploadCtx, res: { headers: Record<string, string | string[] | undefined>; url: URL }, what: string): Promise<URL> {
  const loc = responseHeader(res.headers, 'location');
  if (!loc) throw new ProtocolError(`${what}: registry sent no Location`);
  const u = new URL(loc, res.url);
  return ctx.client.resolveUrl(u.href, ctx.signal);
}

async function putMonolithic(ctx: UploadCtx, d: Descriptor, loc: URL, meter: BlobMeter): Promise<void> {
  const u = new URL(loc);
  u.searchParams.set('digest', d.digest);
  const res = await ctx.client.request({
    method: 'PUT',
    path: u.href,
    scopes: ctx.scopes,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(d.size) },
    body: () => countedBody(blobStream(ctx.store, d.digest), (n) => meter.bytes(n)),
    expect: [201],
    what: `upload blob ${d.digest}`,
    retry: false,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  await discardBody(res.body);
}

/** Where an upload session stands (`GET <location>` → 204 with `Range: 0-<last byte>`). */
async function uploadStatus(ctx: UploadCtx, url: URL, d: Descriptor): Promise<{ next: number; url: URL }> {
  const res = await ctx.client.request({
    method: 'GET',
    path: url.href,
    scopes: ctx.scopes,
    expect: [204],
    what: `upload status of ${d.digest}`,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  await discardBody(res.body);
  const m = /^(?:bytes=)?0-(\d+)$/.exec(responseHeader(res.headers, 'range') ?? '');
  const next = m ? Number(m[1]) + 1 : 0;
  const loc = responseHeader(res.headers, 'location') ? await location(ctx, res, `upload status of ${d.digest}`) : url;
  return { next, url: loc };
}

/**
 * Chunked upload. A chunk that fails on the way (dropped connection, 5xx) is not the end of the
 * upload: the session's status tells how far the registry got, and the upload continues there
 * (chunks the registry took count as progress: see retry.ts).
 */
async function putChunked(ctx: UploadCtx, d: Descriptor, loc: URL, meter: BlobMeter): Promise<void> {
  let url = loc;
  let start = 0;
  let startedAt = 0;
  let resuming = false;
  const once = async (): Promise<void> => {
    if (resuming) {
      const st = await uploadStatus(ctx, url, d);
      start = st.next;
      url = st.url;
    }
    resuming = true;
    startedAt = start;
    while (start < d.size) {
      throwIfAborted(ctx.signal);
      const end = Math.min(d.size, start + ctx.chunkSize) - 1;
      const base = start;
      const res = await ctx.client.request({
        method: 'PATCH',
        path: url.href,
        scopes: ctx.scopes,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` },
        body: () => countedBody(blobStream(ctx.store, d.digest, base, end), (n) => meter.bytes(base + n)),
        expect: [202, 204],
        what: `upload chunk ${start}-${end} of ${d.digest}`,
        retry: false,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      await discardBody(res.body);
      url = await location(ctx, res, `upload chunk of ${d.digest}`);
      start = end + 1;
    }
  };
  await ctx.retry.run(once, {
    signal: ctx.signal,
    progressed: () => start > startedAt,
    onRetry: (e) => meter.phase('retry', start, `chunk at ${start} failed (${describeNetworkError(e)}); resuming the upload`),
  });
  const u = new URL(url);
  u.searchParams.set('digest', d.digest);
  const res = await ctx.client.request({
    method: 'PUT',
    path: u.href,
    scopes: ctx.scopes,
    headers: { 'content-length': '0' },
    expect: [201],
    what: `finish upload of ${d.digest}`,
    retry: false,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  await discardBody(res.body);
}

/** Makes one blob present in the destination repository. */
export async function uploadBlob(ctx: UploadCtx, d: Descriptor, meter: BlobMeter): Promise<'exists' | 'mounted' | 'uploaded'> {
  if (await blobExists(ctx, d)) {
    meter.phase('exists', d.size);
    return 'exists';
  }
  let loc: URL | undefined;
  const known = await sourcesOf(ctx.store.root, d.digest, ctx.registry);
  for (const from of [...new Set([...ctx.mountFrom, ...known])]) {
    if (from === ctx.repo) continue;
    try {
      loc = await startUpload(ctx, d, from);
      if (!loc) {
        meter.phase('mounted', d.size);
        return 'mounted';
      }
      break; // the registry opened a normal upload instead; use it
    } catch (e) {
      // a refused mount (no access to the source) is not fatal: upload instead
      if (!(e instanceof RegistryError)) throw e;
    }
  }
  await ctx.ensureLocal?.(d);
  // Uploads read the blob's file (by ranges, again on a retry): a build layer kept unwritten
  // (store/lazy.ts) is written first, verified. A mount needs no file.
  await ctx.store.materialize(d.digest, ctx.signal ? { signal: ctx.signal } : {});
  // A registry that refuses one upload style gets the other (at once, not as a retry); a
  // temporary failure starts a new upload session, as the retry policy allows.
  const once = async (): Promise<'mounted' | 'uploaded'> => {
    for (;;) {
      const session = loc ?? (await startUpload(ctx, d));
      loc = undefined; // an upload session that failed is not reused
      if (!session) return 'mounted';
      const chunked = d.size >= ctx.chunkThreshold ? !ctx.refused.has('chunked') : ctx.refused.has('monolithic');
      try {
        if (chunked) await putChunked(ctx, d, session, meter);
        else await putMonolithic(ctx, d, session, meter);
        return 'uploaded';
      } catch (e) {
        const style = chunked ? 'chunked' : 'monolithic';
        if (!ctx.signal?.aborted && e instanceof RegistryError && REFUSED.has(e.status) && !e.codes.includes('DIGEST_INVALID') && !ctx.refused.has(style) && !ctx.refused.has(chunked ? 'monolithic' : 'chunked')) {
          ctx.refused.add(style);
          meter.phase('retry', 0, `registry refused ${style} upload (HTTP ${e.status}); trying ${chunked ? 'monolithic' : 'chunked'}`);
          continue;
        }
        throw e;
      }
    }
  };
  return ctx.retry.run(once, {
    signal: ctx.signal,
    onRetry: (e) => meter.phase('retry', 0, describeNetworkError(e)),
  });
}

/** The layer as it will be pushed: converted to the wanted compression when it differs. */
async function convertLayer(store: OciStore, img: LoadedImage, l: Descriptor, o: PushOptions): Promise<Descriptor> {
  const format = img.descriptor.mediaType === MediaTypes.DOCKER_MANIFEST ? 'docker' : 'oci';
  const have = layerCompression(l.mediaType);
  // blobs that are not layer tars (attestations, artifacts) go out as they are
  if (have === undefined || l.mediaType.includes('nondistributable') || l.mediaType.includes('foreign')) return l;
  const want = o.compression ?? (have === 'none' ? 'gzip' : have);
  if (want === have) return l;
  const convert = o.convert ?? ensureCompressed;
  const meter = new BlobMeter(o.onProgress, 'layer', l.digest, l.size);
  meter.phase('compressing', 0, `${have} → ${want}`);
  const c = await convert(store, l, want, { format, ...(o.compressionLevel !== undefined ? { level: o.compressionLevel } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  meter.phase('compressed', l.size, `${want} ${c.digest}`);
  return { ...c, ...(l.annotations ? { annotations: l.annotations } : {}) };
}

export async function putManifest(client: RegistryClient, repo: string, reference: string, raw: Buffer, mediaType: string, digest: Digest, scopes: string[], signal?: AbortSignal): Promise<void> {
  const res = await client.request({
    method: 'PUT',
    path: `/v2/${repo}/manifests/${reference}`,
    scopes,
    headers: { 'content-type': mediaType },
    body: raw,
    expect: [201, 200],
    what: `PUT manifest ${repo}:${reference}`,
    ...(signal ? { signal } : {}),
  });
  await discardBody(res.body);
  const got = responseHeader(res.headers, 'docker-content-digest');
  if (got && got.startsWith('sha256:') && got !== digest) {
    throw new DigestMismatchError(digest, got, raw.length, `manifest pushed to ${repo}:${reference} (registry's Docker-Content-Digest)`);
  }
}

interface PushTarget {
  store: OciStore;
  client: RegistryClient;
  destRef: Reference;
  display: string;
  scopes: string[];
  mountFrom: string[];
  retry: RetryPolicy;
  o: PushOptions;
}

function digestOfBytes(raw: Uint8Array): Digest {
  const h = createHasher('sha256');
  h.update(raw);
  return h.digest();
}

/**
 * Pushes one image: every layer is converted (two conversions at a time, each using all cores)
 * and uploaded as soon as it is ready, so compression of the next layers overlaps the upload of
 * the previous one; the config goes up alongside. Then the manifest (rewritten only when a layer
 * changed) is PUT under `reference` — a tag, or undefined for "by its own digest".
 */
async function pushOne(t: PushTarget, img: LoadedImage, reference: string | undefined, expected?: Digest): Promise<Descriptor> {
  const { store, o } = t;
  const signal = o.signal;
  const ctx: UploadCtx = {
    store,
    client: t.client,
    registry: t.destRef.registry,
    repo: t.destRef.repository,
    scopes: t.scopes,
    mountFrom: t.mountFrom,
    chunkThreshold: o.chunkThreshold ?? CHUNK_THRESHOLD,
    chunkSize: Math.max(1, o.chunkSize ?? CHUNK_SIZE),
    retry: t.retry,
    refused: new Set(),
    ...(signal ? { signal } : {}),
  };
  for (const l of [...img.manifest.layers, img.manifest.config]) {
    const info = await store.info(l.digest);
    // A build layer whose snapshot is gone says so (the image is damaged), not just "missing".
    if (!info) {
      store.lazyLayerGone(l.digest);
      throw new InvalidArgumentError(`blob ${l.digest} of ${img.ref ?? img.descriptor.digest} is missing from the store`);
    }
    if (info.size !== l.size) throw new InvalidArgumentError(`blob ${l.digest} is ${info.size} bytes in the store, manifest says ${l.size}`);
  }
  const uploads = pLimit(Math.max(1, o.concurrency ?? 5));
  // Two conversions at once, although each already uses every core: the second fills the cores
  // while the first drains its last blocks and syncs its blob (docs/architecture.md, "Measurements").
  const conversions = pLimit(2);
  const uploaded = new Map<string, Promise<void>>();
  const upload = (d: Descriptor, kind: 'layer' | 'config'): Promise<void> => {
    let p = uploaded.get(d.digest);
    if (!p) {
      p = uploads(async () => {
        const meter = new BlobMeter(o.onProgress, kind, d.digest, d.size);
        meter.phase('waiting');
        if ((await uploadBlob(ctx, d, meter)) === 'uploaded') meter.phase('done', d.size);
      });
      uploaded.set(d.digest, p);
    }
    return p;
  };
  let layers: Descriptor[];
  try {
    const config = upload(img.manifest.config, 'config');
    config.catch(() => {}); // awaited below; a layer failing first must not leave it unhandled
    layers = await Promise.all(
      img.manifest.layers.map(async (l) => {
        const out = await conversions(() => convertLayer(store, img, l, o));
        await upload(out, 'layer');
        return out;
      }),
    );
    await config;
  } catch (e) {
    uploads.clearQueue();
    conversions.clearQueue();
    if (signal?.aborted && !(e instanceof AbortedError)) throw new AbortedError('operation aborted', { cause: signal.reason });
    throw e;
  }
  throwIfAborted(signal);
  const changed = layers.some((l, i) => l.digest !== img.manifest.layers[i]!.digest || l.mediaType !== img.manifest.layers[i]!.mediaType);
  const raw = changed ? Buffer.from(JSON.stringify({ ...img.manifest, layers } satisfies Manifest)) : img.rawManifest;
  const digest = digestOfBytes(raw);
  if (expected && expected !== digest) {
    throw new InvalidArgumentError(`cannot push to ${t.display}: the manifest to push has digest ${digest}`);
  }
  await putManifest(t.client, t.destRef.repository, reference ?? digest, raw, img.descriptor.mediaType, digest, t.scopes, signal);
  await recordSources(store.root, [img.manifest.config.digest, ...layers.map((l) => l.digest)], t.destRef.registry, t.destRef.repository).catch(() => {});
  return { mediaType: img.descriptor.mediaType, digest, size: raw.length };
}

/** The index `img` was found through, when every image it lists is complete in the store. */
async function completeIndex(store: OciStore, img: LoadedImage): Promise<{ raw: Buffer; index: Index; children: LoadedImage[] } | undefined> {
  if (!img.indexDescriptor) return undefined;
  const raw = await store.read(img.indexDescriptor);
  const index = JSON.parse(raw.toString('utf8')) as Index;
  const children: LoadedImage[] = [];
  for (const m of index.manifests ?? []) {
    if (!isImage(m.mediaType)) return undefined;
    try {
      const child = await loadImage(store, m);
      for (const l of child.manifest.layers) if (!(await store.info(l.digest))) return undefined;
      children.push(child);
    } catch {
      return undefined; // a platform not pulled: push only the selected image
    }
  }
  return { raw, index, children };
}

/**
 * Pushes the stored image `src` (anything `findImage` accepts) to `dest` (default: `src`'s own
 * name). When `src` names an image index whose images are all in the store, every image is pushed
 * by digest and then the index by tag; otherwise the selected platform's image is pushed.
 * Returns the descriptor of the top manifest as pushed.
 */
export async function pushImage(store: OciStore, src: string, dest?: string, o: PushOptions = {}): Promise<Descriptor> {
  const img = await findImage(store, src);
  let destRef: Reference;
  if (dest !== undefined) destRef = parseReference(dest);
  else if (img.ref) destRef = parseReference(img.ref);
  else throw new InvalidArgumentError(`${src} has no name to push to; give a destination reference`);
  const display = formatReference(destRef);
  const { session, owned } = sessionFor(o);
  try {
    const client = session.client(destRef.registry, o.insecure !== undefined ? { insecure: o.insecure } : {});
    const mountFrom: string[] = [];
    const addMount = (r: string): void => {
      try {
        const p = parseReference(r);
        if (p.registry === destRef.registry && p.repository !== destRef.repository && !mountFrom.includes(p.repository)) mountFrom.push(p.repository);
      } catch {
        if (!mountFrom.includes(r)) mountFrom.push(r);
      }
    };
    if (img.ref) addMount(img.ref);
    for (const r of o.mountFrom ?? []) addMount(r.includes('/') && r.split('/')[0]!.match(/[.:]/) ? r : `${destRef.registry}/${r}`);
    const t: PushTarget = {
      store,
      client,
      destRef,
      display,
      scopes: [repositoryScope(destRef.repository, ['pull', 'push'])],
      mountFrom,
      retry: session.retry,
      o,
    };
    const reference = destRef.tag ?? destRef.digest ?? 'latest';

    const tree = await completeIndex(store, img);
    const top = tree ? img.indexDescriptor! : img.descriptor;
    o.onProgress?.({ type: 'resolved', ref: display, digest: top.digest, mediaType: top.mediaType, blobs: img.manifest.layers.length + 1 });
    let pushed: Descriptor;
    if (tree) {
      const children: Descriptor[] = [];
      for (const [i, child] of tree.children.entries()) {
        const entry = tree.index.manifests[i]!;
        const d = await pushOne(t, child, undefined);
        children.push({ ...entry, digest: d.digest, size: d.size });
      }
      const changed = children.some((c, i) => c.digest !== tree.index.manifests[i]!.digest);
      const raw = changed ? Buffer.from(JSON.stringify({ ...tree.index, manifests: children })) : tree.raw;
      const digest = digestOfBytes(raw);
      if (destRef.digest && destRef.digest !== digest) throw new InvalidArgumentError(`cannot push to ${display}: the index to push has digest ${digest}`);
      const mediaType = tree.index.mediaType ?? top.mediaType;
      await putManifest(client, destRef.repository, reference, raw, mediaType, digest, t.scopes, o.signal);
      pushed = { mediaType, digest, size: raw.length };
    } else {
      pushed = await pushOne(t, img, reference, destRef.digest);
    }
    o.onProgress?.({ type: 'manifest', ref: display, digest: pushed.digest, size: pushed.size });
    o.onProgress?.({ type: 'done', ref: display, digest: pushed.digest });
    await addRepoDigest(store.root, imageId(img), `${repositoryName(destRef)}@${pushed.digest}`).catch(() => {});
    await emitEvent(store.root, { type: 'image', action: 'push', id: familiarReference(destRef), attributes: { name: familiarName(destRef) } });
    return pushed;
  } finally {
    if (owned) await session.close();
  }
}
