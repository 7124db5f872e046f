import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync, rmSync } from 'node:fs';
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { detectCompression, decompress, DEFAULT_GZIP_LEVEL } from '../../src/compress/compress.js';
import { writeLayerBlob, openLayerTar, ensureCompressed } from '../../src/store/layers.js';
import { ParallelGzip } from '../../src/compress/gzip-parallel.js';
import { ParallelZstd, FzstdTransform, spawnZstdDecoder, ZstdError } from '../../src/compress/zstd.js';
import { packDir } from '../../src/tar/pack.js';
import { OciStore } from '../../src/store/store.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { makeTmp } from '../helpers/tmp.js';
import { DigestMismatchError, UnsupportedMediaTypeError } from '../../src/image/errors.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let rootfs: string;
let tarBytes: Buffer;
beforeAll(async () => {
  tmp = await makeTmp('imgbuild-compress-');
  rootfs = join(tmp.dir, 'rootfs');
  execFileSync('sh', [join(import.meta.dirname, '../../scripts/busybox-rootfs.sh'), rootfs]);
  tarBytes = await collect(packDir(rootfs, { mode: 'plain' }));
});
afterAll(async () => {
  await tmp.cleanup();
});

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const run = (cmd: string, args: string[], input?: Buffer) => spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });

/** Mixed compressible/incompressible data of a given size. */
function sample(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let o = 0; o < n; o += 8192) {
    if ((o / 8192) % 3 === 0) randomBytes(Math.min(8192, n - o)).copy(b, o);
    else b.write(`line ${o} of some text that repeats `.repeat(200), o, Math.min(8192, n - o));
  }
  return b;
}

