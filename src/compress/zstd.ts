/**
 * zstd for layers.
 *
 * Compression: @mongodb-js/zstd only compresses whole buffers, but a zstd stream may be any
 * number of independent frames back to back (RFC 8878 §3.1: "a compressed stream is a sequence
 * of one or more frames"; `zstd -d`, Go's klauspost/compress and containerd all read it). So the
 * input is cut into blocks compressed concurrently on the thread pool and written in order as
 * consecutive frames — the same bounded-memory pipeline as the parallel gzip.
 *
 * Decompression: the system `zstd` when installed, else the pure-JS `fzstd` (see
 * `createZstdDecompressor`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream';
import { compress as zstdCompress } from '@mongodb-js/zstd';
import { Decompress as FzstdDecompress } from 'fzstd';
import { ImgbuildError } from '../errors.js';

export interface ParallelZstdOptions {
  level?: number;
  /** Bytes per frame (default 4 MiB: zstd's level-3 window is 1-4 MiB, so smaller frames cost ratio). */
  blockSize?: number;
  concurrency?: number;
}

export class ParallelZstd extends Transform {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private readonly inflight: Promise<Buffer>[] = [];
  private any = false;

  constructor(opts: ParallelZstdOptions = {}) {
    super();
    this.level = opts.level ?? 3;
    this.blockSize = opts.blockSize ?? 4 * 1024 * 1024;
    this.concurrency = Math.max(1, opts.concurrency ?? availableParallelism() + 1);
  }

  private takeBlock(n: number): Buffer {
    const out = this.pending.length === 1 && this.pending[0]!.length === n ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLen).subarray(0, n);
    const rest = this.pendingLen > n ? Buffer.concat(this.pending, this.pendingLen).subarray(n) : undefined;
    this.pending = rest ? [rest] : [];
    this.pendingLen -= n;
    return out;
  }

  private submit(block: Buffer): void {
    this.any = true;
    const p = zstdCompress(block, this.level);
    p.catch(() => {});
    this.inflight.push(p);
  }

  private async drainTo(limit: number): Promise<void> {
    while (this.inflight.length > limit) this.push(await this.inflight.shift()!);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    (async () => {
      while (this.pendingLen >= this.blockSize) {
        this.submit(this.takeBlock(this.blockSize));
        await this.drainTo(this.concurrency - 1);
      }
    })().then(() => cb(), (e: Error) => cb(e));
  }

  override _flush(cb: TransformCallback): void {
    (async () => {
      // An empty input still yields one (empty) frame so the output is a valid zstd stream.
      if (this.pendingLen > 0 || !this.any) this.submit(this.takeBlock(this.pendingLen));
      await this.drainTo(0);
    })().then(() => cb(), (e: Error) => cb(e));
  }
}

export class ZstdError extends ImgbuildError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', `zstd: ${reason}`, options);
    this.name = 'ZstdError';
  }
}

/** Pure-JS streaming decoder (fzstd) as a Transform. */
export class FzstdTransform extends Transform {
  private readonly dec: FzstdDecompress;
  private sawInput = false;

  constructor() {
    super();
    this.dec = new FzstdDecompress((data) => {
      // fzstd reuses no buffers it hands out, but copy into a Buffer view for stream consumers.
      this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.sawInput = this.sawInput || chunk.length > 0;
    try {
      this.dec.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      cb();
    } catch (e) {
      cb(new ZstdError((e as Error).message, { cause: e }));
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.sawInput) this.dec.push(new Uint8Array(0), true);
      cb();
    } catch (e) {
      cb(new ZstdError((e as Error).message, { cause: e }));
    }
  }
}

/**
 * `zstd -dc` as a Duplex: runs in its own process, so decoding overlaps with hashing and tar
 * parsing on the other core (containerd execs unpigz the same way).
 */
export function spawnZstdDecoder(signal?: AbortSignal): Duplex {
  const child = spawn('zstd', ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => { if (stderr.length < 4096) stderr += d; });
  const out = new PassThrough();
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  child.stdout.pipe(out, { end: false });
  let stdoutDone = false;
  let exited: { code: number | null; sig: NodeJS.Signals | null } | undefined;
  const finish = (): void => {
    if (!stdoutDone || !exited) return;
    if (exited.code === 0) out.end();
    else out.destroy(new ZstdError(`zstd -dc failed (${exited.code ?? exited.sig}): ${stderr.trim()}`));
  };
  child.stdout.on('end', () => { stdoutDone = true; finish(); });
  child.on('close', (code, sig) => { exited = { code, sig }; stdoutDone = true; finish(); });
  child.on('error', (e) => out.destroy(new ZstdError(`cannot run zstd: ${e.message}`, { cause: e })));
  child.stdin.on('error', () => { /* EPIPE when zstd exits early; reported through the exit status */ });
  duplex.on('close', () => { if (child.exitCode === null) child.kill(); });
  return duplex;
}

/** Memo of the `zstd --version` probe (a fact about the host, not configuration). */
const probe: { zstd?: boolean } = {};
function haveZstdBinary(): boolean {
  if (probe.zstd === undefined) probe.zstd = spawnSyncQuiet('zstd', ['--version']).status === 0;
  return probe.zstd;
}

function spawnSyncQuiet(cmd: string, args: string[]): { status: number | null } {
  try {
    return spawnSync(cmd, args, { stdio: 'ignore' });
  } catch {
    return { status: null };
  }
}

/**
 * A zstd decoder stream: `zstd -dc` whenever it is installed, as a native decoder running on
 * another core while Node hashes and parses the tar is several times faster than fzstd
 * (docs/architecture.md, "Measurements"); fzstd keeps zstd layers readable on hosts without it.
 */
export function createZstdDecompressor(signal?: AbortSignal): Duplex {
  if (ZSTD_DECODER_CHOICE === 'spawn' && haveZstdBinary()) return spawnZstdDecoder(signal);
  return new FzstdTransform();
}

export const ZSTD_DECODER_CHOICE: 'spawn' | 'fzstd' = 'spawn';
