/**
 * `--cache-to`: after the image is stored, the steps of the build (those of the image for
 * `mode=min`, every stage's for `mode=max`) are written as a cache manifest (format.ts). A step's
 * layer goes out in the asked compression, converted once (`ensureCompressed` remembers it); a
 * layer that was a hit in an imported cache and never needed here is reused as that cache holds
 * it when the compression agrees (mounted or found by the registry, fetched only when it must be
 * uploaded), else fetched and converted.
 */
import { digestOf, type Digest } from '../../image/digest.js';
import { layerCompression, MediaTypes } from '../../image/media-types.js';
import type { Descriptor } from '../../image/types.js';
import type { StepLogEntry } from '../dispatch/seams.js';
import type { OciStore } from '../../store/store.js';
import { ensureCompressed } from '../../store/layers.js';
import type { CacheTarget } from './backend.js';
import { CACHE_CONFIG_TYPE, encodeCache, LayerList, type CacheMountEntry, type CacheStep } from './format.js';
import type { ImportedCache } from './import.js';
import type { CacheExport } from './options.js';


/** A cache mount's content to export: a layer in the store and what its entry says besides. */
export interface MountExport {
  id: string;
  layer: Descriptor;
  diffId: Digest;
  extra?: Record<string, unknown>;
}

export interface ExportInput {
  steps: readonly StepLogEntry[];
  /** Chain ids of the image built (what `mode=min` keeps). */
  imageChains: ReadonlySet<Digest>;
  imported?: ImportedCache;
  mounts?: readonly MountExport[];
  signal?: AbortSignal;
}

/** The steps an export writes: by mode, each key once (the first, in build order). */
export function stepsFor(mode: CacheExport['mode'], input: Pick<ExportInput, 'steps' | 'imageChains'>): StepLogEntry[] {
  const seen = new Set<Digest>();
  return input.steps.filter((s) => (mode === 'max' || input.imageChains.has(s.chainId)) && !seen.has(s.key) && seen.add(s.key));
}

export async function exportCache(store: OciStore, exp: CacheExport, target: CacheTarget, input: ExportInput): Promise<void> {
  const signal = input.signal ? { signal: input.signal } : {};
  const level = exp.compressionLevel !== undefined ? { level: exp.compressionLevel } : {};
  const imported = input.imported;
  const blobOf = async (layer: Descriptor): Promise<Descriptor> => {
    if (!(await store.info(layer.digest))) {
      const there = imported?.blobOf(layer.digest);
      if (there && layerCompression(there.mediaType) === exp.compression) return there;
      await imported?.fetchLayers([layer]);
    }
    return ensureCompressed(store, layer, exp.compression, { format: 'oci', ...level, ...signal });
  };
  const list = new LayerList();
  const steps: CacheStep[] = [];
  for (const s of stepsFor(exp.mode, input)) {
    const blob = await blobOf(s.layer);
    steps.push({ key: s.key, parent: s.parent, chainId: s.chainId, diffId: s.diffId, layer: list.add(blob), image: stripped(s.layer), history: s.history });
  }
  const mounts: CacheMountEntry[] = [];
  for (const m of input.mounts ?? []) mounts.push({ ...m.extra, id: m.id, layer: list.add(await blobOf(m.layer)), diffId: m.diffId });
  const { configBytes, manifest } = encodeCache({ schemaVersion: 1, steps, ...(mounts.length ? { mounts } : {}) }, list.layers);
  const config = await store.put(configBytes, CACHE_CONFIG_TYPE);
  const raw = Buffer.from(JSON.stringify(manifest));
  const mountFrom = (imported?.sources ?? []).filter((s) => s.repository && s.repository.registry === target.registry).map((s) => s.repository!.repository);
  await target.write(store, {
    blobs: list.layers,
    configBytes,
    config,
    manifest: raw,
    manifestDescriptor: { mediaType: MediaTypes.OCI_MANIFEST, digest: digestOf(raw), size: raw.length },
    ensureLocal: async (d) => {
      if (!(await store.info(d.digest))) await imported?.fetchBlob(d);
    },
    mountFrom: [...new Set(mountFrom)],
    ...signal,
  });
}

function stripped(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}
