/**
 * Layer blobs in the store: write a layer in one pass (diffID of the tar, compression, digest and
 * size of the blob), open a stored layer as a tar, and convert a layer to another compression.
 *
 * Build results stay uncompressed (compress on export, once); `ensureCompressed` converts a
 * stored layer to the wanted compression the first time it is needed and remembers the result
 * under `<root>/cache/compressed/`, so later pushes and saves reuse the blob.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compressedCacheDir } from './paths.js';
import { Writable, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { throwIfAborted } from '../errors.js';
import { monotonicMs, type PhaseClock } from '../phases.js';
import { writeFileAtomic } from '../atomic.js';
import { HashingTransform, hexOf, algorithmOf, parseDigest, type Digest } from '../image/digest.js';
import { isDockerType, layerCompression, layerMediaType, type Compression } from '../image/media-types.js';
import type { OciStore } from './store.js';
import type { Descriptor } from '../image/types.js';
import { UnsupportedMediaTypeError } from '../image/errors.js';
import { compressorFor, decompress, defaultLevel } from '../compress/compress.js';

export interface LayerBlob extends Descriptor {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  uncompressedSize: number;
}

/**
 * One pass over `tar`: sha256 of the tar (diffID), compression (parallel gzip / zstd / none),
 * sha256 and size of the blob, streamed into the store and committed with the computed digest
 * (the store re-verifies at commit).
 */
export async function writeLayerBlob(
  store: OciStore,
  tar: Readable,
  opts: {
    compression: Compression;
    format?: 'oci' | 'docker';
    level?: number;
    /**
     * The tar's diffID when the caller already knows it (converting a stored layer whose
     * uncompressed digest is known): the tar is then not hashed a second time. The source's own
     * verification still guards the bytes.
     */
    diffId?: Digest;
    uncompressedSize?: number;
    /**
     * Records where the time goes: 'hash' (hashing as the blob is written), 'write' (the rest of
     * the pass: waiting for the disk, compressing), 'sync' (flushing and placing the blob).
     */
    phases?: PhaseClock;
    signal?: AbortSignal;
  },
): Promise<LayerBlob> {
  const phases = opts.phases;
  throwIfAborted(opts.signal);
  const w = await store.writer(`layer-${Date.now()}`);
  const comp = compressorFor(opts.compression, opts.level);
  // The writer hashes the blob as it is written (its digest() is computed once and reused by
  // commit), so only a compressed layer needs a second hash: the diffID of the tar before
  // compression — unless the caller knows it. An uncompressed layer's diffID is its blob digest.
  const known = opts.diffId !== undefined && opts.uncompressedSize !== undefined;
  const diff = comp && !known ? new HashingTransform() : undefined;
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _e, cb) {
      // The writer hashes the chunk before its first await: that part is the hash.
      const t = phases ? monotonicMs() : 0;
      const written = w.write(chunk);
      if (phases) {
        const ms = monotonicMs() - t;
        hashed += ms;
        phases.add('hash', ms);
      }
      written.then(() => cb(), cb);
    },
  });
  let hashed = 0;
  try {
    const stages: (Readable | Transform | Writable)[] = [tar];
    if (diff) stages.push(diff);
    if (comp) stages.push(comp);
    stages.push(sink);
    const packedBefore = phases?.totalsMs.get('pack') ?? 0;
    const started = monotonicMs();
    await (pipeline as (...a: unknown[]) => Promise<void>)(...stages, ...(opts.signal ? [{ signal: opts.signal }] : []));
    // What the pass spent besides packing and hashing on this thread: the disk and the stream.
    // Not one interval (it falls between the pack and hash pieces): a total, without a span.
    phases?.addTotal('write', Math.max(0, monotonicMs() - started - hashed - ((phases.totalsMs.get('pack') ?? 0) - packedBefore)));
    const digest = w.digest();
    const size = w.offset;
    const diffId = diff ? diff.result().digest : comp && known ? opts.diffId! : digest;
    const synced = phases?.start('sync');
    await w.commit(size, digest);
    synced?.();
    return {
      mediaType: layerMediaType(opts.compression, opts.format ?? 'oci'),
      digest,
      size,
      diffId,
      uncompressedSize: diff ? diff.size : comp && known ? opts.uncompressedSize! : size,
    };
  } catch (e) {
    await w.abort().catch(() => {});
    throw e;
  }
}

