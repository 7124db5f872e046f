/**
 * Where an analysed image comes from: its manifest, its config and a way to read each layer blob
 * as a stream. `storeSource` reads the store; the registry's is analyze/remote-source.ts (loaded
 * only when needed: the registry client costs every command that evaluates it).
 */
import type { Readable } from 'node:stream';
import type { Descriptor, ImageConfig, Manifest } from '../image/types.js';
import type { Platform } from '../image/types.js';
import type { OciStore } from '../store/store.js';
import { findImage } from '../store/images.js';

export interface AnalysisSource {
  /** The image as the user named it. */
  image: string;
  source: 'store' | 'registry';
  manifestDigest: string;
  manifest: Manifest;
  config: ImageConfig;
  /** The layer blob's bytes as stored or served (compressed or not), verified against its digest at its end. */
  openLayer(layer: Descriptor, o: { signal?: AbortSignal }): Promise<Readable>;
  close(): Promise<void>;
}

/** An image of the store (by reference, id or id prefix, as every command finds one). */
export async function storeSource(store: OciStore, input: string, o: { platform?: Platform } = {}): Promise<AnalysisSource> {
  const img = await findImage(store, input, o.platform ? { platform: o.platform } : {});
  return {
    image: input,
    source: 'store',
    manifestDigest: img.descriptor.digest,
    manifest: img.manifest,
    config: img.config,
    openLayer: async (layer) => store.reader(layer),
    close: async () => {},
  };
}
