/**
 * The analysis of an image, as `analyze --format json` prints it (the schema is
 * docs/analyze-report.schema.json; `schemaVersion` changes when a field changes meaning).
 */
import type { WasteRecord } from './filesystem.js';
import type { DiveFigures } from './dive.js';

export const REPORT_SCHEMA_VERSION = 1;

export interface LayerReport {
  index: number;
  /** The blob's digest and size as stored or served (compressed or not). */
  digest: string;
  blobSize: number;
  /** The history step that made the layer (`created_by`); '' when the image has no history for it. */
  createdBy: string;
  created?: string;
  comment?: string;
  /** Content bytes of the layer's regular files (what `docker history` and dive call its size). */
  size: number;
  entries: number;
  /** Paths other than directories that the layer adds, writes over, and removes from the layers below. */
  added: number;
  modified: number;
  removed: number;
  /** Bytes of this layer's content that the image cannot show (deleted or overwritten later) or holds twice. */
  wastedBytes: number;
  /** Bytes of the layers below that this layer deleted or overwrote. */
  hiddenBytes: number;
}

export interface AnalysisReport {
  schemaVersion: number;
  /** What was analysed: the reference or id as given, and where it was read from. */
  image: string;
  source: 'store' | 'registry';
  manifestDigest: string;
  /** The image id (config digest). */
  id: string;
  layers: LayerReport[];
  /** Σ of the layers' sizes. */
  sizeBytes: number;
  /** Σ of the layers' blob sizes. */
  blobBytes: number;
  /** Bytes of the final file system's regular files. */
  finalBytes: number;
  wastedBytes: number;
  /** wastedBytes as a percentage of sizeBytes. */
  wastedPercent: number;
  waste: { deletedBytes: number; overwrittenBytes: number; duplicateBytes: number };
  /** The largest wasters first (at most the number asked for). */
  largestWasters: WasteRecord[];
  /** dive's figures for the same image (see src/analyze/dive.ts). */
  dive: Omit<DiveFigures, 'inefficiencies'> & { inefficientPaths: number; largestInefficiencies: DiveFigures['inefficiencies'] };
}
