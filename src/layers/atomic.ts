/**
 * Atomic file replacement and inter-process locks, shared by every on-disk structure that
 * must survive a crash or a second imgbuild process: write a temp file in the same directory,
 * fsync it, rename it over the target, fsync the directory.
 */
import { open, rename, rm, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import lockfile from 'proper-lockfile';
import { ImgbuildError } from '../errors.js';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

/**
 * Runs `fn` while holding an exclusive lock on `path` (a `<path>.lock` directory, refreshed while
 * held and considered stale after 10 s without refresh, so a killed process does not wedge the store).
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path, {
      realpath: false,
      stale: 10_000,
      update: 2_000,
      retries: { retries: 600, factor: 1.2, minTimeout: 5, maxTimeout: 100 },
    });
  } catch (e) {
    throw new ImgbuildError('UNAVAILABLE', `could not lock ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    opts.signal?.throwIfAborted();
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
