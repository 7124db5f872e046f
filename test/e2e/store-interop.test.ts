/**
 * Images imgbuild writes are read by the reference tools, and images they write are read by
 * imgbuild: oci-image-tool validates our layouts, skopeo copies from our OCI layouts and
 * docker-archives, podman (private root, vfs) loads and runs our archives, and our `load` reads
 * what skopeo and podman save.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdir, readFile } from 'node:fs/promises';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { validateImage } from '../conformance/validate-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { imageId } from '../../src/image/model.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
let ids: Record<string, { id: string; manifest: string }> = {};

function sh(cmd: string, args: string[], input?: Buffer): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 120_000 });
  if (r.error) throw r.error;
  return r;
}
function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function podman(p: string): string[] {
  return ['--root', join(p, 'root'), '--runroot', join(p, 'run'), '--tmpdir', join(p, 'tmp'), '--storage-driver', 'vfs', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
}
const RUN_FLAGS = ['--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1000:1000'];

beforeAll(async () => {
  for (const tool of ['oci-image-tool', 'skopeo', 'podman']) {
    if (sh('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is required for the interop tests (apt-get install ${tool})`);
  }
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-interop-'));
  // a gzip-layer variant next to the uncompressed base image
  const s = await OciStore.open(root);
  const base = await findImage(s, 'busybox');
  await s.release();
  const layerTar = join(tmp.dir, 'layer.tar');
  ok(sh('sh', ['-c', `cat ${s.blobPath(base.manifest.layers[0]!.digest)} > ${layerTar}`]), 'copy layer');
  const imp = await runCli(['import', '--compression', 'gzip', '-c', 'CMD ["sh"]', layerTar, 'localhost:5000/bb/gz:1'], { root });
  expect(imp.code, imp.stderr).toBe(0);
  const s2 = await OciStore.open(root);
  for (const name of ['busybox', 'localhost:5000/bb/gz:1']) {
    const img = await findImage(s2, name);
    ids[name] = { id: imageId(img), manifest: img.descriptor.digest };
  }
  await s2.release();
});
afterAll(async () => {
  ids = {};
  await tmp?.cleanup();
});

describe('OCI archives from `save`', () => {
  it('validate with oci-image-tool and copy with skopeo', async () => {
    const arc = join(tmp.dir, 'oci.tar');
    expect((await runCli(['save', '-o', arc, 'busybox', 'localhost:5000/bb/gz:1'], { root })).code).toBe(0);
    const dir = join(tmp.dir, 'layout');
    await mkdir(dir);
    ok(sh('tar', ['-C', dir, '-xf', arc]), 'untar');
    for (const ref of [BUSYBOX_REF, 'localhost:5000/bb/gz:1']) {
      const out = ok(sh('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${ref}`, dir]), `oci-image-tool validate ${ref}`);
      expect(out).toContain('Validation succeeded');
      const inspect = JSON.parse(ok(sh('skopeo', ['inspect', `oci:${dir}:${ref}`]), 'skopeo inspect')) as { Digest: string };
      expect(inspect.Digest).toBe(ids[ref === BUSYBOX_REF ? 'busybox' : ref]!.manifest);
      const dest = join(tmp.dir, `skopeo-${ref.replace(/[^a-z0-9]/g, '_')}`);
      ok(sh('skopeo', ['copy', '--quiet', `oci:${dir}:${ref}`, `dir:${dest}`]), `skopeo copy ${ref}`);
      // skopeo keeps our manifest bytes as they are
      const raw = await readFile(join(dest, 'manifest.json'));
      const { digestOf } = await import('../../src/image/digest.js');
      expect(digestOf(raw)).toBe(ids[ref === BUSYBOX_REF ? 'busybox' : ref]!.manifest);
    }
    // the whole layout, refs and all
    expect(ok(sh('oci-image-tool', ['validate', '--type', 'image', dir]), 'validate all')).toContain('Validation succeeded');
  });

  it('podman loads and runs them', async () => {
    const p = join(tmp.dir, 'podman');
    for (const name of ['busybox', 'localhost:5000/bb/gz:1']) {
      const arc = join(tmp.dir, `single-${name.replace(/[^a-z0-9]/g, '_')}.tar`);
      expect((await runCli(['save', '-o', arc, name], { root })).code).toBe(0);
      const out = ok(sh('podman', [...podman(p), 'load', '-i', arc]), `podman load ${name}`);
      expect(out).toMatch(/Loaded image/);
    }
    const images = ok(sh('podman', [...podman(p), 'images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']), 'podman images');
    expect(images).toContain(`${ids.busybox!.id.slice(7, 19)} docker.io/library/busybox:latest`);
    expect(images).toContain(`${ids['localhost:5000/bb/gz:1']!.id.slice(7, 19)} localhost:5000/bb/gz:1`);
    const run = ok(sh('podman', [...podman(p), 'run', '--rm', ...RUN_FLAGS, 'localhost:5000/bb/gz:1', 'sh', '-c', 'echo hello from $(busybox | head -1 | cut -d" " -f1)']), 'podman run');
    expect(run.trim()).toBe('hello from BusyBox');
  });
});

describe('docker-archives from `save --format docker`', () => {
  it('copy with skopeo and load into podman', async () => {
    const arc = join(tmp.dir, 'docker.tar');
    expect((await runCli(['save', '--format', 'docker', '-o', arc, 'busybox', 'localhost:5000/bb/gz:1'], { root })).code).toBe(0);
    for (const [i, ref] of ['busybox:latest', 'localhost:5000/bb/gz:1'].entries()) {
      const dest = join(tmp.dir, `skopeo-da-${i}`);
      ok(sh('skopeo', ['copy', '--quiet', `docker-archive:${arc}:${ref}`, `dir:${dest}`]), `skopeo copy docker-archive ${ref}`);
      const m = JSON.parse(await readFile(join(dest, 'manifest.json'), 'utf8')) as { config: { digest: string } };
      expect(m.config.digest).toBe(ids[i === 0 ? 'busybox' : ref]!.id); // image id preserved
    }
    const p = join(tmp.dir, 'podman-da');
    ok(sh('podman', [...podman(p), 'load', '-i', arc]), 'podman load docker-archive');
    const images = ok(sh('podman', [...podman(p), 'images', '--format', '{{.ID}}']), 'podman images');
    expect(images).toContain(ids.busybox!.id.slice(7, 19));
  });
});

describe('`load` reads what skopeo and podman write', () => {
  it.each([
    ['skopeo oci-archive (gzip re-compressed)', 'oci-archive'],
    ['skopeo docker-archive', 'docker-archive'],
  ])('%s', async (_what, transport) => {
    const dir = join(tmp.dir, `src-${transport}`);
    await mkdir(dir);
    const arc = join(tmp.dir, 'ours.tar');
    await runCli(['save', '-o', arc, 'busybox'], { root });
    ok(sh('tar', ['-C', dir, '-xf', arc]), 'untar');
    const out = join(tmp.dir, `skopeo-${transport}.tar`);
    const destRef = transport === 'oci-archive' ? `${out}:docker.io/library/sk:1` : `${out}:sk:1`;
    ok(sh('skopeo', ['copy', '--quiet', ...(transport === 'oci-archive' ? ['--dest-compress-format', 'gzip'] : []), `oci:${dir}:${BUSYBOX_REF}`, `${transport}:${destRef}`]), 'skopeo copy');
    const dest = join(tmp.dir, `load-${transport}`);
    const r = await runCli(['load', '-i', out], { root: dest });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Loaded image: sk:1\n');
    const s = await OciStore.open(dest);
    const img = await findImage(s, 'sk:1');
    expect(imageId(img)).toBe(ids.busybox!.id);
    await validateImage(s, img.descriptor);
    await s.release();
  });

  // Uses the podman store that 'podman loads and runs them' filled (tests in a file run in order).
  it.each(['oci-archive', 'docker-archive'])('podman save --format %s', async (format) => {
    const p = join(tmp.dir, 'podman');
    const out = join(tmp.dir, `podman-${format}.tar`);
    ok(sh('podman', [...podman(p), 'save', '--format', format, '-o', out, 'docker.io/library/busybox:latest']), 'podman save');
    const dest = join(tmp.dir, `load-podman-${format}`);
    const r = await runCli(['load', '-i', out], { root: dest });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Loaded image: busybox:latest\n/);
    const s = await OciStore.open(dest);
    const img = await findImage(s, 'busybox');
    await validateImage(s, img.descriptor);
    const ours = await OciStore.open(root);
    expect(img.config.rootfs.diff_ids).toEqual((await findImage(ours, 'busybox')).config.rootfs.diff_ids);
    await ours.release();
    await s.release();
  });
});
