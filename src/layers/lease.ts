/**
 * Leases: what a running process is using, so a concurrent `prune` spares it (containerd's leases,
 * kept in files instead of a database). A lease is `<root>/leases/<pid>-<start>-<rand>.json`,
 * named after its owner process (pid and start time, so a reused pid does not keep it alive), and
 * holds the blob digests and committed snapshot keys it protects:
 *
 *   {"blobs": ["sha256:..."], "snapshots": ["sha256:<chain id>"]}
 *
 * Adding a resource that already exists must happen under the lock its garbage collector holds
 * (index.json's for blobs, the snapshot metadata's for snapshots) and check that it is still there
 * in the same critical section; a new resource is leased before it becomes visible. A collector
 * reads the leases under that same lock, so what it sees is what it may not delete. A lease whose
 * owner is gone protects nothing: collectors ignore it and remove its file.
 */
import { readdir, readFile, rename, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isOwnerAlive, isProcessAlive, selfStartTime } from '../pid.js';

export const LEASES_DIR = 'leases';

/** The snapshot label naming the lease that owns a temporary active snapshot or view. */
export const LEASE_LABEL = 'imgbuild.lease';

const LEASE_NAME = /^(\d+)-(\d+)-([0-9a-f]{8})\.json$/;
const LEASE_TMP = /^\.(\d+)-(\d+)-([0-9a-f]{8})\.tmp$/;
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
 * addition rewrites the (small) file whole, by rename, so a reader sees all of it or the previous
 * version. Not fsync'd: a lease matters only while its owner runs, and a crash ends that.
 */
export class Lease {
  readonly id: string;
  private readonly file: string;
  private readonly blobs = new Set<string>();
  private readonly snapshots = new Set<string>();
  /** Writes happen one at a time, in order: each writes everything added before it. */
  private queue: Promise<void> = Promise.resolve();
  private onDisk = false;

  constructor(readonly root: string) {
    this.id = `${process.pid}-${selfStartTime()}-${randomBytes(4).toString('hex')}`;
    this.file = join(root, LEASES_DIR, `${this.id}.json`);
  }

  /** Adds resources; resolves once the lease on disk holds them. */
  add(r: LeaseResources): Promise<void> {
    let changed = false;
    for (const [set, items] of [[this.blobs, r.blobs], [this.snapshots, r.snapshots]] as const) {
      for (const x of items ?? []) {
        if (set.has(x)) continue;
        set.add(x);
        changed = true;
      }
    }
    if (!changed) return this.queue;
    const next = this.queue.then(() => this.write());
    this.queue = next.catch(() => {});
    return next;
  }

  private async write(): Promise<void> {
    const text = JSON.stringify({ blobs: [...this.blobs], snapshots: [...this.snapshots] });
    const dir = join(this.root, LEASES_DIR);
    const tmp = join(dir, `.${this.id}.tmp`);
    try {
      await writeFile(tmp, text);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(dir, { recursive: true });
      await writeFile(tmp, text);
    }
    await rename(tmp, this.file);
    this.onDisk = true;
  }

  /** Drops everything the lease protects (the process is done with it); it may be used again. */
  release(): Promise<void> {
    const next = this.queue.then(async () => {
      this.blobs.clear();
      this.snapshots.clear();
      if (!this.onDisk) return;
      this.onDisk = false;
      await rm(this.file, { force: true });
    });
    this.queue = next.catch(() => {});
    return next;
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
  const dir = join(root, LEASES_DIR);
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
    const m = LEASE_NAME.exec(name) ?? LEASE_TMP.exec(name);
    if (m) {
      if (!(await isOwnerAlive(Number(m[1]), m[2]))) {
        await drop(name);
        continue;
      }
      if (name.startsWith('.') || name === `${opts.except}.json`) continue; // (a temp file: the previous version counts)
      let doc: { blobs?: unknown; snapshots?: unknown };
      try {
        doc = JSON.parse(await readFile(join(dir, name), 'utf8')) as typeof doc;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
        throw e;
      }
      if (Array.isArray(doc.blobs)) for (const b of doc.blobs) if (typeof b === 'string') out.blobs.add(b);
      if (Array.isArray(doc.snapshots)) for (const s of doc.snapshots) if (typeof s === 'string') out.snapshots.add(s);
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
