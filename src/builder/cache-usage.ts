/**
 * The build cache as `system df` and `system prune` see it: the step records (`cache/build/steps`,
 * each naming the layer a step made) and the RUN cache mounts (`cache/mounts`). A record's layer
 * counts as build cache while no image names it; once one does, its bytes are the image's.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../image/digest.js';
import { diskUsage } from '../snapshots/records.js';
import { cacheMountsDir, stepCacheDir } from '../store/paths.js';
import type { OciStore } from '../store/store.js';

export interface BuildCacheEntry {
  id: string;
  type: 'regular' | 'exec.cachemount';
  size: number;
  /** Its layer is part of an image too (counted there). */
  shared: boolean;
  created?: string;
  lastUsed?: string;
}

export interface BuildCacheUsage {
  entries: BuildCacheEntry[];
  /** Bytes only the cache holds (what pruning it gives back). */
  size: number;
}

/** Lists the build cache of `store`; `inImages` are the blobs images reach (shared, not counted). */
export async function buildCacheUsage(store: OciStore, inImages: ReadonlySet<Digest>, o: { signal?: AbortSignal } = {}): Promise<BuildCacheUsage> {
  const entries: BuildCacheEntry[] = [];
  const counted = new Set<string>();
  let size = 0;
  const steps = stepCacheDir(store.root);
  for (const n of await readdir(steps).catch(() => [] as string[])) {
    if (!n.endsWith('.json')) continue;
    const p = join(steps, n);
    let layer: { digest: Digest; size: number } | undefined;
    try {
      layer = (JSON.parse(await readFile(p, 'utf8')) as { layer?: { digest: Digest; size: number } }).layer;
    } catch {
      continue;
    }
    const st = await stat(p).catch(() => undefined);
    if (!layer || !(await store.info(layer.digest))) continue; // its layer is gone: nothing cached
    const shared = inImages.has(layer.digest);
    entries.push({ id: n.slice(0, -5), type: 'regular', size: layer.size, shared, ...(st ? { created: st.birthtime.toISOString(), lastUsed: st.mtime.toISOString() } : {}) });
    if (!shared && !counted.has(layer.digest)) {
      counted.add(layer.digest);
      size += layer.size;
    }
  }
  const mounts = cacheMountsDir(store.root);
  for (const n of await readdir(mounts).catch(() => [] as string[])) {
    const p = join(mounts, n);
    const st = await stat(p).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const u = await diskUsage(p, o.signal).catch(() => ({ size: 0 }));
    entries.push({ id: n, type: 'exec.cachemount', size: u.size, shared: false, created: st.birthtime.toISOString(), lastUsed: st.mtime.toISOString() });
    size += u.size;
  }
  return { entries, size };
}

/**
 * Removes the step records (their layers go with the store's next gc unless an image names them)
 * and, with `all`, the RUN cache mounts too. Returns the ids removed.
 */
export async function pruneBuildCache(store: OciStore, o: { all?: boolean } = {}): Promise<string[]> {
  const removed: string[] = [];
  const steps = stepCacheDir(store.root);
  for (const n of await readdir(steps).catch(() => [] as string[])) {
    if (!n.endsWith('.json')) continue;
    await rm(join(steps, n), { force: true });
    removed.push(n.slice(0, -5));
  }
  if (o.all) {
    const mounts = cacheMountsDir(store.root);
    for (const n of await readdir(mounts).catch(() => [] as string[])) {
      const p = join(mounts, n);
      // A mount in use by a build holds its lock file (`<dir>.lock`): that one stays.
      if (n.endsWith('.lock') || (await stat(`${p}.lock`).then(() => true, () => false))) continue;
      if (!(await stat(p).then((s) => s.isDirectory(), () => false))) continue;
      await rm(p, { recursive: true, force: true });
      removed.push(n);
    }
  }
  return removed;
}
