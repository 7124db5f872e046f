/**
 * `imgbuild build --push`: a build from busybox with a RUN step, pushed to every -t tag on the
 * real distribution registry, pulls back into a fresh root with the same manifest digest and
 * validates (digests, sizes, diffIDs, schemas). Privileged (RUN uses the sandbox), like all e2e.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { validateImage } from '../conformance/validate-image.js';

const tmp = await makeTmp('imgbuild-e2e-build-push-');
const root = join(tmp.dir, 'root');
let reg: TestRegistry;

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
  await ensureBusybox(root);
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

async function context(name: string, dockerfile: string): Promise<string> {
  const dir = join(tmp.dir, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

it('build --push pushes every tag; a fresh root pulls the same digest and the image validates', async () => {
  const ctx = await context('ctx', 'FROM busybox\nRUN echo pushed > /hello && mkdir /d && echo x > /d/f\n');
  const a = `${reg.host}/bp/x:1`;
  const b = `${reg.host}/bp/y:2`;
  const r = await runCli(['build', '--progress=plain', '--push', '-t', a, '-t', b, ctx], { root });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/); // stdout carries only the image id
  expect(r.stderr).toContain(`Pushing ${a}`);
  expect(r.stderr).toContain(`Pushing ${b}`);

  const built = await findImage(await OciStore.open(root), a);
  expect(built.config.rootfs.diff_ids.length).toBe(2);
  for (const [i, ref] of [a, b].entries()) {
    const fresh = join(tmp.dir, `pulled-${i}`);
    const p = await runCli(['pull', '-q', ref], { root: fresh });
    expect(p.code, p.stderr).toBe(0);
    const store = await OciStore.open(fresh);
    const img = await findImage(store, ref);
    // same config (image id); the pushed manifest names gzip layers of the built content
    expect(img.config.rootfs.diff_ids).toEqual(built.config.rootfs.diff_ids);
    expect(`${img.manifest.config.digest}\n`).toBe(r.stdout);
    expect(img.manifest.layers.every((l) => l.mediaType === MediaTypes.OCI_LAYER_GZIP)).toBe(true);
    await validateImage(store, img.descriptor);
    await store.release();
  }
  // both tags name one manifest on the registry
  const m1 = await fetch(`${reg.url}/v2/bp/x/manifests/1`, { headers: { accept: MediaTypes.OCI_MANIFEST } });
  const m2 = await fetch(`${reg.url}/v2/bp/y/manifests/2`, { headers: { accept: MediaTypes.OCI_MANIFEST } });
  expect(m1.headers.get('docker-content-digest')).toBe(m2.headers.get('docker-content-digest'));
}, 120_000);

it('push --compression-level converts at that level (another layer digest, same diffIDs); out-of-range levels are refused', async () => {
  const ctx = await context('ctx3', 'FROM busybox\nRUN echo level > /level\n');
  const ref = `${reg.host}/bp/level:1`;
  const b = await runCli(['build', '-q', '--push', '-t', ref, ctx], { root });
  expect(b.code, b.stderr).toBe(0);
  const bad = await runCli(['push', '--compression-level', '12', ref, `${reg.host}/bp/level:9`], { root });
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/--compression-level for gzip must be an integer from 1 to 9, not "12"/);
  const p9 = await runCli(['push', '-q', '--compression-level', '9', ref, `${reg.host}/bp/level:9`], { root });
  expect(p9.code, p9.stderr).toBe(0);
  const manifest = async (tag: string) =>
    (await (await fetch(`${reg.url}/v2/bp/level/manifests/${tag}`, { headers: { accept: MediaTypes.OCI_MANIFEST } })).json()) as { layers: { digest: string; size: number }[]; config: { digest: string } };
  const [m4, m9] = [await manifest('1'), await manifest('9')];
  expect(m9.config.digest).toBe(m4.config.digest);
  expect(m9.layers.at(-1)!.digest).not.toBe(m4.layers.at(-1)!.digest);
  const fresh = join(tmp.dir, 'pulled-level');
  expect((await runCli(['pull', '-q', `${reg.host}/bp/level:9`], { root: fresh })).code).toBe(0);
  const store = await OciStore.open(fresh);
  await validateImage(store, (await findImage(store, `${reg.host}/bp/level:9`)).descriptor);
  await store.release();
  const noPush = await runCli(['build', '--compression-level', '3', ctx], { root });
  expect(noPush.stderr).toMatch(/--compression-level only applies with --push/);
}, 120_000);

it('--push without -t is refused before building', async () => {
  const ctx = await context('ctx2', 'FROM busybox\nRUN true\n');
  const r = await runCli(['build', '--push', ctx], { root });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/--push needs at least one -t/);
});
