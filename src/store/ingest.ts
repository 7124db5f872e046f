/**
 * The store's one way in for blobs (containerd's content ingest): bytes go to a file under
 * `<root>/ingest`, hashed as they arrive; the file is then verified (size and digest), flushed
 * and renamed into `blobs/` (OciStore.place), so no torn or unverified blob ever sits behind a
 * name. A file that fails verification is deleted.
 *
 * Local writes (OciStore.writer: a build's layers, conversions, archive members, configs and
 * manifests) and registry downloads both come through here. A download is resumable: its file is
 * named after the digest (`<pid>-<rand>-remote-<alg>-<hex>`), the resume offset is the size of
 * what is really on disk, and a partial file left by a process that died is adopted (renamed to
 * our name) by the next download of the same digest. gc removes what dead processes left and
 * nobody adopted.
 *
 * The running hash covers exactly the bytes known to be in the file, so a finished blob is
 * verified without reading it back. When that is not so (an adopted partial, a write that failed
 * half-way, a reset) the prefix on disk is hashed from the file once before more is appended.
 */
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, open, readdir, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { algorithmOf, createHasher, hexOf, type Digest, type Hasher } from '../image/digest.js';
import { DigestMismatchError, SizeMismatchError } from '../image/errors.js';
import { ImgbuildError } from '../errors.js';
import { isProcessAlive } from '../pid.js';
import { ingestDir } from './paths.js';

/** Received bytes that may wait for the disk before the source is paused. */
const WRITE_AHEAD = 1024 * 1024;

/** Blobs at least this large are hashed on a worker thread when they must be read back. */
const WORKER_HASH_MIN = 32 * 1024 * 1024;

/**
 * A download is flushed to disk after every this many bytes (see EarlyWriteback); the size was
 * chosen by the bench pull (docs/architecture.md, "Measurements").
 */
const EARLY_SYNC_BYTES = 4 * 1024 * 1024;

// Plain JS so it runs as an eval'd worker from both the built CLI and TypeScript test runners.
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createReadStream } = require('node:fs');
const { createHash } = require('node:crypto');
const h = createHash(workerData.alg);
let n = 0;
createReadStream(workerData.path, { highWaterMark: 1 << 20 })
  .on('data', (c) => { h.update(c); n += c.length; })
  .on('end', () => parentPort.postMessage({ hex: h.digest('hex'), size: n }))
  .on('error', (e) => parentPort.postMessage({ error: e.message }));
