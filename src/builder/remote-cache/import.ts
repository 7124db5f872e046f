/**
 * The caches a build imports (`--cache-from`): read once at the start (manifest and config only),
 * asked for a step's key after the local cache missed, and asked for a layer's blob only when a
 * later step needs the content (an unpack) or the image is written. Nothing read from a cache is
 * trusted: a hit's blob must be there (HEAD) or the step is built; a fetched blob is verified and
 * checked as a pulled layer, decompressed, and must give the diffID the entry claims. A fault is
 * a warning, never a failed build; one found after the step was taken as a hit (a blob whose bytes
 * are wrong) is a BrokenCacheEntryError, on which the build starts its stages again without it.
 */
import { ImgbuildError } from '../../errors.js';
import type { Digest } from '../../image/digest.js';
import { isDockerType, layerCompression } from '../../image/media-types.js';
import type { Descriptor } from '../../image/types.js';
import type { OciStore } from '../../store/store.js';
import { ensureCompressed } from '../../store/layers.js';
import type { CacheRecord } from '../cache.js';
import type { BuildReporter } from '../dispatch/stage.js';
import type { CacheSource } from './backend.js';
import type { CacheMountEntry, CacheStep } from './format.js';

/** A step found in an imported cache: what the local cache's record holds. */
export type RemoteHit = Omit<CacheRecord, 'v'>;

/** A layer taken from a cache as a hit turned out unusable when its content was needed. */
export class BrokenCacheEntryError extends ImgbuildError {
  constructor(readonly layer: Digest) {
    super('UNAVAILABLE', `no imported cache could give the layer ${layer} (see the warning above); the build starts its stages again without it`);
    this.name = 'BrokenCacheEntryError';
  }
}

/** Whether `e`, or an error it wraps, is a BrokenCacheEntryError. */
export function isBrokenCacheEntry(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) if (x instanceof BrokenCacheEntryError) return true;
  return false;
}

interface Candidate {
  source: CacheSource;
  /** Position of the source among the imports (a blob is judged per source). */
  at: number;
  step: CacheStep;
  /** The blob as the cache holds it (compressed). */
  blob: Descriptor;
}

