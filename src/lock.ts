/**
 * An inter-process lock on a path, for read-modify-write of shared files (the store's index.json,
 * snapshot metadata, the host-wide network lease table). It has no internal dependencies so that
 * every part of the code base may use it (see test/conformance/dependency-rule.test.ts).
 */
import { linkSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, link, unlink, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ImgbuildError, throwIfAborted } from './errors.js';
import { isOwnerAlive, isProcessAlive, selfStartTime } from './pid.js';
import { namesIn } from './fs.js';

/** How long withLock waits for a busy lock before giving up. */
const LOCK_TIMEOUT_MS = 60_000;
/** A lock directory left by an older imgbuild (refreshed every 2 s while held) is stale after this. */
const LEGACY_DIR_STALE_MS = 10_000;

/** Whether the owner line `<pid> <starttime>` names a process that is still running. */
function ownerAlive(owner: string): Promise<boolean> {
  const [pidText, start] = owner.trim().split(' ');
  return isOwnerAlive(Number(pidText), start); // (no start time: not written by withLock, stale)
}

/** What holds the lock file at `p` now: its inode and owner line, or that it is an old lock dir. */
type Holder = { kind: 'none' } | { kind: 'dir'; mtimeMs: number } | { kind: 'file'; owner: string };

async function holderOf(p: string): Promise<Holder> {
  let fh;
  try {
    fh = await open(p, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw e;
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) return { kind: 'dir', mtimeMs: st.mtimeMs };
    return { kind: 'file', owner: await fh.readFile('utf8') };
  } finally {
    await fh.close();
  }
}

async function isStale(h: Holder): Promise<boolean> {
  if (h.kind === 'dir') return Date.now() - h.mtimeMs >= LEGACY_DIR_STALE_MS; // refreshed while held
  return h.kind === 'file' && !(await ownerAlive(h.owner));
}

/**
 * Removes the lock at `lockPath` if its owner is gone. Returns true when the caller should retry
 * at once, false when it should wait (a live owner holds the lock, or another waiter is breaking it).
 *
 * Between judging a lock dead and deleting it, another waiter could break it too and a third take
 * the lock afresh; deleting then would drop that live lock. So breaking happens under a second
 * lock, `<lockPath>.break` (taken the same way, by linking `mine`, our complete owner file), and
 * the holder is judged again under it: a dead owner cannot release any more, waiters cannot take a
 * lock that still exists, and other breakers wait, so what is judged is what gets deleted.
 */
async function breakIfStale(lockPath: string, mine: string): Promise<boolean> {
  const first = await holderOf(lockPath);
  if (first.kind === 'none') return true;
  if (!(await isStale(first))) return false;
  const breakPath = `${lockPath}.break`;
  try {
    await link(mine, breakPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Another waiter is breaking it. A break lock left by a crash (its owner gone) is removed
    // directly: it is only held for a few system calls, so two crashes would have to coincide.
    const b = await holderOf(breakPath);
    if (b.kind === 'file' && !(await ownerAlive(b.owner))) await unlink(breakPath).catch(() => {});
    return false;
  }
  try {
    const now = await holderOf(lockPath);
    if (now.kind === 'dir' && (await isStale(now))) await rmdir(lockPath).catch(() => {});
    else if (now.kind === 'file' && (await isStale(now))) await unlink(lockPath).catch(() => {});
  } finally {
    await unlink(breakPath).catch(() => {});
  }
  return true;
}

/**
 * Runs `fn` while holding an exclusive inter-process lock on `path`: the file `<path>.lock`, which
 * names its owner as `<pid> <start time>`. It is created complete (written to a temp file, then
 * hard-linked into place, which fails if the lock exists), so a crash can never leave an empty or
 * half-written lock. A lock whose owner is no longer running (dead pid, or a pid reused by a later
 * process) is stale and broken at once, so a killed process does not wedge the store. Waiters poll
 * with backoff for up to a minute, and give up early when `signal` aborts.
 *
 * Not reentrant: a nested withLock on the same path in one process waits for itself.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
  const lockPath = `${path}.lock`;
  const tmp = ownerFile(lockPath);
  try {
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    let delay = 1;
    for (;;) {
      throwIfAborted(opts.signal);
      try {
        linkSync(tmp, lockPath);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new ImgbuildError('UNAVAILABLE', `could not lock ${path}: ${(e as Error).message}`, { cause: e });
        }
      }
      if (await breakIfStale(lockPath, tmp)) continue;
      if (Date.now() >= deadline) {
        throw new ImgbuildError('UNAVAILABLE', `could not lock ${path}: held by another process for over ${LOCK_TIMEOUT_MS / 1000} s`);
      }
      await sleep(delay, opts.signal);
      delay = Math.min(delay * 1.5, 100);
    }
  } finally {
    unlinkQuietly(tmp);
  }
  try {
    throwIfAborted(opts.signal);
    return await fn();
  } finally {
    unlinkQuietly(lockPath);
  }
}

function unlinkQuietly(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // gone already
  }
}

/**
 * Writes a complete owner file `<lockPath>.<pid>.<rand>` (the name `sweepLocks` recognises).
 * Taking and releasing a free lock uses synchronous system calls: the calls take microseconds,
 * five thread-pool round trips cost far more, and a build takes many locks. Only waiting for a
 * busy lock is asynchronous.
 */
function ownerFile(lockPath: string): string {
  const owner = `${process.pid} ${selfStartTime()}\n`;
  const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, owner, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(lockPath), { recursive: true });
    writeFileSync(tmp, owner, { flag: 'wx' });
  }
  return tmp;
}

const OWNER_FILE = /\.lock\.(\d+)\.[0-9a-f]{8}$/;

/**
 * Removes what processes that died holding or waiting for a lock left in `dir` (not recursive):
 * owner files `<x>.lock.<pid>.<rand>` (a waiter killed before it could unlink its own), locks
 * `<x>.lock` and break locks `<x>.lock.break` whose owner is gone. A lock nobody waits for is
 * otherwise only broken by the next taker. Returns the names removed; a missing `dir` is fine.
 */
export async function sweepLocks(dir: string): Promise<string[]> {
  const names = await namesIn(dir);
  const removed: string[] = [];
  for (const name of names) {
    const p = join(dir, name);
    const m = OWNER_FILE.exec(name);
    if (m) {
      const h = await holderOf(p).catch(() => ({ kind: 'none' }) as Holder);
      // An owner file is written whole by one write; one cut short (empty) is judged by its name.
      const dead = h.kind === 'file' && h.owner.includes(' ') ? !(await ownerAlive(h.owner)) : h.kind === 'file' && !isProcessAlive(Number(m[1]));
      if (dead && (await unlink(p).then(() => true, () => false))) removed.push(name);
    } else if (name.endsWith('.lock.break')) {
      const h = await holderOf(p).catch(() => ({ kind: 'none' }) as Holder);
      if (h.kind === 'file' && !(await ownerAlive(h.owner)) && (await unlink(p).then(() => true, () => false))) removed.push(name);
    } else if (name.endsWith('.lock')) {
      const h = await holderOf(p).catch(() => ({ kind: 'none' }) as Holder);
      if (h.kind === 'none' || !(await isStale(h))) continue;
      // Broken the way a waiter breaks it, so a live process taking it meanwhile is never hurt.
      const mine = ownerFile(p);
      try {
        await breakIfStale(p, mine);
      } finally {
        unlinkQuietly(mine);
      }
      if ((await holderOf(p).catch(() => h)).kind === 'none') removed.push(name);
    }
  }
  return removed;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