`;

/** sha256/sha512 of a file on a worker thread; blake3 (and small files) on this one. */
export async function hashFile(path: string, alg: 'sha256' | 'sha512' | 'blake3', size: number): Promise<{ digest: Digest; size: number }> {
  if (alg === 'blake3' || size < WORKER_HASH_MIN) {
    const h = createHasher(alg);
    let n = 0;
    for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
      h.update(c as Buffer);
      n += (c as Buffer).length;
    }
    return { digest: h.digest(), size: n };
  }
  // Loaded on this rare path only (a large partial adopted from a dead process), not with every
  // pull. (Not an import(): the CLI bundle runs in vm.Script, which has no loader for one.)
  const { Worker } = process.getBuiltinModule('node:worker_threads');
  return new Promise((resolve, reject) => {
    const w = new Worker(HASH_WORKER, { eval: true, workerData: { path, alg } });
    w.once('message', (m: { hex?: string; size?: number; error?: string }) => {
      void w.terminate();
      if (m.error !== undefined || m.hex === undefined) reject(new Error(`hashing ${path}: ${m.error ?? 'no result'}`));
      else resolve({ digest: `${alg}:${m.hex}` as Digest, size: m.size ?? 0 });
    });
    w.once('error', reject);
  });
}

/**
 * Flushes a download to disk while it is still arriving (fdatasync on the thread pool, one at a
 * time), so that the fsync which must follow the last byte before the blob may be placed has
 * little left to write, and the disk works while the data arrives rather than after. A failed
 * early flush is ignored: the final sync decides.
 */
class EarlyWriteback {
  private pending = 0;
  private running: Promise<void> | undefined;
  private closed = false;

  /** `fh`: the handle the download writes with (its owner closes it, after close() here). */
  constructor(private readonly fh: FileHandle) {}

  wrote(bytes: number): void {
    this.pending += bytes;
    if (this.pending < EARLY_SYNC_BYTES || this.running || this.closed) return;
    this.pending = 0;
    this.running = this.fh
      .datasync()
      .catch(() => {})
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Starts no more flushes and waits for the one under way. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
  }
}

/**
 * Writes to one open file in batches: one writev of everything queued while the previous write
 * ran. `push` says when more than WRITE_AHEAD bytes wait, and `onDrain` is called once they no
 * longer do (a batch went to the disk); a failed write stops it (`error`, and `onError`).
 */
class BatchedWriter {
  private queue: Buffer[] = [];
  /** Bytes queued and not yet handed to a write. */
  queued = 0;
  private writing = false;
  error: unknown;
  onDrain: (() => void) | undefined;
  onError: ((e: unknown) => void) | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    private readonly early?: EarlyWriteback,
  ) {}

  /** Queues a chunk; false: WRITE_AHEAD bytes wait, hold back until onDrain. */
  push(chunk: Buffer): boolean {
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.pump();
    return this.queued < WRITE_AHEAD;
  }

  /** Resolves when everything queued is written, or a write failed (see `error`). */
  idle(): Promise<void> {
    if (!this.writing && (this.queue.length === 0 || this.error !== undefined)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private settle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  private pump(): void {
    if (this.writing || this.error !== undefined || this.queue.length === 0) {
      if (!this.writing) this.settle();
      return;
    }
    const bufs = this.queue;
    const bytes = this.queued;
    this.queue = [];
    this.queued = 0;
    this.writing = true;
    this.onDrain?.();
    this.fh.writev(bufs).then(
      ({ bytesWritten }) => {
        this.writing = false;
        if (bytesWritten !== bytes) throw new Error(`short write to ${this.path}: ${bytesWritten} of ${bytes} bytes`);
        this.early?.wrote(bytes);
        this.pump();
      },
    ).catch((e: unknown) => {
      this.writing = false;
      this.error ??= e;
      this.onError?.(e);
      this.settle();
    });
  }
}

/**
 * Where a download's bytes come from: a registry response body (registry/http.ts ResponseBody).
 * pipeTo hands every chunk to the sink, which returns false to pause until resume().
 */
export interface ChunkSource {
  pipeTo(sink: (chunk: Buffer) => boolean): Promise<void>;
  resume(): void;
  destroy(e?: Error): void;
}

/**
 * Sees a download's bytes as they arrive, in order, before they are written (a layer's check,
 * src/tar/check.ts). Its pace holds the source back as the disk's does. What it finds is for the
 * caller to ask once the blob is verified: before that the bytes are nobody's word.
 */
export interface IngestTap {
  /** Takes the next chunk; false: pause the download until onceDrain calls back. */
  write(chunk: Buffer): boolean;
  onceDrain(fn: () => void): void;
}

/** What places a verified file into the blobs (OciStore.place). */
export interface BlobPlacer {
  place(tmp: string, d: Digest): Promise<void>;
}

export class Ingest {
  private synced = false;
  /** Running hash of the first `hashed` bytes of the file (undefined: not started / not trusted). */
  private hasher: Hasher | undefined;
  private hashed = 0;
  /** The running hash's result, once taken (a hash gives its digest once). */
  private final: Digest | undefined;
  /** A local writer's handle and batches (write()), open until close(). */
  private out: { fh: FileHandle; batches: BatchedWriter } | undefined;

  private constructor(
    readonly path: string,
    private readonly alg: 'sha256' | 'sha512' | 'blake3',
    /** The blob this ingest is for, when known from the start (a download). */
    readonly expected: { digest: Digest; size: number } | undefined,
    /**
     * Whether the file exists yet. A download's file is made by its first write, so that the
     * request for the blob leaves without waiting for an open, a close and a stat on the thread
     * pool.
     */
    private onDisk: boolean,
  ) {}

  /**
   * A resumable ingest of the blob `digest` in the store at `root` (which need not have finished
   * opening: see OciStore.begin), adopting a partial download left by a dead process.
   */
  static async resumable(root: string, digest: Digest, size: number): Promise<Ingest> {
    const dir = ingestDir(root);
    await mkdir(dir, { recursive: true });
    const suffix = `-remote-${algorithmOf(digest)}-${hexOf(digest)}`;
    const path = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}${suffix}`);
    let adopted = false;
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      if (!n.endsWith(suffix)) continue;
      if (isProcessAlive(Number(n.split('-')[0]))) continue;
      try {
        await rename(join(dir, n), path); // atomic: of two adopters only one wins
        adopted = true;
        break;
      } catch {
        /* another process took it first */
      }
    }
    return new Ingest(path, algorithmOf(digest), { digest, size }, adopted);
  }

  /** A new file for a local write, hashed with `alg`; open for write() until close(). */
  static async create(root: string, alg: 'sha256' | 'sha512' | 'blake3' = 'sha256'): Promise<Ingest> {
    const dir = ingestDir(root);
    const path = join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    const fh = await open(path, 'wx');
    const ing = new Ingest(path, alg, undefined, true);
    ing.out = { fh, batches: new BatchedWriter(fh, path) };
    ing.hasher = createHasher(alg);
    return ing;
  }

  /** Bytes already on disk: where a download continues. */
  async offset(): Promise<number> {
    return this.onDisk ? (await stat(this.path)).size : 0;
  }

  /** Starts over (the server ignored our Range, or the partial is longer than the blob). */
  async reset(): Promise<void> {
    if (this.onDisk) await truncate(this.path, 0);
    this.forgetHash();
    this.synced = false;
  }

  private forgetHash(): void {
    this.hasher = undefined;
    this.hashed = 0;
    this.final = undefined;
  }

  /** A hasher positioned at `offset`: the running one when it covers exactly that prefix. */
  private async hasherAt(offset: number): Promise<Hasher> {
    if (this.hasher && this.hashed === offset && this.final === undefined) return this.hasher;
    const h = createHasher(this.alg);
    if (offset > 0) {
      // Rare path (adopted or torn partial): hash the prefix from the file.
      let n = 0;
      for await (const c of createReadStream(this.path, { highWaterMark: 1 << 20, end: offset - 1 })) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      if (n !== offset) throw new SizeMismatchError(offset, n, this.expected?.digest ?? 'blob');
    }
    this.hasher = h;
    this.hashed = offset;
    this.final = undefined;
    return h;
  }

  /**
   * Appends a download of the expected blob from `source`. Throws
   * SizeMismatchError as soon as the blob would exceed its size (the partial is then discarded,
   * since its bytes cannot be trusted). On any other failure the file keeps what reached it: that
   * is the resume point.
   *
   * Chunks are hashed as they arrive and written in batches (BatchedWriter), the source paused
   * while more than WRITE_AHEAD bytes wait. Chunks that arrived before the source failed are
   * still written, so that the resume offset and the running hash agree. A `tap` sees every chunk
   * too (it must have seen exactly the bytes before the file's current offset: the caller
   * checks); while it is behind, the source waits for it as well.
   */
  async append(source: ChunkSource, onBytes?: (total: number) => void, tap?: IngestTap): Promise<void> {
    const { digest, size } = this.known();
    let n = await this.offset();
    const h = await this.hasherAt(n).catch(() => undefined);
    const fh = await open(this.path, 'a');
    this.onDisk = true;
    this.synced = false;
    const early = new EarlyWriteback(fh);
    const batches = new BatchedWriter(fh, this.path, early);
    let tooBig: SizeMismatchError | undefined;
    let paused = false;
    /** The tap is behind: the source stays paused until it catches up. */
    let tapWaits = false;
    const resumeIfReady = (): void => {
      if (!paused || tapWaits || batches.queued >= WRITE_AHEAD) return;
      paused = false;
      source.resume();
    };
    batches.onDrain = resumeIfReady;
    batches.onError = (e) => source.destroy(e as Error);
    try {
      let sourceError: unknown;
      await source
        .pipeTo((chunk) => {
          n += chunk.length;
          if (n > size) {
            tooBig ??= new SizeMismatchError(size, n, digest);
            source.destroy(tooBig);
            return false;
          }
          h?.update(chunk);
          this.hashed = n;
          onBytes?.(n);
          if (tap && !tap.write(chunk)) {
            tapWaits = true;
            tap.onceDrain(() => {
              tapWaits = false;
              resumeIfReady();
            });
          }
          if (batches.push(chunk) && !tapWaits) return true;
          paused = true;
          return false;
        })
        .catch((e: unknown) => {
          sourceError = e;
        });
      await batches.idle();
      if (batches.error !== undefined) throw batches.error;
      if (sourceError !== undefined) throw sourceError;
    } catch (e) {
      // Some hashed bytes may not have reached the file (a failed write): the running hash is no
      // longer trusted unless its length still matches the file (checked by hasherAt next time).
      await early.close();
      await fh.close().catch(() => {});
      if (tooBig) {
        await this.discard();
        throw tooBig;
      }
      throw e;
    }
    await early.close();
    try {
      if (n === size) {
        // complete: flushed through the handle it was written with, not a second open in sync()
        await fh.sync();
        this.synced = true;
      }
    } finally {
      await fh.close();
    }
  }

  /** Appends content held in memory (a manifest or config already verified by the caller). */
  async appendBuffer(data: Buffer): Promise<void> {
    const { digest, size } = this.known();
    const n = await this.offset();
    if (n + data.length > size) {
      await this.discard();
      throw new SizeMismatchError(size, n + data.length, digest);
    }
    const h = await this.hasherAt(n).catch(() => undefined);
    this.onDisk = true;
    this.synced = false;
    await appendFile(this.path, data);
    h?.update(data);
    this.hashed = n + data.length;
  }

  private known(): { digest: Digest; size: number } {
    if (!this.expected) throw new ImgbuildError('INTERNAL', `ingest ${this.path}: no blob named to download`);
    return this.expected;
  }

  /** Writes a chunk of a local write (create()); resolves when it may be followed by more. */
  async write(chunk: Uint8Array): Promise<void> {
    const out = this.out;
    if (!out) throw new ImgbuildError('FAILED_PRECONDITION', `blob writer: ${this.path} is closed`);
    if (this.final !== undefined) throw new ImgbuildError('FAILED_PRECONDITION', 'blob writer: write after digest()');
    if (out.batches.error !== undefined) throw out.batches.error;
    this.hasher!.update(chunk);
    this.hashed += chunk.length;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (out.batches.push(buf)) return;
    await new Promise<void>((r) => {
      out.batches.onDrain = r;
      out.batches.onError = () => r();
    });
    out.batches.onDrain = out.batches.onError = undefined;
    if (out.batches.error !== undefined) throw out.batches.error;
  }

  /** Ends a local write: everything written (and flushed, with `sync`) and the handle closed. */
  async close(sync = false): Promise<void> {
    const out = this.out;
    if (!out) return;
    this.out = undefined;
    try {
      await out.batches.idle();
      if (out.batches.error !== undefined) throw out.batches.error;
      if (sync) {
        await out.fh.sync();
        this.synced = true;
      }
    } finally {
      await out.fh.close();
    }
  }

  /** The digest of the bytes given so far (for a local write; no write may follow). */
  digest(): Digest {
    this.final ??= this.hasher!.digest();
    return this.final;
  }

  /**
   * Checks the complete file against `size` and `digest` (default: the expected blob's); a file
   * that fails is deleted. `what` names the content in the mismatch error.
   */
  async verify(digest = this.known().digest, size = this.known().size, what = 'downloaded blob'): Promise<void> {
    await this.close();
    const n = await this.offset();
    if (n !== size) {
      await this.discard();
      throw new SizeMismatchError(size, n, digest);
    }
    let actual: Digest;
    let hashedSize = n;
    if (this.hasher && this.hashed === n && algorithmOf(digest) === this.alg) actual = this.digest();
    else ({ digest: actual, size: hashedSize } = await hashFile(this.path, algorithmOf(digest), n));
    this.forgetHash();
    if (hashedSize !== size) {
      await this.discard();
      throw new SizeMismatchError(size, hashedSize, digest);
    }
    if (actual !== digest) {
      await this.discard();
      throw new DigestMismatchError(digest, actual, n, what);
    }
  }

  /**
   * Flushes the file to disk so a crash never leaves a torn blob behind a name. A download
   * does it as soon as its blob is verified, while other downloads still run; one that append()
   * completed was flushed there already, through its own handle.
   */
  async sync(): Promise<void> {
    if (this.synced) return;
    const fh = await open(this.path, 'r');
    await fh.sync().finally(() => fh.close());
    this.synced = true;
  }

  /** Moves the verified file into `store`'s blobs as `digest` (default: the expected blob), flushed first. */
  async place(store: BlobPlacer, digest = this.known().digest): Promise<void> {
    await this.sync();
    try {
      await store.place(this.path, digest);
    } finally {
      await rm(this.path, { force: true });
    }
  }

  /** Deletes the file (a local write's handle closed first). */
  async discard(): Promise<void> {
    await this.close().catch(() => {});
    this.forgetHash();
    await rm(this.path, { force: true });
  }
}

