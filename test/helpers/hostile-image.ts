/**
 * Images with a hostile layer, for the tests that `load` and `pull` refuse them before tagging:
 * `storeImage(root, ref, layers)` writes the layers as they are (no check: the store's own put)
 * under the busybox base layer and tags the image, ready to be saved or pushed raw.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { OciStore } from '../../src/store/store.js';
import { writeImage } from '../../src/store/images.js';
import { type Compression } from '../../src/compress/compress.js';
import { writeLayerBlob } from '../../src/store/layers.js';
import type { Descriptor, ImageConfig } from '../../src/image/types.js';
import { REFUSED_FIXTURES } from '../../scripts/make-layer-fixtures.js';
import { busyboxLayerTar } from './base-image.js';
import { REPO_ROOT } from './cli.js';

/**
 * The layer fixtures (fixtures/layers/<name>.tar) that `load` and `pull` refuse, and the entry each
 * is refused for: the refused ones but `device`, whose node they accept where the process may make
 * device nodes (as root here), as Docker does.
 */
export const HOSTILE: Record<string, string> = Object.fromEntries(Object.entries(REFUSED_FIXTURES).filter(([name]) => name !== 'device'));

export function fixtureTar(name: string): Buffer {
  return readFileSync(join(REPO_ROOT, 'fixtures', 'layers', `${name}.tar`));
}

export interface StoredImage {
  manifest: Descriptor;
  /** The stored layers, bottom first (the busybox base first when `base`). */
  layers: Descriptor[];
}

/**
 * Stores an image of the given layer tars (compressed as asked) and tags it `ref`; with `base`
 * the busybox layer goes below them, so a refused image also brings a good layer along.
 */
export async function storeImage(
  root: string,
  ref: string,
  tars: Buffer[],
  o: { compression?: Compression; base?: boolean } = {},
): Promise<StoredImage> {
  const store = await OciStore.open(root);
  try {
    const all = o.base ? [await busyboxLayerTar(), ...tars] : tars;
    const layers: Descriptor[] = [];
    const diffIds = [];
    for (const t of all) {
      const b = await writeLayerBlob(store, Readable.from([t]), { compression: o.compression ?? 'gzip' });
      layers.push({ mediaType: b.mediaType, digest: b.digest, size: b.size });
      diffIds.push(b.diffId);
    }
    const config: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: { Cmd: ['sh'] } };
    const manifest = await writeImage(store, config, layers);
    await store.tag(ref, manifest);
    return { manifest, layers };
  } finally {
    await store.release();
  }
}