describe('detectCompression', () => {
  it('recognises gzip, zstd (incl. skippable frames) and plain tar', () => {
    expect(detectCompression(zlib.gzipSync('x'))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(detectCompression(Buffer.from([0x50, 0x2a, 0x4d, 0x18]))).toBe('zstd');
    expect(detectCompression(tarBytes.subarray(0, 512))).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
  });
});

describe('parallel compressors', () => {
  it('gzip: many small blocks form one stream that gzip, Node and pigz read', async () => {
    const data = sample(300_000);
    const gz = await collect(Readable.from([data]).pipe(new ParallelGzip({ blockSize: 4096, concurrency: 3 })));
    expect(zlib.gunzipSync(gz).equals(data)).toBe(true);
    const g = run('gzip', ['-dc'], gz);
    expect(g.status).toBe(0);
    expect(g.stdout.equals(data)).toBe(true);
    expect(run('pigz', ['-t'], gz).status).toBe(0);
    // single member: the trailer carries the length of the whole input
    expect(gz.readUInt32LE(gz.length - 4)).toBe(data.length);
    // ratio stays close to one-shot deflate thanks to the 32 KiB dictionaries
    expect(gz.length).toBeLessThan(zlib.gzipSync(data, { level: 6 }).length * 1.05);
  });

  it('gzip: empty input is a valid empty gzip; output is deterministic', async () => {
    const e = await collect(Readable.from([]).pipe(new ParallelGzip()));
    expect(zlib.gunzipSync(e).length).toBe(0);
    expect(run('gzip', ['-t'], e).status).toBe(0);
    const a = await collect(Readable.from([tarBytes]).pipe(new ParallelGzip()));
    const b = await collect(Readable.from([tarBytes.subarray(0, 1000), tarBytes.subarray(1000)]).pipe(new ParallelGzip()));
    expect(a.equals(b)).toBe(true);
  });

  it('zstd: many frames concatenated; zstd, fzstd and the spawned decoder read them', async () => {
    const data = sample(500_000);
    const zs = await collect(Readable.from([data]).pipe(new ParallelZstd({ blockSize: 65536 })));
    const z = run('zstd', ['-dc'], zs);
    expect(z.status).toBe(0);
    expect(z.stdout.equals(data)).toBe(true);
    expect(run('zstd', ['-tq'], zs).status).toBe(0);
    expect((await collect(Readable.from([zs]).pipe(new FzstdTransform()))).equals(data)).toBe(true);
    expect((await collect(Readable.from([zs]).pipe(spawnZstdDecoder()))).equals(data)).toBe(true);
    const empty = await collect(Readable.from([]).pipe(new ParallelZstd()));
    expect(run('zstd', ['-dc'], empty).stdout.length).toBe(0);
  });

  it('the spawned zstd decoder reports corrupt input as an error', async () => {
    const whole = await collect(Readable.from([sample(100_000)]).pipe(new ParallelZstd()));
    const zs = whole.subarray(0, whole.length - 10); // truncated frame
    await expect(collect(Readable.from([zs]).pipe(spawnZstdDecoder()))).rejects.toBeInstanceOf(ZstdError);
    await expect(collect(Readable.from([zs]).pipe(new FzstdTransform()))).rejects.toBeTruthy();
  });
});

describe('decompress', () => {
  it('auto-detects, and reads multi-member gzip to the end', async () => {
    const data = sample(200_000);
    const multi = Buffer.concat([zlib.gzipSync(data.subarray(0, 70_000)), zlib.gzipSync(data.subarray(70_000))]);
    expect((await collect(decompress(Readable.from([multi])))).equals(data)).toBe(true);
    const zs = run('zstd', ['-c', '-q'], data).stdout;
    expect((await collect(decompress(Readable.from([zs.subarray(0, 3), zs.subarray(3)])))).equals(data)).toBe(true);
    expect((await collect(decompress(Readable.from([data])))).equals(data)).toBe(true);
    expect((await collect(decompress(Readable.from([]))))).toHaveLength(0);
  });

  it('passes errors of the source through', async () => {
    const src = new Readable({ read() { this.destroy(new Error('source broke')); } });
    await expect(collect(decompress(src, 'gzip'))).rejects.toThrow('source broke');
  });
});

describe('writeLayerBlob / openLayerTar / ensureCompressed', () => {
  let store: OciStore;
  beforeAll(async () => {
    store = await OciStore.open(join(tmp.dir, 'store'));
  });

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`${compression}: digest, diffID and size equal a recomputation; external tools agree`, async () => {
      const blob = await writeLayerBlob(store, Readable.from([tarBytes]), { compression });
      const file = readFileSync(store.blobPath(blob.digest));
      expect(blob.digest).toBe(sha(file));
      expect(blob.size).toBe(file.length);
      expect(blob.diffId).toBe(sha(tarBytes));
      expect(blob.uncompressedSize).toBe(tarBytes.length);
      expect(blob.mediaType).toBe(compression === 'none' ? MediaTypes.OCI_LAYER : compression === 'gzip' ? MediaTypes.OCI_LAYER_GZIP : MediaTypes.OCI_LAYER_ZSTD);
      if (compression === 'gzip') {
        expect(run('gzip', ['-t'], file).status).toBe(0);
        expect(sha(run('gzip', ['-dc'], file).stdout)).toBe(blob.diffId);
      }
      if (compression === 'zstd') {
        expect(run('zstd', ['-tq'], file).status).toBe(0);
        expect(sha(run('zstd', ['-dc'], file).stdout)).toBe(blob.diffId);
      }
      expect(sha(await collect(await openLayerTar(store, blob)))).toBe(blob.diffId);
      const tarList = spawnSync('tar', ['-tf', '-'], { input: await collect(await openLayerTar(store, blob)), encoding: 'utf8' });
      expect(tarList.stdout).toContain('bin/busybox');
    });
  }

  it('docker format media types', async () => {
    const blob = await writeLayerBlob(store, Readable.from([tarBytes]), { compression: 'gzip', format: 'docker', level: 1 });
    expect(blob.mediaType).toBe(MediaTypes.DOCKER_LAYER_GZIP);
    expect(zlib.gunzipSync(readFileSync(store.blobPath(blob.digest))).equals(tarBytes)).toBe(true);
  });

  it('openLayerTar fails on a corrupted blob (verified at EOF)', async () => {
    const s2 = await OciStore.open(join(tmp.dir, 'store-corrupt'));
    const blob = await writeLayerBlob(s2, Readable.from([tarBytes]), { compression: 'none' });
    const p = s2.blobPath(blob.digest);
    const b = readFileSync(p);
    b[b.length - 2000] = b[b.length - 2000]! ^ 1;
    rmSync(p, { force: true });
    writeFileSync(p, b);
    await expect(collect(await openLayerTar(s2, blob))).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('writeLayerBlob leaves nothing behind when the source fails', async () => {
    const s3 = await OciStore.open(join(tmp.dir, 'store-fail'));
    const src = Readable.from((async function* () {
      yield tarBytes.subarray(0, 100_000);
      throw new Error('disk on fire');
    })());
    await expect(writeLayerBlob(s3, src, { compression: 'gzip' })).rejects.toThrow('disk on fire');
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(s3.root, 'ingest'))).toEqual([]);
    expect(readdirSync(join(s3.root, 'blobs/sha256'))).toEqual([]);
  });

  it('ensureCompressed converts once, caches, verifies the cached blob exists, and knows the way back', async () => {
    const s4 = await OciStore.open(join(tmp.dir, 'store-ensure'));
    const plain = await writeLayerBlob(s4, Readable.from([tarBytes]), { compression: 'none' });
    const src = { mediaType: plain.mediaType, digest: plain.digest, size: plain.size };
    const gz = await ensureCompressed(s4, src, 'gzip');
    expect(gz.mediaType).toBe(MediaTypes.OCI_LAYER_GZIP);
    expect(zlib.gunzipSync(readFileSync(s4.blobPath(gz.digest))).equals(tarBytes)).toBe(true);
    const cacheFile = join(s4.root, 'cache/compressed', `sha256-${plain.digest.slice(7)}.gzip.json`);
    expect(existsSync(cacheFile)).toBe(true);
    const m1 = statSync(cacheFile).mtimeMs;
    expect(await ensureCompressed(s4, src, 'gzip')).toEqual(gz);
    expect(statSync(cacheFile).mtimeMs).toBe(m1); // served from cache
    expect(await ensureCompressed(s4, gz, 'none')).toEqual(src); // reverse mapping
    expect(await ensureCompressed(s4, src, 'none')).toBe(src); // already in that form
    expect((await ensureCompressed(s4, src, 'gzip', { format: 'docker' })).mediaType).toBe(MediaTypes.DOCKER_LAYER_GZIP);
    // cached blob gone (gc) → converted again
    await s4.delete(gz.digest);
    const again = await ensureCompressed(s4, src, 'gzip');
    expect(again.digest).toBe(gz.digest); // deterministic compression
    expect(existsSync(s4.blobPath(gz.digest))).toBe(true);
    const zs = await ensureCompressed(s4, gz, 'zstd');
    expect(sha(run('zstd', ['-dc'], readFileSync(s4.blobPath(zs.digest))).stdout)).toBe(plain.diffId);
    await expect(ensureCompressed(s4, { ...src, mediaType: 'application/json' }, 'gzip')).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
  });

  it('ensureCompressed honours a level: the default level is 4, another level converts again and is cached as such', async () => {
    const s5 = await OciStore.open(join(tmp.dir, 'store-level'));
    const plain = await writeLayerBlob(s5, Readable.from([tarBytes]), { compression: 'none' });
    const src = { mediaType: plain.mediaType, digest: plain.digest, size: plain.size };
    const def = await ensureCompressed(s5, src, 'gzip');
    expect(def).toEqual(await ensureCompressed(s5, src, 'gzip', { level: DEFAULT_GZIP_LEVEL })); // same level: cached
    expect(DEFAULT_GZIP_LEVEL).toBe(4);
    // the bytes are those of ParallelGzip at the default level
    const expected = await collect(Readable.from([tarBytes]).pipe(new ParallelGzip({ level: DEFAULT_GZIP_LEVEL })));
    expect(readFileSync(s5.blobPath(def.digest)).equals(expected)).toBe(true);
    const l1 = await ensureCompressed(s5, src, 'gzip', { level: 1 });
    const l9 = await ensureCompressed(s5, src, 'gzip', { level: 9 });
    expect(new Set([def.digest, l1.digest, l9.digest]).size).toBe(3);
    expect(l9.size).toBeLessThan(l1.size);
    for (const d of [l1, l9]) expect(zlib.gunzipSync(readFileSync(s5.blobPath(d.digest))).equals(tarBytes)).toBe(true);
    // the cache now remembers level 9; asking without a level reuses it, asking 9 again too
    expect(await ensureCompressed(s5, src, 'gzip')).toEqual(l9);
    expect(await ensureCompressed(s5, src, 'gzip', { level: 9 })).toEqual(l9);
  });

  it('writeLayerBlob with a known diffID does not rehash the tar but reports it', async () => {
    const s6 = await OciStore.open(join(tmp.dir, 'store-known'));
    const blob = await writeLayerBlob(s6, Readable.from([tarBytes]), { compression: 'gzip', diffId: sha(tarBytes) as never, uncompressedSize: tarBytes.length });
    expect(blob.diffId).toBe(sha(tarBytes));
    expect(blob.uncompressedSize).toBe(tarBytes.length);
    expect(sha(zlib.gunzipSync(readFileSync(s6.blobPath(blob.digest))))).toBe(blob.diffId);
  });

  it('converting a stored uncompressed layer whose bytes were altered fails with DigestMismatchError', async () => {
    const s7 = await OciStore.open(join(tmp.dir, 'store-tamper'));
    const plain = await writeLayerBlob(s7, Readable.from([tarBytes]), { compression: 'none' });
    const p = s7.blobPath(plain.digest);
    const bad = Buffer.from(readFileSync(p));
    bad[1000] = bad[1000]! ^ 0xff;
    rmSync(p);
    writeFileSync(p, bad);
    await expect(ensureCompressed(s7, { mediaType: plain.mediaType, digest: plain.digest, size: plain.size }, 'gzip')).rejects.toBeInstanceOf(DigestMismatchError);
    expect(existsSync(join(s7.root, 'cache/compressed', `sha256-${plain.digest.slice(7)}.gzip.json`))).toBe(false);
  });
});

