/**
 * `imgbuild pull` of hostile images (the refused layer fixtures under a good busybox layer, pushed
 * raw to a real registry by imgbuild's registry client or by skopeo from an OCI layout): refused
 * at once with one line naming the layer and the tar entry, with nothing tagged, no blob placed and
 * the refused layer's download deleted. What applying accepts still pulls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { HOSTILE, fixtureTar, storeImage, type StoredImage } from '../helpers/hostile-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { writeOciLayout } from '../../src/archive/archive.js';
import { pushImage } from '../../src/registry/push.js';
import { RegistrySession } from '../../src/registry/transport.js';
import type { Compression } from '../../src/compress/compress.js';
import { hexOf, parseDigest } from '../../src/image/digest.js';

const tmp = await makeTmp('imgbuild-e2e-hostile-');
let reg: TestRegistry;
const src = join(tmp.dir, 'src');
const images = new Map<string, StoredImage>();
let n = 0;

const reEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

async function push(name: string, tars: Buffer[], compression: Compression = 'gzip'): Promise<string> {
  const ref = `${reg.host}/hostile/${name}:1`;
  images.set(name, await storeImage(src, ref, tars, { base: true, compression }));
  const store = await OciStore.open(src);
  const session = new RegistrySession({});
  try {
    await pushImage(store, ref, ref, { session, compression }); // as stored: no conversion
  } finally {
    await session.close();
    await store.release();
  }
  return ref;
}

/** A new, opened (empty) store root. */
async function emptyRoot(): Promise<string> {
  const root = join(tmp.dir, `dst-${++n}`);
  await (await OciStore.open(root)).release();
  return root;
}

async function storeState(root: string): Promise<{ blobs: string[]; images: string[] }> {
  const store = await OciStore.open(root);
  try {
    const blobs = (await readdir(join(root, 'blobs', 'sha256')).catch(() => [] as string[])).sort();
    return { blobs, images: (await store.list()).map((e) => e.ref ?? e.descriptor.digest) };
  } finally {
    await store.release();
  }
}

/** Pulls `ref` into a new store and expects the refusal of `layer` for `entry`, leaving the store as it was. */
async function expectRefused(ref: string, layer: string, entry: string, root?: string): Promise<string> {
  const dst = root ?? (await emptyRoot());
  const before = await storeState(dst);
  const r = await runCli(['pull', ref], { root: dst });
  expectOneLineError(r, new RegExp(`^imgbuild: INVALID_ARGUMENT: layer ${layer} refused: refused tar entry ${reEscape(JSON.stringify(entry))}: .+$`));
  expect(await storeState(dst)).toEqual(before);
  const ingest = await readdir(join(dst, 'ingest')).catch(() => [] as string[]);
  expect(ingest.filter((f) => f.includes(layer.slice('sha256:'.length)))).toEqual([]);
  return dst;
}

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
  for (const name of Object.keys(HOSTILE)) await push(name, [fixtureTar(name)]);
  await push('zstd', [fixtureTar('hardlink-escape')], 'zstd');
  await push('plain', [fixtureTar('name-escape')], 'none');
  await push('device', [fixtureTar('device')]);
  await push('tricky', ['symlink-absolute', 'symlink-escape', 'whiteout', 'opaque', 'hardlink'].map(fixtureTar));
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

describe('pull refuses a hostile image before tagging it', () => {
  for (const [name, entry] of Object.entries(HOSTILE)) {
    it(`${name}: one line naming the layer and the entry; store as it was`, async () => {
      await expectRefused(`${reg.host}/hostile/${name}:1`, images.get(name)!.layers[1]!.digest, entry);
    });
  }

  it('zstd and uncompressed layers are checked as well', async () => {
    await expectRefused(`${reg.host}/hostile/zstd:1`, images.get('zstd')!.layers[1]!.digest, HOSTILE['hardlink-escape']!);
    await expectRefused(`${reg.host}/hostile/plain:1`, images.get('plain')!.layers[1]!.digest, HOSTILE['name-escape']!);
  });

  it('an image pushed by skopeo from an OCI layout is refused the same way', async () => {
    const layout = join(tmp.dir, 'layout');
    const store = await OciStore.open(src);
    try {
      const img = await findImage(store, `${reg.host}/hostile/pax-escape:1`);
      await writeOciLayout(store, [{ image: img, ref: 'docker.io/library/evil:skopeo' }], layout, { refName: 'tag' });
    } finally {
      await store.release();
    }
    const cp = spawnSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:skopeo`, `docker://${reg.host}/hostile/by-skopeo:1`], { encoding: 'utf8' });
    expect(cp.stderr).toBe('');
    expect(cp.status).toBe(0);
    await expectRefused(`${reg.host}/hostile/by-skopeo:1`, images.get('pax-escape')!.layers[1]!.digest, HOSTILE['pax-escape']!);
  });

  it('a complete download left by a dead process is checked from the file, and deleted when refused', async () => {
    const root = await emptyRoot();
    const layer = parseDigest(images.get('name-escape')!.layers[1]!.digest);
    await mkdir(join(root, 'ingest'), { recursive: true });
    // pid 4194304 is above Linux's pid_max: never alive, so the next pull adopts the file
    const planted = `4194304-00000000-remote-sha256-${hexOf(layer)}`;
    await copyFile(join(src, 'blobs', 'sha256', hexOf(layer)), join(root, 'ingest', planted));
    await expectRefused(`${reg.host}/hostile/name-escape:1`, layer, HOSTILE['name-escape']!, root);
  });

  it('hostile bytes in place of a good layer are a digest mismatch, not a refusal of the image', async () => {
    const proxy = await startFaultProxy(reg.url);
    try {
      const good = images.get('tricky')!.layers[1]!;
      const evil = await readFile(join(src, 'blobs', 'sha256', hexOf(parseDigest(images.get('name-escape')!.layers[1]!.digest))));
      proxy.rule = (r) => (r.method === 'GET' && r.url.endsWith(`/blobs/${good.digest}`) ? { kind: 'respond', status: 200, headers: { 'content-length': String(evil.length) }, body: evil } : undefined);
      const root = await emptyRoot();
      const before = await storeState(root);
      const r = await runCli(['pull', `${proxy.host}/hostile/tricky:1`], { root });
      expectOneLineError(r, new RegExp(`^imgbuild: FAILED_PRECONDITION: (downloaded blob digest mismatch: expected ${good.digest}|size mismatch for ${good.digest})`));
      expect(await storeState(root)).toEqual(before);
    } finally {
      await proxy.stop();
    }
  });

  it('what applying accepts pulls, also into a store that refused a hostile image', async () => {
    const root = await expectRefused(`${reg.host}/hostile/whiteout-dotdot:1`, images.get('whiteout-dotdot')!.layers[1]!.digest, HOSTILE['whiteout-dotdot']!);
    const r = await runCli(['pull', '-q', `${reg.host}/hostile/tricky:1`], { root });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${reg.host}/hostile/tricky:1\n`);
    expect((await storeState(root)).images).toEqual([`${reg.host}/hostile/tricky:1`]);
  });

  it('a device node pulls where the process may make it (root), as with Docker', async () => {
    const root = await emptyRoot();
    const r = await runCli(['pull', '-q', `${reg.host}/hostile/device:1`], { root });
    expect(r.stderr).toBe('');
    expect((await storeState(root)).images).toEqual([`${reg.host}/hostile/device:1`]);
  });
});
