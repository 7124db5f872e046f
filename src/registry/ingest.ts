/**
 * Resumable blob ingest for downloads. The store's BlobWriter hashes a stream it sees once; a
 * registry download can break half-way and should continue with a `Range` request, possibly in a
 * later process. So a download writes to `<root>/ingest/<pid>-<rand>-remote-<alg>-<hex>`, the
 * resume offset is the size of what is really on disk, and a partial file left by a process that
 * died is adopted (renamed to our name) by the next download of the same digest.
 *
 * The digest is computed as the bytes arrive (sha256 runs at ~1.8 GB/s with SHA-NI, far above
 * what the network delivers), so a finished download is verified without reading the file back —
 * the read-back cost a pull of 5 × 20 MB blobs ~60 ms of main-thread time (`node --cpu-prof`).
 * The running hash covers exactly the bytes known to be in the file; when that is not so (a
 * partial adopted from a dead process, a write that failed half-way, a reset), the prefix on disk
 * is hashed from the file once before the download continues. Only a verified file is
 * handed to `store.place()`; a file that fails verification is deleted.
 */
import { createReadStream } from 'node:fs';
import { appendFile, open, readdir, rename, rm, stat, truncate, mkdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { algorithmOf, createHasher, hexOf, type Digest, type Hasher } from '../image/digest.js';
import { DigestMismatchError, SizeMismatchError } from '../image/errors.js';
import type { OciStore } from '../store/store.js';
import { isProcessAlive } from '../pid.js';
import type { ResponseBody } from './http.js';

/** Received bytes that may wait for the disk before the connection is paused. */
const WRITE_AHEAD = 1024 * 1024;

/** Blobs at least this large are hashed on a worker thread. */
const WORKER_HASH_MIN = 32 * 1024 * 1024;

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
  // Loaded on this rare path only (a partial download adopted from a dead process): it is ~1 ms
  // of every pull's start otherwise. (Not an import(): see runHelper in auth.ts.)
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
 * Flush to disk after every this many bytes of a download (see EarlyWriteback). The 300 MB pull
 * of `npm run bench` (a registry whose blobs were just pushed, so the disk is busy with its
 * writeback too), medians of 11, ÷ skopeo: never 1.26, 16 MB 1.18, 8 MB 1.16-1.17, 4 MB
 * 1.06-1.08, 2 MB 1.09, 1 MB 1.11.
 */
const EARLY_SYNC_BYTES = 4 * 1024 * 1024;

/**
 * Flushes a download to disk while it is still arriving (fdatasync on the thread pool, one at a
 * time), so that the fsync which must follow the last byte before the blob may be placed has
 * little left to write, and the disk works while the data arrives rather than after. Without it
 * that fsync was ~25 ms of a 300 MB pull's end on this machine, with nothing else left to overlap
 * it. A failed early flush is ignored: the final sync decides.
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
 * Sees a download's bytes as they arrive, in order, before they are written (a layer's check,
 * src/tar/check.ts). Its pace holds the connection back as the disk's does. What it finds
 * is for the caller to ask once the blob is verified: before that the bytes are nobody's word.
 */
export interface IngestTap {
  /** Takes the next chunk; false: pause the download until onceDrain calls back. */
  write(chunk: Buffer): boolean;
  onceDrain(fn: () => void): void;
}

export class ResumableIngest {
  private synced = false;
  /** Running hash of the first `hashed` bytes of the file (undefined: not started / not trusted). */
  private hasher: Hasher | undefined;
  private hashed = 0;

  private constructor(
    readonly path: string,
    readonly digest: Digest,
    readonly size: number,
    /**
     * Whether the file exists yet. A fresh ingest creates it with its first write, so that the
     * request for the blob leaves without waiting for an open and a close (and the stat of
     * offset()) on the thread pool: five downloads starting together queued ~25 such calls
     * before their requests.
     */
    private onDisk: boolean,
  ) {}

  /**
   * Opens an ingest for `digest` in the store at `root` (which need not have finished opening:
   * see OciStore.begin), adopting a partial download left by a dead process.
   */
  static async open(root: string, digest: Digest, size: number): Promise<ResumableIngest> {
    const dir = join(root, 'ingest');
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
    return new ResumableIngest(path, digest, size, adopted);
  }

  /** Bytes already on disk: where a Range request continues. */
  async offset(): Promise<number> {
    return this.onDisk ? (await stat(this.path)).size : 0;
  }

  /** Starts over (the server ignored our Range, or the partial is longer than the blob). */
  async reset(): Promise<void> {
    if (this.onDisk) await truncate(this.path, 0);
    this.hasher = undefined;
    this.hashed = 0;
    this.synced = false;
  }

  /** A hasher positioned at `offset`: the running one when it covers exactly that prefix. */
  private async hasherAt(offset: number): Promise<Hasher> {
    if (this.hasher && this.hashed === offset) return this.hasher;
    const h = createHasher(algorithmOf(this.digest));
    if (offset > 0) {
      // Rare path (adopted or torn partial): hash the prefix from the file.
      let n = 0;
      for await (const c of createReadStream(this.path, { highWaterMark: 1 << 20, end: offset - 1 })) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      if (n !== offset) throw new SizeMismatchError(offset, n, this.digest);
    }
    this.hasher = h;
    this.hashed = offset;
    return h;
  }

  /**
   * Appends a response body. Throws SizeMismatchError as soon as the blob would exceed its size
   * (the partial is then discarded, since its bytes cannot be trusted). On any other failure the
   * file keeps what reached it: that is the resume point.
   *
   * Chunks are hashed as they arrive and written in batches: one writev of everything that came
   * while the previous write was running, the connection paused while more than WRITE_AHEAD bytes
   * wait. Chunks that arrived before the connection broke are still written, so that the resume
   * offset and the running hash agree. A `tap` sees every chunk too (it must have seen exactly the
   * bytes before the file's current offset: the caller checks); while it is behind, the
   * connection waits for it as well.
   */
  async append(body: ResponseBody, onBytes?: (total: number) => void, tap?: IngestTap): Promise<void> {
    let n = await this.offset();
    const h = await this.hasherAt(n).catch(() => undefined);
    const fh = await open(this.path, 'a');
    this.onDisk = true;
    this.synced = false;
    const early = new EarlyWriteback(fh);
    let tooBig: SizeMismatchError | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        let queue: Buffer[] = [];
        let queued = 0;
        let writing = false;
        let paused = false;
        /** The tap is behind: the connection stays paused until it catches up. */
        let tapWaits = false;
        let ended = false;
        let netError: unknown;
        let writeError: unknown;
        const resumeIfReady = (): void => {
          if (!paused || tapWaits || queued >= WRITE_AHEAD) return;
          paused = false;
          body.resume();
        };
        const finish = (): void => {
          if (writing) return;
          if (writeError !== undefined) reject(writeError);
          else if (queue.length > 0) return;
          else if (netError !== undefined) reject(netError);
          else if (ended) resolve();
        };
        const pump = (): void => {
          if (writing || writeError !== undefined || queue.length === 0) return finish();
          const bufs = queue;
          const bytes = queued;
          queue = [];
          queued = 0;
          writing = true;
          resumeIfReady();
          fh.writev(bufs).then(
            ({ bytesWritten }) => {
              writing = false;
              if (bytesWritten !== bytes) throw new Error(`short write to ${this.path}: ${bytesWritten} of ${bytes} bytes`);
              early.wrote(bytes);
              pump();
            },
          ).catch((e: unknown) => {
            writing = false;
            writeError ??= e;
            body.destroy(e as Error);
            finish();
          });
        };
        body
          .pipeTo((chunk) => {
            n += chunk.length;
            if (n > this.size) {
              tooBig ??= new SizeMismatchError(this.size, n, this.digest);
              body.destroy(tooBig);
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
            queue.push(chunk);
            queued += chunk.length;
            pump();
            if (queued < WRITE_AHEAD && !tapWaits) return true;
            paused = true;
            return false;
          })
          .then(
            () => {
              ended = true;
              finish();
            },
            (e: unknown) => {
              netError = e;
              finish();
            },
          );
      });
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
      if (n === this.size) {
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
    const n = await this.offset();
    if (n + data.length > this.size) {
      await this.discard();
      throw new SizeMismatchError(this.size, n + data.length, this.digest);
    }
    const h = await this.hasherAt(n).catch(() => undefined);
    this.onDisk = true;
    this.synced = false;
    await appendFile(this.path, data);
    h?.update(data);
    this.hashed = n + data.length;
  }

  /** Verifies size and digest of the complete file; a bad file is deleted. */
  async verify(): Promise<void> {
    const n = await this.offset();
    if (n !== this.size) {
      await this.discard();
      throw new SizeMismatchError(this.size, n, this.digest);
    }
    const { digest: actual, size } = this.hasher && this.hashed === n
      ? { digest: this.hasher.digest(), size: n }
      : await hashFile(this.path, algorithmOf(this.digest), n);
    this.hasher = undefined;
    this.hashed = 0;
    if (size !== this.size) {
      await this.discard();
      throw new SizeMismatchError(this.size, size, this.digest);
    }
    if (actual !== this.digest) {
      await this.discard();
      throw new DigestMismatchError(this.digest, actual, n, 'downloaded blob');
    }
  }

  /**
   * Flushes the file to disk so a crash never leaves a torn blob behind a name. Done per blob as
   * soon as it is verified, while other downloads still run, rather than all at the end. A
   * download that append() completed was flushed there already, through its own handle.
   */
  async sync(): Promise<void> {
    if (this.synced) return;
    const fh = await open(this.path, 'r');
    await fh.sync().finally(() => fh.close());
    this.synced = true;
  }

  /** Moves the verified (and synced) file into `store`'s blobs. */
  async place(store: OciStore): Promise<void> {
    if (!this.synced) await this.sync();
    try {
      await store.place(this.path, this.digest);
    } finally {
      await rm(this.path, { force: true });
    }
  }

  async discard(): Promise<void> {
    this.hasher = undefined;
    this.hashed = 0;
    await rm(this.path, { force: true });
  }
}
