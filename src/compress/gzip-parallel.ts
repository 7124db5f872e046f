/**
 * Parallel gzip in the way pigz does it: the input is cut into blocks, each block is raw-deflated
 * on its own (zlib's async API runs it on the libuv thread pool, so blocks compress on every
 * core), primed with the last 32 KiB of the block before as a preset dictionary so the ratio
 * matches single-threaded gzip, and ended with a sync flush (byte-aligned, not final) — except
 * the last block, which ends the deflate stream. The blocks concatenate into ONE deflate stream:
 * the output is a single-member gzip with the CRC-32 and length of the whole input, which every
 * reader accepts (gzip, Go's compress/gzip, Node's zlib), no multi-member support needed.
 *
 * The CRC is computed in order on the main thread (zlib.crc32, GB/s). At most `concurrency`
 * blocks are in flight, and the Transform holds its write callback while its readable side is
 * full, so memory is bounded by (concurrency + 1) × block size whatever the input size.
 *
 * Output is deterministic for a given level, memLevel and block size (mtime 0 in the header, OS 255
 * "unknown" as Go writes it), so equal tars give equal compressed digests.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import zlib from 'node:zlib';

export interface ParallelGzipOptions {
  level?: number;
  /**
   * zlib memLevel (default 9, zlib's maximum; zlib's own default is 8). Node's bundled zlib
   * (Chromium's) hashes faster with the larger table, for slightly more output.
   */
  memLevel?: number;
  /** Bytes per independently compressed block (default 1 MiB). */
  blockSize?: number;
  /**
   * Blocks compressing at once (default: 2 × cores, so a core never waits for the main thread).
   */
  concurrency?: number;
}

const DICT = 32 * 1024;
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

function deflateBlock(data: Buffer, dict: Buffer | undefined, level: number, memLevel: number, last: boolean): Promise<Buffer> {
  return new Promise((res, rej) => {
    zlib.deflateRaw(
      data,
      {
        level,
        memLevel,
        // One output buffer that holds the whole block (deflate's worst case is the input plus
        // 5 bytes per 16 KiB stored block), so a block is one thread-pool job: with zlib's default
        // 16 KiB chunks each block took ~25 round trips through the main thread
        // (docs/architecture.md, "Measurements").
        chunkSize: data.length + (data.length >> 12) + 1024,
        ...(dict ? { dictionary: dict } : {}),
        finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      },
      (err, out) => (err ? rej(err) : res(out)),
    );
  });
}

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly memLevel: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private prevTail: Buffer | undefined;
  private crc = 0;
  private isize = 0;
  private started = false;
  private readonly inflight: Promise<Buffer>[] = [];

  constructor(opts: ParallelGzipOptions = {}) {
    super();
    this.level = opts.level ?? 6;
    this.memLevel = opts.memLevel ?? 9;
    this.blockSize = opts.blockSize ?? 1024 * 1024;
    this.concurrency = Math.max(1, opts.concurrency ?? 2 * availableParallelism());
  }

  private takeBlock(n: number): Buffer {
    if (n === this.pendingLen && this.pending.length === 1) {
      const b = this.pending[0]!;
      this.pending = [];
      this.pendingLen = 0;
      return b;
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const c = this.pending[0]!;
      const take = Math.min(c.length, n - o);
      c.copy(out, o, 0, take);
      o += take;
      if (take === c.length) this.pending.shift();
      else this.pending[0] = c.subarray(take);
    }
    this.pendingLen -= n;
    return out;
  }

  private submit(block: Buffer, last: boolean): void {
    this.crc = zlib.crc32(block, this.crc);
    this.isize = (this.isize + block.length) % 0x100000000;
    const p = deflateBlock(block, this.prevTail, this.level, this.memLevel, last);
    // Swallow here; the rejection is observed when the block is awaited in order.
    p.catch(() => {});
    this.inflight.push(p);
    this.prevTail = block.length >= DICT ? block.subarray(block.length - DICT) : Buffer.concat([this.prevTail ?? Buffer.alloc(0), block]).subarray(-DICT);
  }

  private async drainTo(limit: number): Promise<void> {
    while (this.inflight.length > limit) {
      const out = await this.inflight.shift()!;
      this.push(out);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(HEADER);
    }
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    (async () => {
      while (this.pendingLen >= this.blockSize) {
        this.submit(this.takeBlock(this.blockSize), false);
        await this.drainTo(this.concurrency - 1);
      }
    })().then(() => cb(), (e: Error) => cb(e));
  }

  override _flush(cb: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(HEADER);
    }
    (async () => {
      this.submit(this.takeBlock(this.pendingLen), true);
      await this.drainTo(0);
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.isize >>> 0, 4);
      this.push(trailer);
    })().then(() => cb(), (e: Error) => cb(e));
  }
}

export function createParallelGzip(opts: ParallelGzipOptions = {}): Transform {
  return new ParallelGzip(opts);
}