const mib = (n: number): string => `${(n / 1048576).toFixed(n < 10485760 ? 2 : 1)} MiB`;
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class ImportedCache {
  private readonly byKey = new Map<Digest, Candidate[]>();
  /** Candidates by the digest of the layer as the image names it (the uncompressed tar). */
  private readonly byLayer = new Map<Digest, Candidate[]>();
  /** Candidates by the digest of the cache's blob. */
  private readonly byBlob = new Map<Digest, Candidate[]>();
  /** `<source>|<blob digest>` found missing or wrong: never used again in this build. */
  private readonly bad = new Set<string>();
  private readonly present = new Map<string, Promise<boolean>>();
  private readonly fetching = new Map<Digest, Promise<void>>();
  /** Cache-mount entries of every import, with the source each came from. */
  readonly mounts: { source: CacheSource; entry: CacheMountEntry; blob: Descriptor }[] = [];

  private constructor(
    readonly sources: CacheSource[],
    private readonly store: OciStore,
    private readonly reporter: BuildReporter,
    private readonly warn: (line: string) => void,
    private readonly signal?: AbortSignal,
  ) {}

  /** Reads every source (concurrently); one that cannot be read is one warning line and no entries. */
  static async open(sources: CacheSource[], store: OciStore, o: { reporter: BuildReporter; warn: (line: string) => void; signal?: AbortSignal }): Promise<ImportedCache> {
    const c = new ImportedCache(sources, store, o.reporter, o.warn, o.signal);
    const docs = await Promise.all(sources.map(async (s) => {
      const task = o.reporter.task(`importing cache manifest from ${s.name}`);
      try {
        const doc = await s.read();
        task.done();
        return doc;
      } catch (e) {
        if (o.signal?.aborted) throw e;
        task.log(`WARNING: cannot use the cache ${s.name}: ${message(e)}`);
        task.done();
        return undefined;
      }
    }));
    docs.forEach((doc, at) => {
      if (!doc) return;
      const source = sources[at]!;
      for (const step of doc.config.steps) {
        const cand: Candidate = { source, at, step, blob: doc.manifest.layers[step.layer]! };
        for (const [map, k] of [[c.byKey, step.key], [c.byLayer, step.image.digest], [c.byBlob, cand.blob.digest]] as const) {
          const list = map.get(k);
          if (list) list.push(cand);
          else map.set(k, [cand]);
        }
      }
      for (const entry of doc.config.mounts ?? []) c.mounts.push({ source, entry, blob: doc.manifest.layers[entry.layer]! });
    });
    return c;
  }

  private usable(list: Candidate[] | undefined): Candidate[] {
    return (list ?? []).filter((c) => !this.bad.has(`${c.at}|${c.blob.digest}`));
  }

  private markBad(c: Candidate, why: string, warn = this.warn): void {
    const id = `${c.at}|${c.blob.digest}`;
    if (this.bad.has(id)) return;
    this.bad.add(id);
    warn(`WARNING: cache ${c.source.name}: blob ${c.blob.digest}: ${why}; not using it`);
  }

  private has(c: Candidate): Promise<boolean> {
    const id = `${c.at}|${c.blob.digest}`;
    let p = this.present.get(id);
    if (!p) {
      p = c.source.has(c.blob).catch((e: unknown) => {
        if (this.signal?.aborted) throw e;
        return false;
      });
      this.present.set(id, p);
    }
    return p;
  }

  /** The step `key` from the first import whose blob is there; `warn` gets a line per entry that is not. */
  async get(key: Digest, warn: (line: string) => void): Promise<RemoteHit | undefined> {
    for (const c of this.usable(this.byKey.get(key))) {
      // A layer the store has already (an earlier import, another stage) needs no HEAD.
      if ((await this.store.info(c.step.image.digest))?.size === c.step.image.size || (await this.has(c))) return { diffId: c.step.diffId, layer: c.step.image, chainId: c.step.chainId, history: c.step.history };
      const id = `${c.at}|${c.blob.digest}`;
      if (!this.bad.has(id)) {
        this.bad.add(id);
        warn(`WARNING: cache ${c.source.name}: the step's blob ${c.blob.digest} is missing; building the step`);
      }
    }
    return undefined;
  }

  /** A blob of an import the store may lack, with the layer it gives (for an export that reuses it). */
  blobOf(layer: Digest): Descriptor | undefined {
    return this.usable(this.byLayer.get(layer))[0]?.blob;
  }

  /**
   * Brings the layers into the store that imported hits named and the store lacks: fetched,
   * decompressed into the tar the image names (both conversions remembered for later pushes).
   */
  async fetchLayers(layers: readonly Descriptor[]): Promise<void> {
    await Promise.all(layers.map(async (l) => {
      if (!this.byLayer.has(l.digest)) return; // not an import's: the store has it, or it is not ours to find
      if ((await this.store.info(l.digest))?.size === l.size && (await this.store.protect([l.digest])).length === 0) return;
      let p = this.fetching.get(l.digest);
      if (!p) {
        p = this.fetchLayer(l);
        this.fetching.set(l.digest, p);
        p.catch(() => this.fetching.delete(l.digest));
      }
      await p;
    }));
  }

  private async fetchLayer(l: Descriptor): Promise<void> {
    for (const c of this.usable(this.byLayer.get(l.digest))) {
      const task = this.reporter.task(`fetching cached layer ${l.digest.slice(0, 19)} (${mib(c.blob.size)}) from ${c.source.name}`);
      try {
        await c.source.fetch(this.store, c.blob);
        const tar = layerCompression(c.blob.mediaType) === 'none'
          ? c.blob
          : await ensureCompressed(this.store, c.blob, 'none', { format: isDockerType(l.mediaType) ? 'docker' : 'oci', ...(this.signal ? { signal: this.signal } : {}) });
        if (tar.digest !== l.digest || tar.size !== l.size) throw new Error(`holds the layer ${tar.digest} (${tar.size} bytes), not ${l.digest}`);
        if ((await this.store.protect([l.digest, c.blob.digest])).length === 0) return task.done();
        throw new Error('was removed from the store meanwhile');
      } catch (e) {
        if (this.signal?.aborted) {
          task.fail(message(e));
          throw e;
        }
        this.markBad(c, message(e), (line) => task.log(line));
        task.done();
      }
    }
    throw new BrokenCacheEntryError(l.digest);
  }

  /** Brings a blob of an import (as the cache holds it) into the store. */
  async fetchBlob(d: Descriptor): Promise<void> {
    if ((await this.store.info(d.digest))?.size === d.size) return;
    for (const c of this.usable(this.byBlob.get(d.digest))) {
      try {
        return await c.source.fetch(this.store, c.blob);
      } catch (e) {
        if (this.signal?.aborted) throw e;
        this.markBad(c, message(e));
      }
    }
    throw new BrokenCacheEntryError(d.digest);
  }
}
