import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fromUncompressed, layerFromStore, streamLayer, NotComputedError } from '../../src/layers/layer.js';
import { writeLayerBlob } from '../../src/layers/compress.js';
import { OciStore } from '../../src/layers/store.js';
import { MediaTypes } from '../../src/layers/media-types.js';
import type { Digest } from '../../src/layers/digest.js';
import { makeTmp } from '../helpers/tmp.js';
import { tar } from '../helpers/tar.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let tarBytes: Buffer;
beforeAll(async () => {
  tmp = await makeTmp('imgbuild-layer-');
  tarBytes = await tar().dir('etc').file('etc/hosts', '127.0.0.1 localhost\n'.repeat(5000)).symlink('l', 'etc/hosts').buffer();
});
afterAll(async () => {
  await tmp.cleanup();
});
async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

describe('Layer adapters', () => {
  it('layerFromStore derives the uncompressed stream and diffID of a compressed blob', async () => {
    const store = await OciStore.open(join(tmp.dir, 'store'));
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      const blob = await writeLayerBlob(store, Readable.from([tarBytes]), { compression });
      const l = layerFromStore(store, blob);
      expect(await l.digest()).toBe(blob.digest);
      expect(await l.size()).toBe(blob.size);
      expect(l.mediaType()).toBe(blob.mediaType);
      expect(await l.diffId()).toBe(sha(tarBytes));
      expect((await collect(await l.uncompressed())).equals(tarBytes)).toBe(true);
      expect(sha(await collect(await l.compressed()))).toBe(blob.digest);
      // known diffID from the config is used without reading
      const known = layerFromStore(store, blob, 'sha256:'.padEnd(71, '0') as Digest);
      expect(await known.diffId()).toBe('sha256:'.padEnd(71, '0'));
    }
  });

  it('fromUncompressed computes digest and size that match the bytes it streams', async () => {
    const core = { diffId: async () => sha(tarBytes), mediaType: () => MediaTypes.OCI_LAYER, uncompressed: async () => Readable.from([tarBytes]) };
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      const l = fromUncompressed(core, { compression });
      const bytes = await collect(await l.compressed());
      expect(await l.digest()).toBe(sha(bytes));
      expect(await l.size()).toBe(bytes.length);
      expect(await l.diffId()).toBe(sha(tarBytes));
    }
    expect(fromUncompressed(core).mediaType()).toBe(MediaTypes.OCI_LAYER_GZIP);
    expect(fromUncompressed({ ...core, mediaType: () => MediaTypes.DOCKER_LAYER }, { compression: 'zstd' }).mediaType()).toBe(MediaTypes.DOCKER_LAYER_ZSTD);
  });

  it('streamLayer computes digest, diffID and size only once its stream is consumed', async () => {
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      const l = streamLayer(Readable.from([tarBytes]), { compression });
      await expect(l.digest()).rejects.toBeInstanceOf(NotComputedError);
      const bytes = await collect(await l.compressed());
      expect(await l.digest()).toBe(sha(bytes));
      expect(await l.size()).toBe(bytes.length);
      expect(await l.diffId()).toBe(sha(tarBytes));
      await expect(l.compressed()).rejects.toThrow(/only once/);
    }
  });
});