/** Opens a stored layer blob as an uncompressed tar stream; the blob digest is verified at EOF. */
export async function openLayerTar(store: OciStore, layer: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
  throwIfAborted(opts.signal);
  const c = layerCompression(layer.mediaType);
  const raw = await store.reader(layer);
  // an uncompressed blob is its own tar: no pass-through stages
  return c === 'none' ? raw : decompress(raw, c, opts);
}

interface CacheRecord { source: Descriptor; converted: Descriptor; diffId?: Digest; level?: number }

function cachePath(root: string, d: Digest, c: Compression): string {
  return join(compressedCacheDir(root), `${algorithmOf(d)}-${hexOf(d)}.${c}.json`);
}

async function readCache(store: OciStore, d: Digest, c: Compression, level?: number): Promise<Descriptor | undefined> {
  let rec: CacheRecord;
  try {
    rec = JSON.parse(await readFile(cachePath(store.root, d, c), 'utf8')) as CacheRecord;
    parseDigest(rec.converted.digest);
  } catch {
    return undefined; // missing or unreadable: convert again
  }
  // An explicit level asks for that level; records written before levels were kept count as
  // the default level.
  if (level !== undefined && level !== (rec.level ?? defaultLevel(c))) return undefined;
  const info = await store.info(rec.converted.digest);
  if (!info || info.size !== rec.converted.size) return undefined; // blob gc'ed since
  // Leased for this process (build --compression, push): a concurrent prune must not take it.
  if ((await store.protect([rec.converted.digest])).length > 0) return undefined;
  return rec.converted;
}

/**
 * A descriptor of the same layer content in `compression` (converting once, cached under
 * `<root>/cache/compressed/<alg>-<hex>.<compression>.json`). The media type follows `format`,
 * or the source's vocabulary (Docker or OCI) when omitted.
 */
export async function ensureCompressed(
  store: OciStore,
  layer: Descriptor,
  compression: Compression,
  opts: {
    format?: 'oci' | 'docker';
    /**
     * Compression level of a conversion (gzip 1-9, default DEFAULT_GZIP_LEVEL; zstd 1-22,
     * default 3). A layer already in `compression` is used as it is, whatever its level; a cached
     * conversion made at another level is redone.
     */
    level?: number;
    signal?: AbortSignal;
  } = {},
): Promise<Descriptor> {
  const have = layerCompression(layer.mediaType);
  if (have === undefined) throw new UnsupportedMediaTypeError(layer.mediaType, 'layer media type');
  const format = opts.format ?? (isDockerType(layer.mediaType) ? 'docker' : 'oci');
  const mediaType = layerMediaType(compression, format);
  if (have === compression) return mediaType === layer.mediaType ? layer : { ...layer, mediaType };
  const cached = await readCache(store, layer.digest, compression, opts.level);
  if (cached) return { ...cached, mediaType };
  const tar = await openLayerTar(store, layer, opts);
  // An uncompressed source's digest is its diffID (and the verifying reader checks it), so the
  // tar is hashed once, not twice.
  const known = have === 'none' ? { diffId: layer.digest, uncompressedSize: layer.size } : {};
  const blob = await writeLayerBlob(store, tar, {
    compression,
    format,
    ...known,
    ...(opts.level !== undefined ? { level: opts.level } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const converted: Descriptor = { mediaType, digest: blob.digest, size: blob.size };
  await mkdir(compressedCacheDir(store.root), { recursive: true });
  await writeFileAtomic(cachePath(store.root, layer.digest, compression),
    JSON.stringify({ source: stripDesc(layer), converted, diffId: blob.diffId, level: opts.level ?? defaultLevel(compression) } satisfies CacheRecord));
  // The reverse direction is known too: converting back needs no work.
  await writeFileAtomic(cachePath(store.root, blob.digest, have),
    JSON.stringify({ source: converted, converted: stripDesc(layer), diffId: blob.diffId } satisfies CacheRecord));
  return converted;
}


function stripDesc(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}
