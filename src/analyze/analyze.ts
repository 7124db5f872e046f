/**
 * `analyze`'s work: each layer streamed once (decompressed as its compression's magic bytes say,
 * its tar read entry by entry, file contents hashed and dropped), applied to the path metadata of
 * the file system the layers build, and fed to dive's efficiency computation. What is kept is per
 * path, never content, so memory follows the number of paths, not the image's size.
 */
import { throwIfAborted } from '../errors.js';
import { decompress } from '../compress/compress.js';
import { readLayerEntries } from './entries.js';
import { FileSystem, type WasteRecord } from './filesystem.js';
import { DiveEfficiency } from './dive.js';
import { REPORT_SCHEMA_VERSION, type AnalysisReport, type LayerReport } from './report.js';
import type { AnalysisSource } from './source.js';
import type { History } from '../image/types.js';

export interface AnalyzeOptions {
  /** How many of the largest wasters the report lists (default 10). */
  top?: number;
  signal?: AbortSignal;
  /** Told when a layer is done (for progress). */
  onLayer?: (index: number, of: number) => void;
}

export interface Analysis {
  report: AnalysisReport;
  /** The final file system's path metadata (for the HTML report's treemap). */
  fs: FileSystem;
}

/** The history entry of each layer: the n-th entry that is not an `empty_layer` for the n-th layer. */
export function layerHistory(history: readonly History[] | undefined, layers: number): (History | undefined)[] {
  const steps = (history ?? []).filter((h) => !h.empty_layer);
  return Array.from({ length: layers }, (_, i) => steps[i]);
}

export async function analyzeImage(src: AnalysisSource, o: AnalyzeOptions = {}): Promise<Analysis> {
  const fs = new FileSystem();
  const dive = new DiveEfficiency();
  const history = layerHistory(src.config.history, src.manifest.layers.length);
  const layers: LayerReport[] = [];
  for (const [index, desc] of src.manifest.layers.entries()) {
    throwIfAborted(o.signal);
    const raw = await src.openLayer(desc, o.signal ? { signal: o.signal } : {});
    const entries = await readLayerEntries(decompress(raw, undefined, o.signal ? { signal: o.signal } : {}), o.signal ? { signal: o.signal } : {});
    const changes = fs.apply(entries, index);
    const size = dive.addLayer(entries);
    const h = history[index];
    layers.push({
      index,
      digest: desc.digest,
      blobSize: desc.size,
      createdBy: h?.created_by ?? '',
      ...(h?.created ? { created: h.created } : {}),
      ...(h?.comment ? { comment: h.comment } : {}),
      size,
      entries: entries.length,
      added: changes.added,
      modified: changes.modified,
      removed: changes.removed,
      wastedBytes: 0,
      hiddenBytes: changes.hiddenBytes,
    });
    o.onLayer?.(index, src.manifest.layers.length);
  }
  fs.findDuplicates();
  const waste = { deletedBytes: 0, overwrittenBytes: 0, duplicateBytes: 0 };
  for (const w of fs.waste) {
    layers[w.layer]!.wastedBytes += w.bytes;
    waste[`${w.kind}Bytes`] += w.bytes;
  }
  let finalBytes = 0;
  fs.walkFiles((_, n) => {
    if (n.kind === 'file') finalBytes += n.size;
  });
  const sizeBytes = layers.reduce((s, l) => s + l.size, 0);
  const wastedBytes = waste.deletedBytes + waste.overwrittenBytes + waste.duplicateBytes;
  const top = o.top ?? 10;
  const d = dive.figures();
  const report: AnalysisReport = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    image: src.image,
    source: src.source,
    manifestDigest: src.manifestDigest,
    id: src.manifest.config.digest,
    layers,
    sizeBytes,
    blobBytes: layers.reduce((s, l) => s + l.blobSize, 0),
    finalBytes,
    wastedBytes,
    wastedPercent: sizeBytes === 0 ? 0 : (wastedBytes / sizeBytes) * 100,
    waste,
    largestWasters: largest(fs.waste, top),
    dive: {
      efficiency: d.efficiency,
      wastedBytes: d.wastedBytes,
      userSizeBytes: d.userSizeBytes,
      userWastedFraction: d.userWastedFraction,
      inefficientPaths: d.inefficiencies.length,
      largestInefficiencies: d.inefficiencies.slice(0, top),
    },
  };
  return { report, fs };
}

/** The `n` largest records, largest first (ties by path, so the order is stable). */
function largest(records: readonly WasteRecord[], n: number): WasteRecord[] {
  return [...records].sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : a.path > b.path ? 1 : a.layer - b.layer)).slice(0, n);
}
