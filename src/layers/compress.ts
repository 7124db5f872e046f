/**
 * Layer compression: detect, decompress, and write a layer blob in one pass (diffID of the tar,
 * compression, digest and size of the blob), plus the conversion cache used by push/save.
 *
 * Build results stay uncompressed (DESIGN.md §3: compress on export, once); `ensureCompressed`
 * converts a stored layer to the wanted compression the first time it is needed and remembers the
 * result under `<root>/cache/compressed/`, so later pushes and saves reuse the blob.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { throwIfAborted } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { HashingTransform, hexOf, algorithmOf, parseDigest, type Digest } from './digest.js';
import { isDockerType, layerCompression, layerMediaType, type Compression } from './media-types.js';
import type { OciStore } from './store.js';
import type { Descriptor } from './types.js';
import { UnsupportedMediaTypeError } from './errors.js';
import { ParallelGzip } from './compress/gzip-parallel.js';
import { ParallelZstd, createZstdDecompressor } from './compress/zstd.js';

export type { Compression } from './media-types.js';

export interface LayerBlob extends Descriptor {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  uncompressedSize: number;
}

/** By magic bytes: gzip `1f 8b`, zstd frame `28 b5 2f fd` (or a skippable frame `5? 2a 4d 18`). */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd';
  return 'none';
}

/** A decoder stream for `c` (compressed bytes in, the tar out). */
export function createDecoder(c: Compression, signal?: AbortSignal): Transform | Duplex {
  switch (c) {
    // Node's gunzip reads concatenated members (multi-member gzip) to the end.
    case 'gzip': return zlib.createGunzip({ chunkSize: 128 * 1024 });
    case 'zstd': return createZstdDecompressor(signal);
    case 'none': return new PassThrough();
  }
}

/**
 * An uncompressed view of `input`; the compression is detected from the first bytes when `c` is
 * omitted. Errors of the input (e.g. a digest mismatch at EOF) surface on the returned stream.
 */
export function decompress(input: Readable, c?: Compression, opts: { signal?: AbortSignal } = {}): Readable {
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  const run = async (): Promise<void> => {
    let comp = c;
    let source: Readable = input;
    if (comp === undefined) {
      const it = input[Symbol.asyncIterator]();
      const head: Buffer[] = [];
      let n = 0;
      let done = false;
      while (n < 4) {
        const r = await it.next();
        if (r.done) { done = true; break; }
        const b = r.value as Buffer;
        head.push(b);
        n += b.length;
      }
      comp = detectCompression(Buffer.concat(head));
      source = Readable.from((async function* () {
        yield* head;
        if (!done) for (let r = await it.next(); !r.done; r = await it.next()) yield r.value as Buffer;
      })(), { objectMode: false });
    }
    await pipeline(source, createDecoder(comp, opts.signal), out, ...(opts.signal ? [{ signal: opts.signal }] : []));
  };
  run().catch((e: unknown) => {
    input.destroy();
    out.destroy(e as Error);
  });
  return out;
}

/**
 * gzip level of layers we compress (build with --compression gzip, push and save conversions)
 * when none is asked for.
 *
 * Why 4 and not zlib's usual 6: registries' other clients use faster deflaters. skopeo/podman
 * (containers/image) compress with klauspost/pgzip at its default level, which klauspost's flate
 * maps to its level 5 — a greedy hash-chain encoder much faster than zlib's lazy level 6. Measured
 * on a 61 MB tar of real /usr files (median of 5, 2 cores, loaded host, one run):
 *
 *   skopeo copy --dest-compress (pgzip default)  26.62 MB  0.84 s cpu (incl. reading, sha256, fsync)
 *   in-process ParallelGzip (1 MiB blocks, memLevel 9)
 *                                       level 1  27.54 MB  0.59 s cpu
 *                                       level 3  26.84 MB  0.69 s cpu
 *                                       level 4  26.37 MB  0.74 s cpu   <- default
 *                                       level 6  25.77 MB  1.25 s cpu
 *   system pigz 2.6 (spawned, piped)    -1       27.07 MB  0.74 s cpu
 *                                       -3       26.21 MB  1.03 s cpu
 *                                       -4       25.65 MB  1.05 s cpu
 *                                       -6       25.03 MB  2.17 s cpu
 *
 * Level 4 is the cheapest level that compresses at least as well as skopeo, so comparisons with
 * it are like for like; level 6 cost 70% more CPU for 2% smaller layers. Spawning pigz does not
 * pay: Node's bundled zlib (Chromium's, with SIMD hashing and CRC) is as fast in-process at equal
 * ratio (pigz -3 ≈ level 4 in size for 40% more CPU), and a child adds two pipe copies of every
 * byte, so there is no pigz path. Block size barely matters (level 3: 256 KiB 0.83 s, 1 MiB
 * 0.79 s, 4 MiB 0.80 s at memLevel 8; sizes within 0.1%).
 */
export const DEFAULT_GZIP_LEVEL = 4;

/** Valid `level` range per compression (gzip: zlib 1-9; zstd: 1-22). */
export function compressionLevelRange(c: Compression): [number, number] | undefined {
  return c === 'gzip' ? [1, 9] : c === 'zstd' ? [1, 22] : undefined;
}

function compressorFor(c: Compression, level?: number): Transform | undefined {
  switch (c) {
    case 'gzip': return new ParallelGzip({ level: level ?? DEFAULT_GZIP_LEVEL });
    case 'zstd': return new ParallelZstd(level !== undefined ? { level } : {});
    case 'none': return undefined;
  }
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
    signal?: AbortSignal;
  },
): Promise<LayerBlob> {
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
      w.write(chunk).then(() => cb(), cb);
    },
  });
  try {
    const stages: (Readable | Transform | Writable)[] = [tar];
    if (diff) stages.push(diff);
    if (comp) stages.push(comp);
    stages.push(sink);
    await (pipeline as (...a: unknown[]) => Promise<void>)(...stages, ...(opts.signal ? [{ signal: opts.signal }] : []));
    const digest = w.digest();
    const size = w.offset;
    const diffId = diff ? diff.result().digest : comp && known ? opts.diffId! : digest;
    await w.commit(size, digest);
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
  return join(root, 'cache', 'compressed', `${algorithmOf(d)}-${hexOf(d)}.${c}.json`);
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
  await mkdir(join(store.root, 'cache', 'compressed'), { recursive: true });
  await writeFileAtomic(cachePath(store.root, layer.digest, compression),
    JSON.stringify({ source: stripDesc(layer), converted, diffId: blob.diffId, level: opts.level ?? defaultLevel(compression) } satisfies CacheRecord));
  // The reverse direction is known too: converting back needs no work.
  await writeFileAtomic(cachePath(store.root, blob.digest, have),
    JSON.stringify({ source: converted, converted: stripDesc(layer), diffId: blob.diffId } satisfies CacheRecord));
  return converted;
}

function defaultLevel(c: Compression): number | undefined {
  return c === 'gzip' ? DEFAULT_GZIP_LEVEL : c === 'zstd' ? 3 : undefined;
}

function stripDesc(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}
