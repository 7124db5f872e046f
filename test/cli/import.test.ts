import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import tar from 'tar-stream';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError, REPO_ROOT } from '../helpers/cli.js';
import { validateImage } from '../conformance/validate-image.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { type LoadedImage } from '../../src/image/model.js';
import { openLayerTar } from '../../src/store/layers.js';
import { digestOf } from '../../src/image/digest.js';
import { MediaTypes } from '../../src/image/media-types.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let rootfs: string;
let plainTar: string;
beforeAll(async () => {
  tmp = await makeTmp();
  rootfs = join(tmp.dir, 'rootfs');
  const r = spawnSync('sh', [join(REPO_ROOT, 'scripts', 'busybox-rootfs.sh'), rootfs]);
  expect(r.status).toBe(0);
  plainTar = join(tmp.dir, 'rootfs.tar');
  expect(spawnSync('tar', ['-C', rootfs, '-cf', plainTar, '.']).status).toBe(0);
  expect(spawnSync('gzip', ['-k', plainTar]).status).toBe(0);
  expect(spawnSync('zstd', ['-q', '-k', plainTar]).status).toBe(0);
});
afterAll(async () => tmp.cleanup());

async function withImage<T>(root: string, name: string, fn: (s: OciStore, img: LoadedImage) => Promise<T>): Promise<T> {
  const s = await OciStore.open(root);
  try {
    const img = await findImage(s, name);
    await validateImage(s, img.descriptor);
    return await fn(s, img);
  } finally {
    await s.release();
  }
}

async function entryNames(s: OciStore, img: LoadedImage): Promise<string[]> {
  const names: string[] = [];
  const ex = tar.extract();
  ex.on('entry', (h, st, next) => {
    names.push(h.name);
    st.on('end', next).resume();
  });
  (await openLayerTar(s, img.manifest.layers[0]!)).pipe(ex);
  await new Promise<void>((res, rej) => ex.on('finish', () => res()).on('error', rej));
  return names;
}

describe('imgbuild import', () => {
  it('imports a directory with --change, deterministically, as one uncompressed layer', async () => {
    const root = join(tmp.dir, 'dir-store');
    const args = ['import', '-c', 'ENV PATH=/bin', '-c', 'CMD ["sh"]', '-c', 'LABEL a=b', '-m', 'hello', rootfs, 'bb:dir'];
    const r = await runCli(args, { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const layerDigest = await withImage(root, 'bb:dir', async (s, img) => {
      expect(`${img.manifest.config.digest}\n`).toBe(r.stdout);
      expect(img.config.config).toEqual({ Env: ['PATH=/bin'], Cmd: ['sh'], Labels: { a: 'b' } });
      expect(img.config.history).toEqual([{ created: img.config.created, created_by: '', comment: 'hello' }]);
      expect(img.config.os).toBe('linux');
      expect(img.manifest.layers).toHaveLength(1);
      expect(img.manifest.layers[0]!.mediaType).toBe(MediaTypes.OCI_LAYER);
      const names = await entryNames(s, img);
      expect(names).toContain('bin/busybox');
      expect(names).toContain('etc/passwd');
      return img.manifest.layers[0]!.digest;
    });
    // same directory, same layer
    await runCli(['import', rootfs, 'bb:dir2'], { root });
    await withImage(root, 'bb:dir2', async (_s, img) => expect(img.manifest.layers[0]!.digest).toBe(layerDigest));
  });

  it.each([
    ['rootfs.tar', 'none', MediaTypes.OCI_LAYER],
    ['rootfs.tar.gz', 'gzip', MediaTypes.OCI_LAYER_GZIP],
    ['rootfs.tar.zst', 'zstd', MediaTypes.OCI_LAYER_ZSTD],
    ['rootfs.tar.gz', 'zstd', MediaTypes.OCI_LAYER_ZSTD],
  ])('imports %s with --compression %s', async (file, compression, mediaType) => {
    const root = join(tmp.dir, `tar-store-${file}-${compression}`);
    const r = await runCli(['import', '--compression', compression, join(tmp.dir, file), 'bb:t'], { root });
    expect(r.code, r.stderr).toBe(0);
    const diffId = digestOf(await readFile(plainTar));
    await withImage(root, 'bb:t', async (s, img) => {
      expect(img.manifest.layers[0]!.mediaType).toBe(mediaType);
      expect(img.config.rootfs.diff_ids).toEqual([diffId]);
      expect(await entryNames(s, img)).toContain('./bin/busybox');
    });
  });

  it('imports a tar from stdin, untagged when no name is given', async () => {
    const root = join(tmp.dir, 'stdin-store');
    const r = await runCli(['import', '-'], { root, input: await readFile(join(tmp.dir, 'rootfs.tar.gz')) });
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    await withImage(root, id, async (_s, img) => {
      expect(img.ref).toBeUndefined();
      expect(img.config.history?.[0]?.comment).toBe('imported from -');
    });
    const images = await runCli(['images'], { root });
    expect(images.stdout).toMatch(/\n<none>\s+<none>\s+[0-9a-f]{12}\s/);
  });

  it('fails with one line for bad input', async () => {
    const root = join(tmp.dir, 'err-store');
    expectOneLineError(await runCli(['import', join(tmp.dir, 'missing.tar'), 'x'], { root }), /NOT_FOUND: import source not found: .*missing\.tar$/);
    expectOneLineError(await runCli(['import', '--compression', 'lz4', rootfs, 'x'], { root }), /unsupported --compression "lz4"/);
    expectOneLineError(await runCli(['import', '-c', 'RUN true', rootfs, 'x'], { root }), /unsupported change instruction "RUN"/);
    expectOneLineError(await runCli(['import', rootfs, 'X:Y'], { root }), /invalid reference format "X:Y"/);
    expectOneLineError(await runCli(['import', join(REPO_ROOT, 'package.json'), 'x'], { root }), /package\.json is not a tar archive \(bad header checksum/);
  });
});

describe('scripts/base-image.sh', () => {
  it('imports busybox:latest into --root or $IMGBUILD_ROOT', async () => {
    const a = join(tmp.dir, 'base-a');
    const b = join(tmp.dir, 'base-b');
    const ra = spawnSync('sh', [join(REPO_ROOT, 'scripts', 'base-image.sh'), '--root', a], { encoding: 'utf8' });
    expect(ra.status, ra.stderr).toBe(0);
    const rb = spawnSync('sh', [join(REPO_ROOT, 'scripts', 'base-image.sh'), 'bb:2'], { encoding: 'utf8', env: { ...process.env, IMGBUILD_ROOT: b } });
    expect(rb.status, rb.stderr).toBe(0);
    await withImage(a, 'busybox:latest', async (_s, img) => {
      expect(img.config.config).toEqual({ Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] });
      // same rootfs, same layer, whichever way it was imported
      await withImage(b, 'bb:2', async (_s2, img2) => expect(img2.manifest.layers).toEqual(img.manifest.layers));
      // and the test helper's busybox has that very layer
      const c = join(tmp.dir, 'base-c');
      await ensureBusybox(c);
      await withImage(c, 'busybox', async (_s3, img3) => expect(img3.manifest.layers).toEqual(img.manifest.layers));
    });
  });
});
