/**
 * The analysis of small crafted images (tars made by test/helpers/tar.ts, gzip-compressed for one
 * layer), with every expected figure derived by hand: ours (deleted, overwritten, duplicate
 * content; added / modified / removed counts) and dive's efficiency score and wasted bytes,
 * following dive's definition (wagoodman/dive dive/filetree/efficiency.go, dive/image/analysis.go).
 */
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { compressorFor } from '../../src/compress/compress.js';
import { tar } from '../helpers/tar.js';
import { analyzeImage, layerHistory } from '../../src/analyze/analyze.js';
import type { AnalysisSource } from '../../src/analyze/source.js';
import { digestOf } from '../../src/image/digest.js';
import { MediaTypes } from '../../src/image/media-types.js';
import type { Descriptor, History } from '../../src/image/types.js';

function source(blobs: Buffer[], history?: History[]): AnalysisSource {
  const layers: Descriptor[] = blobs.map((b) => ({ mediaType: MediaTypes.OCI_LAYER, digest: digestOf(b), size: b.length }));
  const byDigest = new Map(blobs.map((b, i) => [layers[i]!.digest, b]));
  return {
    image: 'crafted',
    source: 'store',
    manifestDigest: 'sha256:' + '0'.repeat(64),
    manifest: { schemaVersion: 2, mediaType: MediaTypes.OCI_MANIFEST, config: { mediaType: MediaTypes.OCI_CONFIG, digest: digestOf('{}'), size: 2 }, layers },
    config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, ...(history ? { history } : {}) },
    openLayer: async (d) => Readable.from([byDigest.get(d.digest)!]),
    close: async () => {},
  };
}

const bytes = (n: number, c: string): Buffer => Buffer.alloc(n, c);

describe('analyze: a crafted three-layer image', async () => {
  const l0 = await tar()
    .dir('bin').file('bin/tool', bytes(1000, 't'))
    .dir('big').file('big/blob', bytes(5000, 'b')).file('big/small', bytes(50, 's'))
    .dir('etc').file('etc/conf', bytes(100, 'a'))
    .dir('keep').file('keep/x', bytes(30, 'x'))
    .buffer();
  const l1 = await tar()
    .dir('etc').file('etc/conf', bytes(200, 'c')) // overwrites 100 bytes of layer 0
    .dir('dup').file('dup/tool-copy', bytes(1000, 't')) // the same content as /bin/tool
    .whiteout('big') // deletes a directory of 5050 bytes
    .buffer();
  const l2 = await tar()
    .dir('keep').opaque('keep').file('keep/y', bytes(40, 'y')) // hides keep/x
    .dir('etc').whiteout('etc/conf') // deletes the 200 bytes of layer 1
    .buffer();
  const history: History[] = [
    { created_by: 'ADD rootfs / # buildkit' },
    { created_by: 'ENV A=1', empty_layer: true },
    { created_by: 'RUN /bin/sh -c step1' },
    { created_by: 'LABEL x=y', empty_layer: true },
    { created_by: 'RUN /bin/sh -c step2' },
    { created_by: 'CMD ["sh"]', empty_layer: true },
  ];
  // The middle layer gzip-compressed: the compression is told by its magic bytes.
  const { report, fs } = await analyzeImage(source([l0, gzipSync(l1), l2], history));

  it('maps each layer to its step, skipping the empty_layer entries', () => {
    expect(report.layers.map((l) => l.createdBy)).toEqual(['ADD rootfs / # buildkit', 'RUN /bin/sh -c step1', 'RUN /bin/sh -c step2']);
  });

  it('sizes each layer and counts what it adds, modifies and removes', () => {
    expect(report.layers.map((l) => l.size)).toEqual([6180, 1200, 40]);
    expect(report.layers.map((l) => [l.added, l.modified, l.removed])).toEqual([[5, 0, 0], [1, 1, 2], [1, 0, 2]]);
    expect(report.layers.map((l) => l.hiddenBytes)).toEqual([0, 5150, 230]);
  });

  it('finds deleted, overwritten and duplicate content, and whose bytes they are', () => {
    expect(report.waste).toEqual({ deletedBytes: 5050 + 30 + 200, overwrittenBytes: 100, duplicateBytes: 1000 });
    expect(report.wastedBytes).toBe(6380);
    expect(report.sizeBytes).toBe(7420);
    expect(report.finalBytes).toBe(2040);
    expect(report.wastedPercent).toBeCloseTo((6380 / 7420) * 100, 10);
    expect(report.layers.map((l) => l.wastedBytes)).toEqual([5050 + 100 + 30, 200 + 1000, 0]);
    expect(report.largestWasters.map((w) => [w.kind, w.path, w.bytes, w.files, w.layer, w.by ?? w.of])).toEqual([
      ['deleted', '/big', 5050, 2, 0, 1],
      ['duplicate', '/dup/tool-copy', 1000, 1, 1, '/bin/tool'],
      ['deleted', '/etc/conf', 200, 1, 1, 2],
      ['overwritten', '/etc/conf', 100, 1, 0, 1],
      ['deleted', '/keep/x', 30, 1, 0, 2],
    ]);
  });

  it('keeps the final file system, each file with the layer that last wrote it', () => {
    const files: string[] = [];
    fs.walkFiles((p, n) => n.kind !== 'dir' && files.push(`${p}@${n.layer}`));
    expect(files).toEqual(['/bin/tool@0', '/dup/tool-copy@1', '/keep/y@2']);
  });

  it("gives dive's efficiency and wasted bytes, derived by hand from dive's definition", () => {
    // Leaves sized per path (layer 0's files; in layer 1 /big's whiteout sizes the directory
    // below, 0 + 5000 + 50, then /dup/tool-copy and /etc/conf; in layer 2 /etc/conf's whiteout of
    // a file sizes 0, and keep/y: the opaque marker is not in dive's trees):
    //   /bin/tool 1000 | /big/blob 5000 | /big/small 50 | /keep/x 30 | /big 5050 | /dup/tool-copy 1000
    //   /etc/conf 100 + 200 + 0 (min 0) | /keep/y 40
    // minimum Σ = 1000 + 5000 + 50 + 30 + 5050 + 1000 + 0 + 40 = 12170
    // all Σ     = 1000 + 5000 + 50 + 30 + 5050 + 1000 + 300 + 40 = 12470
    expect(report.dive.efficiency).toBe(12170 / 12470);
    // Only /etc/conf is met twice or more: its 300 bytes; user size = layers 1 and 2 = 1240.
    expect(report.dive.wastedBytes).toBe(300);
    expect(report.dive.userSizeBytes).toBe(1240);
    expect(report.dive.userWastedFraction).toBe(300 / 1240);
    expect(report.dive.largestInefficiencies).toEqual([{ path: '/etc/conf', count: 3, bytes: 300 }]);
  });
});

