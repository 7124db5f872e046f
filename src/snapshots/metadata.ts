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
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
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
  /**
   * A random token written first in the file at each save: a reader that holds the document it
   * names needs only the file's first bytes to know it is still current (MetadataStore.read).
   */
  gen?: string;
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

/** The token at the head of a saved document: `{` then `"gen": "<16 hex>"` (see save in update). */
const GEN_HEAD = /^\{\s*"gen":\s*"([0-9a-f]{16})"/;
const HEAD_BYTES = 64;

/** The gen token at the head of the file at `path`, or undefined (none, or no file). */
function headGen(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const b = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, b, 0, HEAD_BYTES, 0);
    return GEN_HEAD.exec(b.toString('latin1', 0, n))?.[1];
  } finally {
    closeSync(fd);
  }
}

export class MetadataStore {
  readonly path: string;
  /**
   * The document as this store last read or saved it, under its gen token: every step reads the
   * document several times, which for a store of a thousand snapshots (~0.5 MB) cost ~1.5 ms of
   * read and parse each; a token read of the file's head costs a few microseconds. Callers treat
   * what read() returns as read-only, and a transaction changes a copy, so the cached document is
   * only ever one that is on disk.
   */
  private cached: { gen: string; doc: MetadataDocument } | undefined;

  constructor(readonly root: string) {
    this.path = join(root, METADATA_FILE);
  }

  /** A consistent snapshot of the document (the file is only ever replaced by rename); read-only. */
  async read(): Promise<MetadataDocument> {
    // The file is only replaced by rename, never written in place: its head names its content.
    if (this.cached && headGen(this.path) === this.cached.gen) return this.cached.doc;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.cached = undefined;
        return emptyDocument();
      }
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
    this.cached = typeof doc.gen === 'string' && /^[0-9a-f]{16}$/.test(doc.gen) ? { gen: doc.gen, doc } : undefined;
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
        // A copy of the document and its map of snapshots (records are replaced, never changed in
        // place), so the one read() hands out stays what is on disk whatever the transaction does.
        const cur = await this.read();
        const tx = new Transaction({ ...cur, snapshots: { ...cur.snapshots } });
        const save = async (): Promise<void> => {
          const gen = randomBytes(8).toString('hex');
          // The token first, where a reader's head read finds it.
          const { gen: _old, ...rest } = tx.doc;
          const doc: MetadataDocument = { gen, ...rest };
          await writeFileAtomic(this.path, JSON.stringify(doc, null, 1) + '\n');
          // (Its own map: a change the transaction makes after saving is not on disk.)
          this.cached = { gen, doc: { ...doc, snapshots: { ...doc.snapshots } } };
        };
        return fn(tx, save);
      },
      opts,
    );
  }
}
