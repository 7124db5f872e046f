/**
 * checkLayerTar / LayerCheck: the rules applyLayer enforces, found without writing anything — on
 * the same hostile fixtures, with the same errors — and the streaming check's behaviour on
 * compressed, chunked, corrupt and non-tar input.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { applyLayer } from '../../src/tar/apply.js';
import { LayerCheck, LayerRefusedError, checkLayerBuffer, checkLayerFile, checkLayerTar } from '../../src/tar/check.js';
import { InvalidWhiteoutError, UnsafePathError } from '../../src/tar/errors.js';
import { LAYER_FIXTURES, REFUSED_FIXTURES } from '../../scripts/make-layer-fixtures.js';
import { makeTmp } from '../helpers/tmp.js';
import { tar } from '../helpers/tar.js';

const FIX = join(import.meta.dirname, '../../fixtures/layers');
const fixture = (name: string): Buffer => readFileSync(join(FIX, `${name}.tar`));
const zstd = (b: Buffer): Buffer => {
  const r = spawnSync('zstd', ['-q', '-c'], { input: b, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
  return r.stdout;
};
const LAYER = 'sha256:1111111111111111111111111111111111111111111111111111111111111111';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-check-');
});
afterEach(async () => tmp.cleanup());

/** Writes `data` into a LayerCheck in `size`-byte chunks, honouring its backpressure. */
async function feed(check: LayerCheck, data: Buffer, size = 3000): Promise<void> {
  for (let o = 0; o < data.length; o += size) {
    if (!check.write(data.subarray(o, o + size))) await new Promise<void>((r) => check.onceDrain(r));
  }
}

describe('checkLayerTar: the same rules as applyLayer', () => {
  for (const [name, entry] of Object.entries(REFUSED_FIXTURES)) {
    it(`${name}: refused with the error applying gives`, async () => {
      const checked = await checkLayerTar(Readable.from([fixture(name)])).catch((e: unknown) => e);
      const root = join(tmp.dir, 'root');
      mkdirSync(root);
      const applied = await applyLayer(root, Readable.from([fixture(name)]), { mode: 'overlay' }).catch((e: unknown) => e);
      expect(checked).toBeInstanceOf(UnsafePathError);
      expect((checked as UnsafePathError).entry).toBe(entry);
      expect((checked as Error).message).toBe((applied as Error).message);
    });
  }

  it('passes what applying accepts: whiteouts, opaque markers, hard links inside, links pointing out, absolute names', async () => {
    for (const [name, mk] of Object.entries(LAYER_FIXTURES)) {
      if (name in REFUSED_FIXTURES) continue;
      await expect(checkLayerTar(Readable.from([await mk().buffer()])), name).resolves.toMatchObject({ entries: expect.any(Number) });
    }
    const abs = await tar().file('/etc/passwd', 'x').hardlink('/etc/p2', '/etc/passwd').symlink('root', '/').buffer();
    await expect(checkLayerTar(Readable.from([abs]))).resolves.toEqual({ entries: 3 });
  });

  it('a whiteout naming nothing is an InvalidWhiteoutError, as when applying', async () => {
    await expect(checkLayerTar(Readable.from([await tar().file('a/.wh.', '').buffer()]))).rejects.toBeInstanceOf(InvalidWhiteoutError);
  });

  it('device nodes pass only when allowed', async () => {
    await expect(checkLayerTar(Readable.from([fixture('device')]), { allowDevices: true })).resolves.toEqual({ entries: 2 });
  });
});