describe("analyze: dive's own test vectors and quirks", () => {
  it("dive's TestEfficiency (parents implied by names, no directory entries): score 0.75, /etc/nginx/nginx.conf 7000", async () => {
    const l0 = await tar().file('etc/nginx/nginx.conf', bytes(2000, 'a')).file('etc/nginx/public', bytes(3000, 'b')).buffer();
    const l1 = await tar().file('etc/nginx/nginx.conf', bytes(5000, 'c')).file('etc/athing', bytes(10000, 'd')).buffer();
    const l2 = await tar().whiteout('etc/nginx').buffer();
    const { report } = await analyzeImage(source([l0, l1, l2]));
    // /etc/nginx was only implied by names, so dive sees no directory there and sizes its whiteout 0.
    expect(report.dive.efficiency).toBe(0.75);
    expect(report.dive.largestInefficiencies).toEqual([{ path: '/etc/nginx/nginx.conf', count: 2, bytes: 7000 }]);
    // Ours: the 2000 overwritten bytes, then the directory's 5000 + 3000 deleted.
    expect(report.waste).toEqual({ deletedBytes: 8000, overwrittenBytes: 2000, duplicateBytes: 0 });
  });

  it("dive's TestEfficiency_ScratchImage: one empty file, score 1", async () => {
    const { report } = await analyzeImage(source([await tar().file('nothing', '').buffer(), await tar().buffer(), await tar().buffer()]));
    expect(report.dive.efficiency).toBe(1);
    expect(report.dive.inefficientPaths).toBe(0);
    expect(report.wastedBytes).toBe(0);
  });

  it('a whiteout naming nothing below ends that layer in dive (its record keeps -1), not in ours', async () => {
    const l0 = await tar().file('a', bytes(10, 'a')).buffer();
    // Sorted by name: .wh.ghost (nothing below: dive stops), then z, which dive never sizes.
    const l1 = await tar().whiteout('ghost').file('z', bytes(90, 'z')).file('a', bytes(20, 'b')).buffer();
    const { report } = await analyzeImage(source([l0, l1]));
    // dive: /a 10 (layer 0); layer 1 visits .wh.ghost first and stops: /ghost {min -1, Σ 0}.
    // minimum Σ = 10 - 1 = 9; all Σ = 10.
    expect(report.dive.efficiency).toBe(0.9);
    expect(report.dive.wastedBytes).toBe(0);
    expect(report.layers[1]!.added).toBe(1);
    expect(report.waste.overwrittenBytes).toBe(10);
  });

  it('reads a zstd layer as it reads an uncompressed one; links and symlinks carry no content', async () => {
    const plain = await tar().dir('d').file('d/f', bytes(3000, 'f')).hardlink('d/h', 'd/f').symlink('d/s', 'f').file('d/g', bytes(3000, 'f')).buffer();
    const chunks: Buffer[] = [];
    for await (const c of Readable.from([plain]).pipe(compressorFor('zstd')!)) chunks.push(c as Buffer);
    const zstd = Buffer.concat(chunks);
    expect(zstd.readUInt32LE(0)).toBe(0xfd2fb528); // a zstd frame
    const a = (await analyzeImage(source([plain]))).report;
    const b = (await analyzeImage(source([zstd]))).report;
    expect(b.layers.map((l) => [l.size, l.entries, l.added])).toEqual([[6000, 5, 4]]);
    expect([b.waste, b.dive.efficiency]).toEqual([a.waste, a.dive.efficiency]);
    // d/g is a copy of d/f's content; the hard link d/h is not.
    expect(b.largestWasters.map((w) => [w.kind, w.path, w.of])).toEqual([['duplicate', '/d/g', '/d/f']]);
  });

  it('layerHistory takes the non-empty steps in order and leaves layers without one undefined', () => {
    expect(layerHistory([{ created_by: 'a', empty_layer: true }, { created_by: 'b' }], 2).map((h) => h?.created_by)).toEqual(['b', undefined]);
    expect(layerHistory(undefined, 1)).toEqual([undefined]);
  });
});