/** Writes verified in-memory content to a synced ingest file, for placing later. */
export async function stageBlob(root: string, data: Buffer, digest: Digest): Promise<Ingest> {
  const ing = await Ingest.resumable(root, digest, data.length);
  try {
    await ing.reset(); // a partial adopted from a dead process: this content is whole
    await ing.appendBuffer(data);
    await ing.verify();
    await ing.sync();
  } catch (e) {
    await ing.discard().catch(() => {});
    throw e;
  }
  return ing;
}

export interface BlobWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Verifies and moves the blob into place; "already exists" is success. */
  commit(size: number, expected: Digest): Promise<void>;
  abort(): Promise<void>;
  /** Bytes written so far, and the digest of them (valid once all bytes are written). */
  readonly offset: number;
  digest(): Digest;
}

/** A local write into the store (OciStore.writer): an ingest with an optional size limit. */
export class IngestWriter implements BlobWriter {
  private n = 0;

  constructor(
    private readonly store: BlobPlacer,
    private readonly ing: Ingest,
    private readonly opts: { expected?: Digest; total?: number } = {},
  ) {}

  get offset(): number {
    return this.n;
  }

  /** Finalises the hash once; later calls (and commit) reuse the result, so no write may follow. */
  digest(): Digest {
    return this.ing.digest();
  }

  async write(chunk: Uint8Array): Promise<void> {
    const total = this.opts.total;
    if (total !== undefined && this.n + chunk.length > total) {
      await this.abort();
      throw new SizeMismatchError(total, this.n + chunk.length, this.opts.expected ?? 'blob');
    }
    await this.ing.write(chunk);
    this.n += chunk.length;
  }

  async commit(size: number, expected: Digest): Promise<void> {
    let placed = false;
    try {
      await this.ing.close(true); // flushed through the handle it was written with
      await this.ing.verify(expected, size, 'blob');
      await this.ing.place(this.store, expected);
      placed = true;
    } finally {
      if (!placed) await this.ing.discard();
    }
  }

  async abort(): Promise<void> {
    await this.ing.discard();
  }
}