describe('LayerCheck (streaming)', () => {
  for (const c of ['none', 'gzip', 'zstd'] as const) {
    const enc = (b: Buffer): Buffer => (c === 'gzip' ? gzipSync(b) : c === 'zstd' ? zstd(b) : b);
    it(`${c}: refuses a hostile layer fed in small chunks, naming layer and entry`, async () => {
      const check = new LayerCheck(LAYER, c);
      await feed(check, enc(fixture('hardlink-escape')), 7);
      const err = await check.end().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LayerRefusedError);
      expect((err as LayerRefusedError).unsafe).toBe(true);
      expect((err as LayerRefusedError).entry).toBe('h');
      expect((err as Error).message).toBe(`layer ${LAYER} refused: refused tar entry "h": hard link target "../../etc/passwd" leads outside the root`);
      expect((err as LayerRefusedError).code).toBe('INVALID_ARGUMENT');
    });

    it(`${c}: passes a benign layer, also with the compression detected`, async () => {
      const data = enc(await LAYER_FIXTURES['symlink-absolute']!().buffer());
      for (const declared of [c, undefined]) {
        const check = new LayerCheck(LAYER, declared);
        await feed(check, data, 100);
        await expect(check.end()).resolves.toEqual({ entries: 3 });
        expect(check.compression).toBe(c);
      }
    });
  }

  it('reports a hostile entry through onFail before the end, and stops decoding', async () => {
    // the refused entry first, then 8 MB of file data the check need not wait for
    const data = gzipSync(await tar().file('../x', 'x').file('big', randomBytes(8 << 20)).buffer(), { level: 1 });
    const check = new LayerCheck(LAYER, 'gzip');
    let failed: Error | undefined;
    check.onFail((e) => (failed = e));
    for (let o = 0; o < data.length && !failed; o += 16384) {
      if (!check.write(data.subarray(o, o + 16384))) await new Promise<void>((r) => check.onceDrain(r));
      await new Promise((r) => setImmediate(r));
    }
    expect(failed).toBeInstanceOf(LayerRefusedError);
    expect((failed as LayerRefusedError).entry).toBe('../x');
    expect(check.fed).toBeLessThan(data.length / 2);
    await expect(check.end()).rejects.toBe(failed);
  });

  it('asks its writer to wait while the decoder is behind, and lets it go on', async () => {
    const data = gzipSync(await tar().file('noise', randomBytes(12 << 20)).buffer(), { level: 1 });
    const check = new LayerCheck(LAYER, 'gzip');
    let waits = 0;
    for (let o = 0; o < data.length; o += 1 << 20) {
      if (!check.write(data.subarray(o, o + (1 << 20)))) {
        waits++;
        await new Promise<void>((r) => check.onceDrain(r));
      }
    }
    await expect(check.end()).resolves.toEqual({ entries: 1 });
    expect(data.length).toBeGreaterThan(4 << 20); // more than the backlog it holds
    expect(waits).toBeGreaterThan(0);
  });

  it('refuses corrupt or cut compressed data and data that is no tar, saying so', async () => {
    const gz = gzipSync(await tar().file('a', 'x'.repeat(100_000)).buffer());
    const cases: [Buffer, 'gzip' | 'zstd' | 'none' | undefined, RegExp][] = [
      [gz.subarray(0, gz.length >> 1), 'gzip', /refused: gzip data is truncated or corrupt \(unexpected end of file\)$/],
      [Buffer.from('not gzip at all'), 'gzip', /refused: gzip data is truncated or corrupt \(incorrect header check\)$/],
      [zstd(fixture('lower')).subarray(0, 40), 'zstd', /refused: zstd: /],
      [Buffer.from('{"architecture":"amd64","os":"linux"}'), undefined, /refused: invalid tar stream at byte 0: unexpected end of data/],
      [(await tar().file('f', 'x'.repeat(2000)).buffer()).subarray(0, 1000), 'none', /refused: invalid tar stream at byte 1000: unexpected end of data inside an entry body/],
    ];
    for (const [data, c, re] of cases) {
      const err = await checkLayerBuffer(data, LAYER, c).catch((e: unknown) => e);
      expect(err, String(re)).toBeInstanceOf(LayerRefusedError);
      expect((err as LayerRefusedError).unsafe).toBe(false);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('checkLayerFile reads a blob file through the same check', async () => {
    const p = join(tmp.dir, 'blob');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(p, gzipSync(fixture('whiteout-dotdot')));
    const err = await checkLayerFile(p, LAYER, 'gzip').catch((e: unknown) => e);
    expect((err as LayerRefusedError).entry).toBe('a/.wh...');
    writeFileSync(p, gzipSync(fixture('whiteout')));
    await expect(checkLayerFile(p, LAYER, undefined)).resolves.toEqual({ entries: 3 });
    expect(readdirSync(tmp.dir)).toEqual(['blob']);
  });
});
