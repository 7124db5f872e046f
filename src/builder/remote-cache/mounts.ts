/**
 * RUN cache mounts that travel with a build cache (`--cache-to ...,cache-mounts=true`): the content
 * of each `RUN --mount=type=cache` directory a build named becomes a layer (a deterministic tar of
 * the directory, compressed as the cache export is) keyed by the mount's id (`id=`, else its
 * target, as BuildKit keys them; the sharing mode plays no part), and a build importing such a
 * cache fills an empty or absent mount from it before the first step that runs with it.
 *
 * The local content always wins: a mount that holds anything (a warm machine, a `from=` seed) is
 * never replaced, as a Docker user's warm `/root/.cache` would not be. The restore is confined as
 * any layer is (`tar/apply.ts`: nothing lands outside the directory, owners kept where the process
 * may set them, device nodes refused) and made whole or not at all: the content is unpacked in the
 * build's scratch dir and renamed over the empty directory, so a failed or refused restore leaves
 * the mount empty and the step runs cold, with a warning, never a failed build.
 */
import { chmod, chown, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { OciStore } from '../../store/store.js';
import { writeLayerBlob, type LayerBlob } from '../../store/layers.js';
import { packDir } from '../../tar/pack.js';
import { applyLayer } from '../../tar/apply.js';
import { decompress } from '../../compress/compress.js';
import { layerCompression, type Compression } from '../../image/media-types.js';
import type { Descriptor } from '../../image/types.js';
import type { Digest } from '../../image/digest.js';
import { throwIfAborted } from '../../errors.js';
import { withLock } from '../../atomic.js';
import type { CacheMountSeam } from '../dispatch/seams.js';
import type { PhaseClock } from '../../phases.js';
import { cacheMountDir } from '../dispatch/mounts.js';

/** Whether `dir` is absent or holds nothing. */
export async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

/**
 * Packs the cache mount directory `dir` into a layer blob in the store (plain mode: its entries as
 * they are, `.wh.` names included, owners numeric, mtimes in seconds); undefined when `dir` is
 * absent or empty, which is nothing worth exporting.
 */
export async function packCacheMount(
  store: OciStore, dir: string, o: { compression: Compression; level?: number; signal?: AbortSignal },
): Promise<LayerBlob | undefined> {
  throwIfAborted(o.signal);
  if (await isEmptyOrAbsent(dir)) return undefined;
  return writeLayerBlob(store, packDir(dir, { mode: 'plain', ...(o.signal ? { signal: o.signal } : {}) }), {
    compression: o.compression,
    ...(o.level !== undefined ? { level: o.level } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

export type RestoreResult = 'restored' | 'kept-local';

/**
 * Fills the cache mount `dir` from `blob` (the layer's bytes as stored, compressed as its media
 * type says) when `dir` is absent or empty; a `dir` holding anything is kept ('kept-local'). The
 * content is unpacked into a directory of `scratch` (same filesystem as the store: the build's
 * scratch dir is under `<root>/cache/build/tmp`) with `dir`'s mode and owner (or `owner` for an
 * absent one), then renamed into place; rename(2) replaces only an empty directory, so a build that
 * filled the mount meanwhile keeps its content. Throws when the layer is refused or unreadable;
 * nothing is left behind then.
 */
export async function restoreCacheMount(
  blob: Readable, layer: Pick<Descriptor, 'mediaType'>, dir: string,
  o: { scratch: string; owner?: { mode: number; uid: number; gid: number }; signal?: AbortSignal },
): Promise<RestoreResult> {
  if (!(await isEmptyOrAbsent(dir))) {
    blob.destroy();
    return 'kept-local';
  }
  const st = await stat(dir).catch(() => undefined);
  const mode = st ? st.mode & 0o7777 : o.owner?.mode ?? 0o755;
  const tmp = await mkdtemp(join(o.scratch, 'cache-mount-'));
  try {
    await chmod(tmp, mode);
    await chown(tmp, st?.uid ?? o.owner?.uid ?? 0, st?.gid ?? o.owner?.gid ?? 0);
    const c = layerCompression(layer.mediaType);
    const tar = c === 'none' ? blob : decompress(blob, c, o.signal ? { signal: o.signal } : {});
    await applyLayer(tmp, tar, { mode: 'flat', plain: true, ...(o.signal ? { signal: o.signal } : {}) });
    try {
      await rename(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'kept-local';
      if (code !== 'ENOENT') throw e;
      // The mounts dir itself is missing on a fresh store.
      await mkdir(join(dir, '..'), { recursive: true });
      await rename(tmp, dir);
    }
    return 'restored';
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

/** A cache mount's content as a cache manifest holds it. */
export interface CacheMountLayer {
  /** The mount's id: its `id=`, else its target (an absolute path). */
  id: string;
  /** The blob as stored or pushed (compressed as the cache export is). */
  layer: Descriptor;
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
}

/** Brings an imported cache mount's blob into the store (from a registry or a cache dir), verified. */
export type FetchBlob = (layer: Descriptor) => Promise<void>;

export interface SharedCacheMountsOptions {
  store: OciStore;
  /** The build's scratch dir. */
  scratch: string;
  /** The cache mounts of the imported caches (the first cache naming an id wins). */
  imported?: { layers: CacheMountLayer[]; fetch: FetchBlob }[];
  /** Progress and warnings (a restore that failed: the step runs with an empty mount). */
  say?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * The cache mounts of one build: the ids its RUN steps named (exported at the end) and the
 * imported content restored into empty mounts (dispatch calls `restore` before a step that runs).
 */
export class SharedCacheMounts implements CacheMountSeam {
  private readonly used = new Set<string>();
  private readonly imported = new Map<string, CacheMountLayer & { fetch: FetchBlob }>();
  /** One restore per id, shared by concurrent steps using the mount. */
  private readonly restoring = new Map<string, Promise<void>>();

  constructor(private readonly o: SharedCacheMountsOptions) {
    for (const src of o.imported ?? []) {
      for (const l of src.layers) if (!this.imported.has(l.id)) this.imported.set(l.id, { ...l, fetch: src.fetch });
    }
  }

  use(id: string): void {
    this.used.add(id);
  }

  /** The ids this build's RUN steps named, in the order first named. */
  get ids(): string[] {
    return [...this.used];
  }

  restore(id: string, dir: string, o: { phases?: PhaseClock } = {}): Promise<void> {
    const imp = this.imported.get(id);
    if (!imp) return Promise.resolve();
    let p = this.restoring.get(id);
    if (!p) {
      // The first step with the mount waits for it: its time is that step's 'restore' phase.
      p = o.phases ? o.phases.time('restore', () => this.restoreOne(id, dir, imp)) : this.restoreOne(id, dir, imp);
      this.restoring.set(id, p);
    }
    return p;
  }

  private async restoreOne(id: string, dir: string, imp: CacheMountLayer & { fetch: FetchBlob }): Promise<void> {
    const signal = this.o.signal;
    try {
      if (!(await isEmptyOrAbsent(dir))) {
        this.o.say?.(`cache mount ${id}: the local content is kept (the imported one is not used)`);
        return;
      }
      await imp.fetch(imp.layer);
      // Under the mount's lock, as a `sharing=locked` step of another build holds it: such a step never
      // sees its empty directory replaced under it. The store's reader verifies the digest at the
      // end: bytes that fail it undo the restore.
      await mkdir(join(dir, '..'), { recursive: true });
      const r = await withLock(dir, async () => restoreCacheMount(await this.o.store.reader(imp.layer), imp.layer, dir, { scratch: this.o.scratch, ...(signal ? { signal } : {}) }), signal ? { signal } : {});
      this.o.say?.(r === 'restored' ? `cache mount ${id}: restored from the imported cache (${imp.layer.size} bytes)` : `cache mount ${id}: the local content is kept (the imported one is not used)`);
    } catch (e) {
      throwIfAborted(signal);
      // What a half-made restore wrote went with its scratch dir: the mount is as empty as it was.
      this.o.say?.(`WARNING: cache mount ${id}: not restored, the step runs with an empty mount: ${(e as Error).message}`);
    }
  }

  /**
   * The layers to export for the mounts this build named, each in the store: a non-empty local
   * mount packed (uncompressed: the export compresses it as it does step layers), else the imported
   * layer for it, fetched (a mount this machine never filled because its steps were served from the
   * cache: left out, the next cache written to the same ref would lose it), else nothing. A mount
   * whose imported blob cannot be fetched is left out with a warning.
   */
  async export(root: string): Promise<CacheMountLayer[]> {
    const out: CacheMountLayer[] = [];
    const signal = this.o.signal;
    for (const id of this.used) {
      const dir = cacheMountDir(root, id);
      let packed: LayerBlob | undefined;
      try {
        // Under the mount's lock: a `sharing=locked` step of another build does not change it meanwhile.
        if (!(await isEmptyOrAbsent(dir))) packed = await withLock(dir, () => packCacheMount(this.o.store, dir, { compression: 'none', ...(signal ? { signal } : {}) }), signal ? { signal } : {});
      } catch (e) {
        // A mount another build is writing (a file shrank under the pack) is not worth a failed build.
        throwIfAborted(signal);
        this.o.say?.(`WARNING: cache mount ${id}: cannot be packed, it is not exported: ${(e as Error).message}`);
        continue;
      }
      if (packed) {
        const { diffId, uncompressedSize: _u, ...layer } = packed;
        out.push({ id, layer, diffId });
        continue;
      }
      const imp = this.imported.get(id);
      if (!imp) continue;
      try {
        await imp.fetch(imp.layer);
        out.push({ id, layer: imp.layer, diffId: imp.diffId });
      } catch (e) {
        throwIfAborted(signal);
        this.o.say?.(`WARNING: cache mount ${id}: the imported content cannot be fetched, it is not exported: ${(e as Error).message}`);
      }
    }
    return out;
  }
}

/** What the wiring needs of the imported caches (import.ts ImportedCache): their mount entries and a way to fetch a blob. */
export interface ImportedMounts {
  readonly mounts: readonly {
    source: { fetch(store: OciStore, d: Descriptor): Promise<void> };
    entry: { id: string; diffId: Digest };
    blob: Descriptor;
  }[];
}

/**
 * The build's shared cache mounts, or undefined when no export asks for them and no import holds
 * any (then a RUN does no extra work).
 */
export function openSharedCacheMounts(o: {
  store: OciStore;
  scratch: string;
  imported?: ImportedMounts;
  /** An export has `cache-mounts=true`. */
  exporting: boolean;
  say?: (line: string) => void;
  signal?: AbortSignal;
}): SharedCacheMounts | undefined {
  const mounts = o.imported?.mounts ?? [];
  if (!o.exporting && mounts.length === 0) return undefined;
  // One import entry per source keeps the order of the imports: the first naming an id wins.
  const bySource = new Map<ImportedMounts['mounts'][number]['source'], CacheMountLayer[]>();
  for (const m of mounts) {
    const list = bySource.get(m.source) ?? [];
    list.push({ id: m.entry.id, layer: m.blob, diffId: m.entry.diffId });
    bySource.set(m.source, list);
  }
  return new SharedCacheMounts({
    store: o.store,
    scratch: o.scratch,
    imported: [...bySource].map(([source, layers]) => ({ layers, fetch: (d) => source.fetch(o.store, d) })),
    ...(o.say ? { say: o.say } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}
