/**
 * Leases: what a running process is using, so a concurrent `prune` spares it (containerd's leases,
 * kept in files instead of a database). A lease is `<root>/leases/<pid>-<start>-<rand>.jsonl`,
 * named after its owner process (pid and start time, so a reused pid does not keep it alive), and
 * lists the blob digests and committed snapshot keys it protects, one line per addition:
 *
 *   {"blobs":["sha256:..."],"snapshots":["sha256:<chain id>"]}
 *
 * A resource is leased first and then looked for: found, it stays while the lease lives. For
 * snapshots this happens under the metadata lock, where prune reads the leases too. Blobs are
 * leased without a lock (a build leases every layer it finds in its cache): gc hides a blob before
 * deleting it and reads the leases again, putting back any leased meanwhile (OciStore.gc). A new
 * resource is leased before it becomes visible. A lease whose owner is gone protects nothing:
 * collectors ignore it and remove its file.
 */
import { appendFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isOwnerAlive, isProcessAlive, selfStartTime } from '../pid.js';
import { leasesDir } from './paths.js';

/** The snapshot label naming the lease that owns a temporary active snapshot or view. */
export const LEASE_LABEL = 'imgbuild.lease';

/** A lease file (`.jsonl`), or another file named after a lease (any is removed with its owner). */
const LEASE_NAME = /^\.?(\d+)-(\d+)-([0-9a-f]{8})\.(\w+)$/;
/** A lease of older imgbuild versions: `<pid>-<rand>` holding the pid, sparing blobs newer than it. */
const LEGACY_NAME = /^(\d+)-[0-9a-f]{8}$/;

/** Whether the process named by a lease id (`<pid>-<start>-<rand>`) is still running. */
export function isLeaseAlive(id: string): Promise<boolean> {
  const m = /^(\d+)-(\d+)-[0-9a-f]{8}$/.exec(id);
  return m ? isOwnerAlive(Number(m[1]), m[2]) : Promise.resolve(false);
}

export interface LeaseResources {
  blobs?: Iterable<string>;
  snapshots?: Iterable<string>;
}

/**
 * One process's lease on the store at `root`. Nothing is on disk until a resource is added; each
 * addition appends one line with what is new, so nothing is ever rewritten (a rename over the
 * previous version made ext4 flush it first). A
 * reader ignores a last line without its newline. Written with synchronous calls, a few µs each,
 * where thread-pool round trips cost more than the writes; not fsync'd: a lease matters only
 * while its owner runs, and a crash ends that.
 */
export class Lease {
  readonly id: string;
  private readonly file: string;
  private readonly blobs = new Set<string>();
  private readonly snapshots = new Set<string>();
  private onDisk = false;

  constructor(readonly root: string) {
    this.id = `${process.pid}-${selfStartTime()}-${randomBytes(4).toString('hex')}`;
    this.file = join(leasesDir(root), `${this.id}.jsonl`);
  }

  /** Adds resources; resolves once the lease on disk holds them. */
  add(r: LeaseResources): Promise<void> {
    try {
      const blobs = [...new Set(r.blobs ?? [])].filter((b) => !this.blobs.has(b));
      const snapshots = [...new Set(r.snapshots ?? [])].filter((k) => !this.snapshots.has(k));
      if (blobs.length === 0 && snapshots.length === 0) return Promise.resolve();
      const line = `${JSON.stringify({ blobs, snapshots })}\n`;
      try {
        appendFileSync(this.file, line);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        mkdirSync(leasesDir(this.root), { recursive: true });
        appendFileSync(this.file, line);
      }
      this.onDisk = true;
      for (const b of blobs) this.blobs.add(b);
      for (const k of snapshots) this.snapshots.add(k);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** Drops everything the lease protects (the process is done with it); it may be used again. */
  release(): Promise<void> {
    this.blobs.clear();
    this.snapshots.clear();
    if (this.onDisk) {
      this.onDisk = false;
      try {
        unlinkSync(this.file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return Promise.reject(e as Error);
      }
    }
    return Promise.resolve();
  }
}

/** What the leases of live processes protect. */
export interface LiveLeases {
  blobs: Set<string>;
  snapshots: Set<string>;
  /** Leases of older imgbuild versions protect blobs modified at or after this time (ms). */
  legacySince?: number;
  /** Files of dead owners that were removed. */
  removed: string[];
}

/**
 * Reads every lease under `<root>/leases`, removing those (and their temp files) whose owner is
 * gone. Call it under the lock of the collector that will act on the result. `except` names the
 * collector's own lease, which does not protect anything from its own owner.
 */
export async function readLiveLeases(root: string, opts: { except?: string } = {}): Promise<LiveLeases> {
  const out: LiveLeases = { blobs: new Set(), snapshots: new Set(), removed: [] };
  const dir = leasesDir(root);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  const drop = async (name: string): Promise<void> => {
    await rm(join(dir, name), { force: true });
    out.removed.push(name);
  };
  for (const name of names) {
    const m = LEASE_NAME.exec(name);
    if (m) {
      if (!(await isOwnerAlive(Number(m[1]), m[2]))) {
        await drop(name);
        continue;
      }
      if (m[4] !== 'jsonl' || name.startsWith('.') || name === `${opts.except}.jsonl`) continue;
      let text: string;
      try {
        text = await readFile(join(dir, name), 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
        throw e;
      }
      const lines = text.split('\n');
      lines.pop(); // after the last newline: nothing, or an addition still being written
      for (const line of lines) {
        let doc: { blobs?: unknown; snapshots?: unknown };
        try {
          doc = JSON.parse(line) as typeof doc;
        } catch {
          continue;
        }
        if (Array.isArray(doc.blobs)) for (const b of doc.blobs) if (typeof b === 'string') out.blobs.add(b);
        if (Array.isArray(doc.snapshots)) for (const k of doc.snapshots) if (typeof k === 'string') out.snapshots.add(k);
      }
      continue;
    }
    const legacy = LEGACY_NAME.exec(name);
    if (legacy) {
      if (!isProcessAlive(Number(legacy[1]))) {
        await drop(name);
        continue;
      }
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st && (out.legacySince === undefined || st.mtimeMs < out.legacySince)) out.legacySince = st.mtimeMs;
    }
  }
  return out;
}
