/**
 * Resumable blob ingest for downloads. The store's BlobWriter hashes a stream it sees once; a
 * registry download can break half-way and should continue with a `Range` request, possibly in a
 * later process. So a download writes to `<root>/ingest/<pid>-<rand>-remote-<alg>-<hex>`, the hash
 * state is always derived from the bytes really on disk, and a partial file left by a process that
 * died is adopted (renamed to our name) by the next download of the same digest. Only a fully
 * verified file is handed to `store.place()`; a file that fails verification is deleted.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readdir, rename, rm, stat, truncate, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { algorithmOf, createHasher, hexOf, type Digest, type Hasher } from '../digest.js';
import { DigestMismatchError, SizeMismatchError } from '../errors.js';
import type { OciStore } from '../store.js';

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ResumableIngest {
  private hasher: Hasher;
  private hashed = 0;
  private synced = false;

  private constructor(
    private readonly store: OciStore,
    readonly path: string,
    readonly digest: Digest,
    readonly size: number,
  ) {
    this.hasher = createHasher(algorithmOf(digest));
  }

  /** Opens an ingest for `digest`, adopting a partial download left by a dead process. */
  static async open(store: OciStore, digest: Digest, size: number): Promise<ResumableIngest> {
    const dir = join(store.root, 'ingest');
    await mkdir(dir, { recursive: true });
    const suffix = `-remote-${algorithmOf(digest)}-${hexOf(digest)}`;
    const path = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}${suffix}`);
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      if (!n.endsWith(suffix)) continue;
      if (isAlive(Number(n.split('-')[0]))) continue;
      try {
        await rename(join(dir, n), path); // atomic: of two adopters only one wins
        break;
      } catch {
        /* another process took it first */
      }
    }
    const fh = await open(path, 'a');
    await fh.close();
    return new ResumableIngest(store, path, digest, size);
  }

  /**
   * Bytes already on disk, with the hash brought up to date. After a failed write the file may
   * hold fewer (or more) bytes than were hashed, so any disagreement rehashes from the file.
   */
  async offset(): Promise<number> {
    const n = (await stat(this.path)).size;
    if (n !== this.hashed) {
      this.hasher = createHasher(algorithmOf(this.digest));
      this.hashed = 0;
      if (n > 0) {
        for await (const chunk of createReadStream(this.path, { start: 0, end: n - 1, highWaterMark: 1 << 20 })) {
          this.hasher.update(chunk as Buffer);
          this.hashed += (chunk as Buffer).length;
        }
      }
    }
    return this.hashed;
  }

  /** Starts over (the server ignored our Range, or the partial is longer than the blob). */
  async reset(): Promise<void> {
    await truncate(this.path, 0);
    this.hasher = createHasher(algorithmOf(this.digest));
    this.hashed = 0;
  }

  /**
   * Appends a response body. Throws SizeMismatchError as soon as the blob would exceed its size
   * (the partial is then discarded, since its bytes cannot be trusted).
   */
  async append(body: Readable, onBytes?: (total: number) => void): Promise<void> {
    let tooBig: SizeMismatchError | undefined;
    const hash = new Transform({
      highWaterMark: 1 << 20,
      transform: (chunk: Buffer, _e, cb) => {
        if (this.hashed + chunk.length > this.size) {
          tooBig = new SizeMismatchError(this.size, this.hashed + chunk.length, this.digest);
          cb(tooBig);
          return;
        }
        this.hasher.update(chunk);
        this.hashed += chunk.length;
        onBytes?.(this.hashed);
        cb(null, chunk);
      },
    });
    try {
      // on failure the file keeps what reached it: that is the resume point (offset() rehashes)
      await pipeline(body, hash, createWriteStream(this.path, { flags: 'a', highWaterMark: 1 << 20 }));
    } catch (e) {
      if (tooBig) {
        await this.discard();
        throw tooBig;
      }
      throw e;
    }
  }

  /** Verifies size and digest of the complete file; a bad file is deleted. */
  async verify(): Promise<void> {
    const n = await this.offset();
    if (n !== this.size) {
      await this.discard();
      throw new SizeMismatchError(this.size, n, this.digest);
    }
    const actual = this.hasher.digest();
    if (actual !== this.digest) {
      await this.discard();
      throw new DigestMismatchError(this.digest, actual, n, 'downloaded blob');
    }
  }

  /**
   * Flushes the file to disk so a crash never leaves a torn blob behind a name. Done per blob as
   * soon as it is verified, while other downloads still run, rather than all at the end.
   */
  async sync(): Promise<void> {
    const fh = await open(this.path, 'r');
    await fh.sync().finally(() => fh.close());
    this.synced = true;
  }

  /** Moves the verified (and synced) file into `blobs/`. */
  async place(): Promise<void> {
    if (!this.synced) await this.sync();
    try {
      await this.store.place(this.path, this.digest);
    } finally {
      await rm(this.path, { force: true });
    }
  }

  async discard(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