describe('memory stays bounded', () => {
  it('pack + parallel gzip of a 300 MB tree grows RSS by less than 200 MB', async () => {
    const d = join(tmp.dir, 'big');
    mkdirSync(d);
    const chunk = randomBytes(64 * 1024);
    for (let i = 0; i < 30; i++) {
      // 10 MB per file: mostly holes, a random 64 KiB block every MiB (so deflate has real work)
      const fd = openSync(join(d, `f${i}`), 'w');
      for (let mb = 0; mb < 10; mb++) writeSync(fd, chunk, 0, chunk.length, mb * 1024 * 1024);
      writeSync(fd, Buffer.from('end'), 0, 3, 10 * 1024 * 1024 - 3);
      closeSync(fd);
    }
    const s5 = await OciStore.open(join(tmp.dir, 'store-mem'));
    global.gc?.();
    const base = process.memoryUsage.rss();
    let peak = base;
    const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 20);
    try {
      const blob = await writeLayerBlob(s5, packDir(d, { mode: 'plain' }), { compression: 'gzip' });
      expect(blob.uncompressedSize).toBeGreaterThan(300 * 1024 * 1024);
      const z = await writeLayerBlob(s5, packDir(d, { mode: 'plain' }), { compression: 'zstd' });
      expect(z.diffId).toBe(blob.diffId);
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage.rss());
    console.log(`RSS growth during 2 x pack+compress of 300 MB: ${((peak - base) / 1048576).toFixed(0)} MB`);
    expect((peak - base) / 1024 / 1024).toBeLessThan(200);
  });
});
