/**
 * Snapshot metadata: one JSON document (`<overlay root>/metadata.json`) replaced atomically
 * (write temp, fsync, rename, fsync dir) and only ever changed as one read-modify-write under
 * an inter-process lock. The kind rules of snapshots live here, so every caller gets them:
 *
 * - keys are unique across kinds; a committed snapshot is never changed, only removed;
 * - a parent must exist and be committed;
 * - only an active snapshot can be committed, and under a name not in use;
 * - a snapshot with children cannot be removed.
 *
 * Ids are short decimal numbers taken from a counter that never goes back, so an id is never
 * reused even after a crash between a directory rename and the metadata write.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withLock, writeFileAtomic } from '../atomic.js';
import { CorruptStoreError } from '../store/errors.js';
import { SnapshotExistsError, SnapshotNotFoundError, SnapshotStateError } from './errors.js';
import type { SnapshotInfo, SnapshotKind, Usage } from './snapshotter.js';

export interface SnapshotRecord {
  id: number;
  kind: SnapshotKind;
  parent?: string;
  labels: Record<string, string>;
  created: string;
  updated: string;
  /** Usage frozen at commit time (committed snapshots only). */
  usage?: Usage;
  /** The snapshot dir holds an init layer (`init/`), active snapshots only. */
  init?: boolean;
}

export interface MetadataDocument {
  version: 1;
  nextId: number;
  snapshots: Record<string, SnapshotRecord>;
}

export const METADATA_FILE = 'metadata.json';

function emptyDocument(): MetadataDocument {
  return { version: 1, nextId: 1, snapshots: {} };
}

export function toInfo(key: string, r: SnapshotRecord): SnapshotInfo {
  const info: SnapshotInfo = { key, kind: r.kind, labels: { ...r.labels }, created: r.created, updated: r.updated };
  if (r.parent !== undefined) info.parent = r.parent;
  return info;
}

function validateKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new SnapshotStateError(String(key), 'snapshot key must be a non-empty string');
}

/** A view of the document inside one locked read-modify-write. */
export class Transaction {
  constructor(readonly doc: MetadataDocument) {}

  get(key: string): SnapshotRecord | undefined {
    return Object.hasOwn(this.doc.snapshots, key) ? this.doc.snapshots[key] : undefined;
  }

  require(key: string): SnapshotRecord {
    const r = this.get(key);
    if (!r) throw new SnapshotNotFoundError(key);
    return r;
  }

  /** Ids of the parent chain of `key`, nearest parent first. */
  parentIds(key: string): number[] {
    return parentIdsOf(this.doc, key);
  }

  hasChildren(key: string): boolean {
    return Object.values(this.doc.snapshots).some((r) => r.parent === key);
  }

  /** Throws unless a snapshot `key` may be created on `parent`. */
  checkCreate(key: string, parent: string | undefined): void {
    validateKey(key);
    if (this.get(key)) throw new SnapshotExistsError(key);
    if (parent !== undefined) {
      const p = this.get(parent);
      if (!p) throw new SnapshotNotFoundError(parent);
      if (p.kind !== 'committed') throw new SnapshotStateError(parent, `parent must be committed, it is ${p.kind}`);
    }
  }

  /** Adds an active snapshot or a view; returns the record with its freshly allocated id. */
  create(key: string, kind: 'active' | 'view', parent: string | undefined, labels: Record<string, string> = {}, init = false): SnapshotRecord {
    this.checkCreate(key, parent);
    const now = new Date().toISOString();
    const rec: SnapshotRecord = { id: this.doc.nextId++, kind, labels: { ...labels }, created: now, updated: now };
    if (parent !== undefined) rec.parent = parent;
    if (init) rec.init = true;
    this.doc.snapshots[key] = rec;
    return rec;
  }

  /** Moves active `key` to committed `name`, keeping its id, parent and directory. */
  commit(name: string, key: string, usage: Usage, labels: Record<string, string> = {}): SnapshotRecord {
    validateKey(name);
    const r = this.require(key);
    if (r.kind !== 'active') throw new SnapshotStateError(key, `only an active snapshot can be committed, it is ${r.kind}`);
    if (this.get(name)) throw new SnapshotExistsError(name);
    if (this.hasChildren(key)) throw new SnapshotStateError(key, 'an active snapshot cannot have children');
    const rec: SnapshotRecord = {
      id: r.id,
      kind: 'committed',
      labels: { ...r.labels, ...labels },
      created: new Date().toISOString(),
      updated: new Date().toISOString(),
      usage,
    };
    if (r.parent !== undefined) rec.parent = r.parent;
    delete this.doc.snapshots[key];
    this.doc.snapshots[name] = rec;
    return rec;
  }

  remove(key: string): SnapshotRecord {
    const r = this.require(key);
    const children = Object.entries(this.doc.snapshots)
      .filter(([, c]) => c.parent === key)
      .map(([k]) => k);
    if (children.length > 0) {
      throw new SnapshotStateError(key, `cannot remove a snapshot with children (${children.slice(0, 3).join(', ')}${children.length > 3 ? ', ...' : ''})`);
    }
    delete this.doc.snapshots[key];
    return r;
  }

  ids(): Set<number> {
    return new Set(Object.values(this.doc.snapshots).map((r) => r.id));
  }
}

export function parentIdsOf(doc: MetadataDocument, key: string): number[] {
  const out: number[] = [];
  const seen = new Set<string>([key]);
  let p = doc.snapshots[key]?.parent;
  while (p !== undefined) {
    if (seen.has(p)) throw new CorruptStoreError(METADATA_FILE, `parent cycle at ${JSON.stringify(p)}`);
    seen.add(p);
    const r = Object.hasOwn(doc.snapshots, p) ? doc.snapshots[p] : undefined;
    if (!r) throw new CorruptStoreError(METADATA_FILE, `missing parent ${JSON.stringify(p)}`);
    out.push(r.id);
    p = r.parent;
  }
  return out;
}

export class MetadataStore {
  readonly path: string;

  constructor(readonly root: string) {
    this.path = join(root, METADATA_FILE);
  }

  /** A consistent snapshot of the document (the file is only ever replaced by rename). */
  async read(): Promise<MetadataDocument> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyDocument();
      throw e;
    }
    let doc: MetadataDocument;
    try {
      doc = JSON.parse(text) as MetadataDocument;
    } catch (e) {
      throw new CorruptStoreError(this.path, `not valid JSON: ${(e as Error).message}`);
    }
    if (doc.version !== 1 || typeof doc.nextId !== 'number' || typeof doc.snapshots !== 'object' || doc.snapshots === null) {
      throw new CorruptStoreError(this.path, 'not a version 1 snapshot metadata document');
    }
    return doc;
  }

  /**
   * Runs `fn` on a fresh copy of the document while holding the lock. `fn` calls `save()` once
   * its on-disk side (directory renames) is in place; nothing is written unless it does, so a
   * thrown error leaves the previous document untouched.
   */
  async update<T>(fn: (tx: Transaction, save: () => Promise<void>) => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return withLock(
      this.path,
      async () => {
        const tx = new Transaction(await this.read());
        const save = (): Promise<void> => writeFileAtomic(this.path, JSON.stringify(tx.doc, null, 1) + '\n');
        return fn(tx, save);
      },
      opts,
    );
  }
}
