/**
 * Build layers kept unwritten (BuildKit writes no layer tar before an export either): a build step
 * hashes its snapshot's upper dir into the layer's diffID without writing the tar, and records
 * here where the same bytes can be packed again — the committed snapshot's directory and the pack
 * options — as `<root>/lazy-layers/<alg>/<hex>.json`, written atomically after the snapshot's
 * commit and before any image names the digest.
 *
 * To the store such a layer is present (info, protect, tag): its reader packs the directory
 * again with the same deterministic tar writer and checks size and digest at EOF, as a stored
 * blob's reader does; `OciStore.materialize` writes it as a blob through the ingest, verified
 * before it is placed, for readers that need a file. A snapshot that no longer packs to the
 * recorded digest is a LazyLayerChangedError and no blob is stored; one that is gone, a
 * LazyLayerGoneError. gc removes records that no image reaches and no lease holds, and snapshot
 * prune keeps the snapshot of every record (snapshots/diff.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { writeFileAtomic } from '../atomic.js';
import { isDigest, type Digest } from '../image/digest.js';
import { packDir, type PackOptions } from '../tar/pack.js';
import { CorruptStoreError, LazyLayerChangedError, LazyLayerGoneError } from './errors.js';
import { lazyLayerPath, lazyLayersDir } from './paths.js';
import { VerifyingStream } from './verify.js';

/** The pack options that made the layer: the same options give the same bytes. */
export type LazyPack = Pick<PackOptions, 'mode' | 'sourceDateEpoch' | 'fromHostIds'>;

export interface LazyLayer {
  v: 1;
  digest: Digest;
  size: number;
  /** The committed snapshot's content directory, relative to the store root. */
  dir: string;
  /** The snapshot (its driver and key), which snapshot prune keeps while this record exists. */
  snapshot: { driver: string; key: string };
  pack: LazyPack;
}

/**
 * The record of `d`, or undefined when there is none. Synchronous: one small read, cheaper than a
 * thread-pool round trip, and `protect` is synchronous too.
 */
export function readLazyLayer(root: string, d: Digest): LazyLayer | undefined {
  const p = lazyLayerPath(root, d);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let rec: LazyLayer;
  try {
    rec = JSON.parse(text) as LazyLayer;
  } catch (e) {
    throw new CorruptStoreError(p, 'not valid JSON', { cause: e });
  }
  if (rec?.v !== 1 || rec.digest !== d || typeof rec.size !== 'number' || typeof rec.dir !== 'string' || !rec.pack || !rec.snapshot) {
    throw new CorruptStoreError(p, 'not a lazy layer record');
  }
  return rec;
}

/** The record of `d` when its snapshot directory is still there (the layer can be made). */
export function availableLazyLayer(root: string, d: Digest): LazyLayer | undefined {
  const rec = readLazyLayer(root, d);
  return rec && existsSync(join(root, rec.dir)) ? rec : undefined;
}

/** Writes the record (atomically: a crash leaves the old one or the new one). */
export async function writeLazyLayer(root: string, rec: LazyLayer): Promise<void> {
  const p = lazyLayerPath(root, rec.digest);
  await mkdir(dirname(p), { recursive: true });
  await writeFileAtomic(p, JSON.stringify(rec));
}

export async function removeLazyLayer(root: string, d: Digest): Promise<void> {
  await rm(lazyLayerPath(root, d), { force: true });
}

/** Every record's digest (records that cannot be read are skipped: gc leaves them be). */
export async function listLazyDigests(root: string): Promise<Digest[]> {
  const out: Digest[] = [];
  const dir = lazyLayersDir(root);
  for (const alg of await readdir(dir).catch(() => [] as string[])) {
    for (const n of await readdir(join(dir, alg)).catch(() => [] as string[])) {
      const d = `${alg}:${n.slice(0, -'.json'.length)}`;
      if (n.endsWith('.json') && isDigest(d)) out.push(d);
    }
  }
  return out;
}

/** Every readable record (snapshot prune keeps their snapshots). */
export async function listLazyLayers(root: string): Promise<LazyLayer[]> {
  const out: LazyLayer[] = [];
  for (const d of await listLazyDigests(root)) {
    try {
      const rec = readLazyLayer(root, d);
      if (rec) out.push(rec);
    } catch {
      // a corrupt record makes nothing; it keeps no snapshot
    }
  }
  return out;
}

/**
 * The layer's tar, packed again from its snapshot and checked at EOF (an error there, before the
 * end, so a consumer that commits on 'end' never commits other bytes).
 */
export function packLazyLayer(root: string, rec: LazyLayer, o: { signal?: AbortSignal } = {}): Readable {
  const dir = join(root, rec.dir);
  if (!existsSync(dir)) throw new LazyLayerGoneError(rec.digest, rec.dir);
  const tar = packDir(dir, { ...rec.pack, ...(o.signal ? { signal: o.signal } : {}) });
  // pipeline() passes a pack error on, stops the pack when the reader goes away, and keeps a
  // listener on the check: a consumer that stopped listening (a push that failed elsewhere)
  // must not turn its late error into an uncaught one.
  const check = new VerifyingStream(rec.digest, rec.size, (actual, bytes) =>
    new LazyLayerChangedError(rec.digest, rec.dir, actual === undefined ? `more than the ${rec.size} bytes recorded` : `it packs to ${actual}, ${bytes} bytes`));
  return pipeline(tar, check, () => {});
}
