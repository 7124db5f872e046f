/**
 * What every snapshotter over `<root>/metadata.json` and `<root>/snapshots/<id>/fs` does the same
 * way, whatever makes the rootfs (overlay mounts, or vfs copies): finding, leasing, listing,
 * measuring and removing snapshots. A removed snapshot's dir is renamed to `<root>/rm-*` under the
 * metadata lock and deleted after it; whatever a crash leaves there is removed on open.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { throwIfAborted } from '../errors.js';
import type { Lease } from '../store/lease.js';
import { SnapshotNotFoundError, SnapshotStateError } from './errors.js';
import { MetadataStore, toInfo, type SnapshotRecord } from './metadata.js';
import type { Mount } from '../sandbox/spec.js';
import type { PrepareOptions, SnapshotInfo, SnapshotOptions, Usage } from './snapshotter.js';

/**
 * Counts bytes (allocated blocks) and inodes under `dir`, each hard-linked inode once. The walk
 * is synchronous on purpose: one lstat per entry is cheaper inline than as a thread-pool round
 * trip, which for a layer of thousands of files cost more than the calls themselves.
 */
export async function diskUsage(dir: string, signal?: AbortSignal): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  const stack = [dir];
  const count = (p: string): boolean => {
    const st = lstatSync(p, { bigint: true });
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return st.isDirectory();
    seen.add(id);
    size += Number(st.blocks) * 512;
    return st.isDirectory();
  };
  count(dir);
  while (stack.length > 0) {
    throwIfAborted(signal);
    const d = stack.pop()!;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (count(p) && e.isDirectory()) stack.push(p);
    }
  }
  return { size, inodes: seen.size };
}

export abstract class RecordedSnapshotter {
  readonly snapshotsDir: string;
  protected readonly meta: MetadataStore;

  protected constructor(readonly root: string) {
    this.snapshotsDir = join(root, 'snapshots');
    this.meta = new MetadataStore(root);
  }

  /**
   * Called before a snapshot dir (or a leftover) is deleted: a kind whose snapshots may be mounted
   * inside their own dir (fuse-overlayfs's `merged`) unmounts them, so that nothing is deleted
   * through a mount. Nothing by default.
   */
  protected async releaseMounts(_dir: string): Promise<void> {}

  /** Removes a leftover of this kind's own in the root (`name`); false when `name` is none. */
  protected abstract removeLeftover(name: string): Promise<boolean>;

  /** Makes an active snapshot (or a read-only view) of `parent`, each kind in its own way. */
  protected abstract create(kind: 'active' | 'view', key: string, parent: string | undefined, o: PrepareOptions): Promise<Mount[]>;

  prepare(key: string, parent?: string, o: PrepareOptions = {}): Promise<Mount[]> {
    return this.create('active', key, parent, o);
  }

  view(key: string, parent?: string, o: SnapshotOptions = {}): Promise<Mount[]> {
    return this.create('view', key, parent, o);
  }

  /**
   * Removes what an interrupted create/remove left behind (`new-*` and `rm-*` dirs, metadata
   * temp files, snapshot dirs the metadata does not know) and the kind's own leftovers; runs under
   * the metadata lock.
   */
  async cleanup(signal?: AbortSignal): Promise<string[]> {
    return this.meta.update(async (tx) => {
      const removed: string[] = [];
      const ids = tx.ids();
      for (const name of await readdir(this.root)) {
        // (A live remover may be deleting its rm-* dir too: either of us may finish it.)
        if (name.startsWith('new-') || name.startsWith('rm-') || /^\.metadata\.json\..*\.tmp$/.test(name)) {
          await this.releaseMounts(join(this.root, name));
          await rm(join(this.root, name), { recursive: true, force: true }).catch(() => {});
          removed.push(name);
        } else if (await this.removeLeftover(name)) {
          removed.push(name);
        }
      }
      for (const name of await readdir(this.snapshotsDir)) {
        if (!/^\d+$/.test(name) || !ids.has(Number(name))) {
          await this.releaseMounts(join(this.snapshotsDir, name));
          await rm(join(this.snapshotsDir, name), { recursive: true, force: true });
          removed.push(`snapshots/${name}`);
        }
      }
      return removed;
    }, { signal });
  }

  dirOf(id: number): string {
    return join(this.snapshotsDir, String(id));
  }

