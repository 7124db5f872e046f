/**
 * Atomic file replacement, shared by every on-disk structure that must survive a crash or a
 * second imgbuild process: write a temp file in the same directory, fsync it, rename it over the
 * target, fsync the directory. The inter-process lock lives in src/lock.ts (the runner uses it
 * too, and may not depend on layers); it is re-exported here for the store's users.
 */
import { open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isProcessAlive } from './pid.js';
import { namesIn } from './fs.js';

export { withLock, sweepLocks } from './lock.js';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The temp file beside `path` that an atomic write renames over it (`sweepTempFiles` knows the name). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
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
  await fsyncDir(dirname(path));
}


/** Temp files of an atomic write: `writeFileAtomic`'s `.<name>.<pid>.<rand>.tmp`, or `<name>.<pid>.<rand>.tmp`. */
const TEMP_FILE = /\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes the temp files of atomic writes in `dir` (not recursive) whose writer is no longer
 * running: a process killed between writing and renaming one leaves it behind. Returns the
 * names removed; a missing `dir` is fine.
 */
export async function sweepTempFiles(dir: string): Promise<string[]> {
  const names = await namesIn(dir);
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_FILE.exec(name);
    if (!m || isProcessAlive(Number(m[1]))) continue;
    await rm(join(dir, name), { force: true }).then(() => removed.push(name), () => {});
  }
  return removed;
}
