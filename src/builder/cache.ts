/**
 * The build cache: a step (RUN, COPY, ADD) is reused when its key is unchanged. The key is the
 * blake3 of the canonical JSON of everything that decides the step's result: the parent chain id,
 * the expanded instruction, the args/env/user/workdir/shell in scope, and for COPY/ADD the content
 * digest of the sources. Secrets never enter a key (only their ids do, like BuildKit).
 *
 * A record maps the key to the layer the step produced: {diffId, layer descriptor, chain id,
 * history}. Records are small JSON files under `<root>/cache/build/steps/`, read without touching
 * any snapshot or layer content, so a fully cached rebuild does no mounts and reads no files.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stepCacheDir } from '../store/paths.js';
import { createHasher, hexOf, isDigest, type Digest } from '../image/digest.js';
import type { Descriptor, History } from '../image/types.js';
import type { OciStore } from '../store/store.js';
import { writeFileAtomic } from '../atomic.js';

export interface CacheRecord {
  /** Format version of the record. */
  v: 1;
  diffId: Digest;
  layer: Descriptor;
  /** Chain id of the stage after this step (the committed snapshot's key). */
  chainId: Digest;
  history: History;
}

/** JSON with object keys sorted at every level, so equal values always give equal bytes. */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/** What a step's cache key is made of. */
export interface StepKeyParts {
  /** Chain id of the parent layers, or a marker for an empty (scratch) parent. */
  parent: string;
  /** The expanded instruction (kind plus its effective fields; never secret values). */
  instruction: unknown;
  /** Environment the step sees (ENV plus ARGs in scope), in order. */
  env: string[];
  user?: string;
  workdir?: string;
  shell?: string[];
  platform?: string;
  /** Content digest of copied sources (COPY/ADD), or of the source stage. */
  content?: string;
}

export function stepKey(parts: StepKeyParts): Digest {
  const h = createHasher('blake3');
  h.update(Buffer.from(canonicalJson({ v: 1, ...parts })));
  return h.digest();
}

export class BuildCache {
  private constructor(
    private readonly dir: string,
    private readonly store: OciStore,
  ) {}

  /** Opens the cache of the store at `store.root` (`<root>/cache/build/steps`). */
  static async open(store: OciStore): Promise<BuildCache> {
    const dir = stepCacheDir(store.root);
    await mkdir(dir, { recursive: true });
    return new BuildCache(dir, store);
  }

  private path(key: Digest): string {
    return join(this.dir, `${hexOf(key)}.json`);
  }

  /** The record for `key` when it exists and its layer blob is still in the store. */
  async get(key: Digest): Promise<CacheRecord | undefined> {
    let rec: CacheRecord;
    try {
      rec = JSON.parse(await readFile(this.path(key), 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
    if (rec?.v !== 1 || !isDigest(rec.diffId) || !isDigest(rec.chainId) || !rec.layer || !isDigest(rec.layer.digest)) return undefined;
    const info = await this.store.info(rec.layer.digest);
    if (!info || info.size !== rec.layer.size) return undefined; // the layer was garbage-collected
    // Leased, so a concurrent prune cannot take the layer before the image names it.
    if ((await this.store.protect([rec.layer.digest])).length > 0) return undefined;
    return rec;
  }

  async put(key: Digest, rec: Omit<CacheRecord, 'v'>): Promise<void> {
    await writeFileAtomic(this.path(key), JSON.stringify({ v: 1, ...rec }));
  }
}
