/**
 * The read-only Layer abstraction (go-containerregistry `v1.Layer` plus its `partial` adapters):
 * a source implements only the half it naturally has — a registry or a store blob the compressed
 * half, a freshly packed tree the uncompressed half — and the adapter derives the rest, computing
 * a missing digest by streaming the content once and remembering the result.
 */
import { Readable, Transform, Writable } from 'node:stream';
import { ImgbuildError } from '../errors.js';
import { pipeline } from 'node:stream/promises';
import { createHasher, type Digest } from './digest.js';
import { layerCompression, layerMediaType, type Compression, type MediaType } from './media-types.js';
import { decompress } from './compress.js';
import { ParallelGzip } from './compress/gzip-parallel.js';
import { ParallelZstd } from './compress/zstd.js';
import type { OciStore } from './store.js';
import type { Descriptor } from './types.js';

export interface Layer {
  /** Digest of the compressed blob. */
  digest(): Promise<Digest>;
  /** Digest of the uncompressed tar. */
  diffId(): Promise<Digest>;
  /** Size of the compressed blob. */
  size(): Promise<number>;
  mediaType(): MediaType;
  compressed(): Promise<Readable>;
  uncompressed(): Promise<Readable>;
}

export interface CompressedLayerCore {
  digest(): Promise<Digest>;
  size(): Promise<number>;
  mediaType(): MediaType;
  compressed(): Promise<Readable>;
  /** Optional: when the source already knows it (e.g. from the image config), no stream is read. */
  diffId?(): Promise<Digest>;
}

export interface UncompressedLayerCore {
  diffId(): Promise<Digest>;
  /** The uncompressed media type (OCI_LAYER or DOCKER_LAYER). */
  mediaType(): MediaType;
  uncompressed(): Promise<Readable>;
}

/** sha256 and length of a stream, read to the end. */
async function digestStream(r: Readable): Promise<{ digest: Digest; size: number }> {
  const h = createHasher('sha256');
  let size = 0;
  await pipeline(r, new Writable({
    write(chunk: Buffer, _e, cb) {
      h.update(chunk);
      size += chunk.length;
      cb();
    },
  }));
  return { digest: h.digest(), size };
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= fn().catch((e: unknown) => {
      p = undefined; // a failed computation may be retried
      throw e;
    });
    return p;
  };
}

/** Completes a compressed-only source: the uncompressed stream and diffID are derived. */
export function fromCompressed(core: CompressedLayerCore): Layer {
  const compression = (): Compression | undefined => layerCompression(core.mediaType());
  const uncompressed = async (): Promise<Readable> => decompress(await core.compressed(), compression());
  const diffId = core.diffId ? memo(() => core.diffId!()) : memo(async () => (await digestStream(await uncompressed())).digest);
  return {
    digest: () => core.digest(),
    size: () => core.size(),
    mediaType: () => core.mediaType(),
    compressed: () => core.compressed(),
    uncompressed,
    diffId,
  };
}

/**
 * Completes an uncompressed-only source: the blob is compressed on demand (deterministically, so
 * digest() computed by a first pass matches the bytes compressed() streams later).
 */
export function fromUncompressed(
  core: UncompressedLayerCore,
  opts: { compression?: Compression; level?: number; format?: 'oci' | 'docker' } = {},
): Layer {
  const compression = opts.compression ?? 'gzip';
  const format = opts.format ?? (core.mediaType().startsWith('application/vnd.docker.') ? 'docker' : 'oci');
  const compressed = async (): Promise<Readable> => {
    const src = await core.uncompressed();
    if (compression === 'none') return src;
    const lvl = opts.level !== undefined ? { level: opts.level } : {};
    const t = compression === 'gzip' ? new ParallelGzip(lvl) : new ParallelZstd(lvl);
    src.on('error', (e) => t.destroy(e));
    return src.pipe(t);
  };
  const blob = memo(async () => (compression === 'none' ? { digest: await core.diffId(), size: -1 } : digestStream(await compressed())));
  return {
    digest: async () => (await blob()).digest,
    size: async () => {
      const b = await blob();
      return b.size >= 0 ? b.size : (await digestStream(await core.uncompressed())).size;
    },
    mediaType: () => layerMediaType(compression, format),
    diffId: () => core.diffId(),
    compressed,
    uncompressed: () => core.uncompressed(),
  };
}

/** A layer blob of the store (verified on read); `diffId` from the image config when known. */
export function layerFromStore(store: OciStore, desc: Descriptor, diffId?: Digest): Layer {
  return fromCompressed({
    digest: async () => desc.digest,
    size: async () => desc.size,
    mediaType: () => desc.mediaType,
    compressed: () => store.reader(desc),
    ...(diffId ? { diffId: async () => diffId } : {}),
  });
}

export class NotComputedError extends ImgbuildError {
  constructor(what: string) {
    super('FAILED_PRECONDITION', `stream layer ${what} is not computed until its compressed stream has been read to the end`);
    this.name = 'NotComputedError';
  }
}

/**
 * A layer made from a tar stream that can be read only once (ggcr `stream.Layer`): compressed()
 * compresses while hashing both sides; digest(), diffId() and size() reject with NotComputedError
 * until that stream has been consumed to its end.
 */
export function streamLayer(tar: Readable, opts: { compression?: Compression; level?: number; format?: 'oci' | 'docker' } = {}): Layer {
  const compression = opts.compression ?? 'gzip';
  let result: { digest: Digest; diffId: Digest; size: number } | undefined;
  let used = false;
  const need = async <T>(what: string, pick: (r: NonNullable<typeof result>) => T): Promise<T> => {
    if (!result) throw new NotComputedError(what);
    return pick(result);
  };
  return {
    digest: () => need('digest', (r) => r.digest),
    diffId: () => need('diffID', (r) => r.diffId),
    size: () => need('size', (r) => r.size),
    mediaType: () => layerMediaType(compression, opts.format ?? 'oci'),
    uncompressed: async () => {
      throw new ImgbuildError('FAILED_PRECONDITION', 'a stream layer only offers its compressed stream');
    },
    compressed: async () => {
      if (used) throw new ImgbuildError('FAILED_PRECONDITION', 'a stream layer can be read only once');
      used = true;
      const diff = createHasher('sha256');
      const blob = createHasher('sha256');
      let size = 0;
      const lvl = opts.level !== undefined ? { level: opts.level } : {};
      const comp = compression === 'none' ? undefined : compression === 'gzip' ? new ParallelGzip(lvl) : new ParallelZstd(lvl);
      const tapIn = new Transform({
        transform(chunk: Buffer, _e, cb) {
          diff.update(chunk);
          cb(null, chunk);
        },
      });
      const tapOut = new Transform({
        transform(chunk: Buffer, _e, cb) {
          blob.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
        flush(cb) {
          const diffId = diff.digest();
          result = { diffId, digest: comp ? blob.digest() : diffId, size };
          cb();
        },
      });
      const stages: (Readable | Transform)[] = [tar, tapIn, ...(comp ? [comp] : []), tapOut];
      for (let i = 0; i < stages.length - 1; i++) {
        stages[i]!.on('error', (e) => tapOut.destroy(e));
        stages[i]!.pipe(stages[i + 1] as Transform);
      }
      return tapOut;
    },
  };
}
