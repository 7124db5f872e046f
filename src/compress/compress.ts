/**
 * Compression codecs for layers: detect a compression by its magic bytes, decode (gzip, zstd),
 * and the compressing streams (parallel gzip, framed zstd) with their levels. No store access:
 * writing and converting stored layers is store/layers.ts.
 */
import { PassThrough, Readable, Transform, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { Compression } from '../image/media-types.js';
import { ParallelGzip } from './gzip-parallel.js';
import { ParallelZstd, createZstdDecompressor } from './zstd.js';

export type { Compression } from '../image/media-types.js';


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
 * when none is asked for: the cheapest level that compresses at least as well as skopeo's default,
 * so that comparisons are like for like (docs/architecture.md, "Measurements").
 */
export const DEFAULT_GZIP_LEVEL = 4;

/** Valid `level` range per compression (gzip: zlib 1-9; zstd: 1-22). */
export function compressionLevelRange(c: Compression): [number, number] | undefined {
  return c === 'gzip' ? [1, 9] : c === 'zstd' ? [1, 22] : undefined;
}

/** The compressing stream for `c` at `level` (undefined for none). */
export function compressorFor(c: Compression, level?: number): Transform | undefined {
  switch (c) {
    case 'gzip': return new ParallelGzip({ level: level ?? DEFAULT_GZIP_LEVEL });
    case 'zstd': return new ParallelZstd(level !== undefined ? { level } : {});
    case 'none': return undefined;
  }
}

/** The level a compression uses when none is asked for. */
export function defaultLevel(c: Compression): number | undefined {
  return c === 'gzip' ? DEFAULT_GZIP_LEVEL : c === 'zstd' ? 3 : undefined;
}