  /** Where a removed snapshot's dir goes until it is deleted (unique: a live remover may still hold an older one). */
  protected trashOf(id: number): string {
    return join(this.root, `rm-${id}-${randomBytes(4).toString('hex')}`);
  }

  private async record(key: string): Promise<SnapshotRecord> {
    const doc = await this.meta.read();
    const rec = Object.hasOwn(doc.snapshots, key) ? doc.snapshots[key] : undefined;
    if (!rec) throw new SnapshotNotFoundError(key);
    return rec;
  }

  /**
   * Whether the snapshot `key` exists; with a lease, it is also leased, under the metadata lock
   * so that no prune removes it between being found and being leased.
   */
  async acquire(key: string, lease?: Lease, o: { signal?: AbortSignal } = {}): Promise<boolean> {
    if (!lease) return Object.hasOwn((await this.meta.read()).snapshots, key);
    return this.meta.update(async (tx) => {
      if (!tx.get(key)) return false;
      await lease.add({ snapshots: [key] });
      return true;
    }, o);
  }

  /**
   * Removes, in one metadata transaction, the snapshots that `select` picks. `select` runs under
   * the metadata lock (a collector reads leases there) and gets every snapshot; children are
   * removed before their parents, and one that keeps a child is skipped. Returns the removed keys
   * and the bytes they held.
   */
  async removeWhere(
    select: (all: Map<string, SnapshotInfo>) => Iterable<string> | Promise<Iterable<string>>,
    o: { signal?: AbortSignal } = {},
  ): Promise<{ removed: string[]; bytes: number }> {
    const trash: string[] = [];
    const result = await this.meta.update(async (tx, save) => {
      const all = new Map(Object.entries(tx.doc.snapshots).map(([k, r]) => [k, toInfo(k, r)]));
      const depth = (key: string): number => {
        let d = 0;
        for (let k = all.get(key)?.parent; k !== undefined && d <= all.size; k = all.get(k)?.parent) d++;
        return d;
      };
      const chosen = [...new Set(await select(all))].filter((k) => all.has(k)).sort((a, b) => depth(b) - depth(a));
      const removed: string[] = [];
      const recs: SnapshotRecord[] = [];
      let bytes = 0;
      for (const key of chosen) {
        throwIfAborted(o.signal);
        if (tx.hasChildren(key)) continue;
        const r = tx.remove(key);
        bytes += r.usage?.size ?? (await diskUsage(join(this.dirOf(r.id), 'fs')).catch(() => ({ size: 0 }))).size;
        removed.push(key);
        recs.push(r);
      }
      if (removed.length === 0) return { removed, bytes };
      await save();
      for (const r of recs) {
        const dest = this.trashOf(r.id);
        await rename(this.dirOf(r.id), dest).then(
          () => trash.push(dest),
          (e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          },
        );
      }
      return { removed, bytes };
    }, o);
    for (const t of trash) {
      await this.releaseMounts(t);
      await rm(t, { recursive: true, force: true }).catch(() => {});
    }
    return result;
  }

  async remove(key: string): Promise<void> {
    const trash = await this.meta.update(async (tx, save) => {
      const rec = tx.remove(key);
      await save();
      const dest = this.trashOf(rec.id);
      await rename(this.dirOf(rec.id), dest).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      return dest;
    });
    await this.releaseMounts(trash);
    await rm(trash, { recursive: true, force: true }).catch(() => {}); // else left for cleanup
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return toInfo(key, await this.record(key));
  }

  async usage(key: string): Promise<Usage> {
    const rec = await this.record(key);
    if (rec.kind === 'committed' && rec.usage) return { ...rec.usage };
    return diskUsage(join(this.dirOf(rec.id), 'fs'));
  }

  async walk(fn: (i: SnapshotInfo) => void | Promise<void>): Promise<void> {
    const doc = await this.meta.read();
    const entries = Object.entries(doc.snapshots).sort((a, b) => a[1].id - b[1].id);
    for (const [key, rec] of entries) await fn(toInfo(key, rec));
  }

  /**
   * The directory a step writes into: an active snapshot's upper dir under overlay, its whole
   * rootfs under vfs (whose layer vfs-diff.ts computes); a committed one's content (read only).
   */
  async upperDir(key: string): Promise<string> {
    const rec = await this.record(key);
    if (rec.kind === 'view') throw new SnapshotStateError(key, 'a view has no upper dir');
    return join(this.dirOf(rec.id), 'fs');
  }
}
