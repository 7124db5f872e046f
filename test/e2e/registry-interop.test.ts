/**
 * Interoperability with other registry clients, all against the real registry on 127.0.0.1:
 * skopeo inspects and copies what we push; we pull and validate what skopeo pushes (OCI and
 * Docker schema2 manifests, gzip and zstd layers, a multi-platform index); podman pulls and runs
 * what we pushed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage } from '../../src/store/images.js';
import { pullImage } from '../../src/registry/pull.js';
import { pushImage } from '../../src/registry/push.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { digestOf } from '../../src/image/digest.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../../src/image/types.js';
import { testSession, validateStoredImage } from '../registry/util.js';

function run(cmd: string, args: string[], o: { timeout?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: o.timeout ?? 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const tmp = await makeTmp('imgbuild-e2e-interop-');
let reg: TestRegistry;
let src: OciStore;
let n = 0;
const fresh = (): Promise<OciStore> => OciStore.open(join(tmp.dir, `store-${++n}`));

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
  src = await OciStore.open(join(tmp.dir, 'src'));
  await ensureBusybox(src.root);
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

describe('skopeo reads what we push', () => {
  it('inspect and copy to an OCI layout', async () => {
    const d = await pushImage(src, BUSYBOX_REF, `${reg.host}/interop/bb:1`, { session: testSession() });
    const info = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/interop/bb:1`])) as { Digest: string; Layers: string[]; Architecture: string };
    expect(info.Digest).toBe(d.digest);
    expect(info.Layers.length).toBe(1);
    const raw = JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/bb:1`])) as Manifest;
    expect(raw.layers[0]!.mediaType).toBe(MediaTypes.OCI_LAYER_GZIP);
    const layout = join(tmp.dir, 'skopeo-out');
    run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/interop/bb:1`, `oci:${layout}:bb`]);
    const idx = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
    expect(idx.manifests[0]!.digest).toBe(d.digest);
  });

  it('zstd layers pushed with --compression zstd are readable by skopeo', async () => {
    const d = await pushImage(src, BUSYBOX_REF, `${reg.host}/interop/bb:zstd`, { session: testSession(), compression: 'zstd' });
    const raw = JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/bb:zstd`])) as Manifest;
    expect(raw.layers[0]!.mediaType).toBe(MediaTypes.OCI_LAYER_ZSTD);
    run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/interop/bb:zstd`, `oci:${join(tmp.dir, 'zstd-out')}:bb`]);
    const back = await fresh();
    const p = await pullImage(back, `${reg.host}/interop/bb:zstd`, { session: testSession() });
    expect(p.digest).toBe(d.digest);
    await validateStoredImage(back, p);
  });
});

describe('we read what skopeo pushes', () => {
  it('OCI manifest with uncompressed layers straight from our store layout', async () => {
    // the store root is an OCI image layout; skopeo copies from it by ref name
    run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${src.root}:${BUSYBOX_REF}`, `docker://${reg.host}/interop/from-skopeo:oci`]);
    const store = await fresh();
    const d = await pullImage(store, `${reg.host}/interop/from-skopeo:oci`, { session: testSession() });
    const info = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/interop/from-skopeo:oci`])) as { Digest: string };
    expect(d.digest).toBe(info.Digest);
    // same image: the config (image id) is what we stored
    const mine = await loadImage(src, (await src.resolve(BUSYBOX_REF))!);
    expect((await loadImage(store, d)).manifest.config.digest).toBe(mine.manifest.config.digest);
    await validateStoredImage(store, d);
  });

  it('Docker schema2 manifest with gzip layers', async () => {
    run('skopeo', ['copy', '--dest-tls-verify=false', '--format', 'v2s2', '--dest-compress', `oci:${src.root}:${BUSYBOX_REF}`, `docker://${reg.host}/interop/from-skopeo:v2s2`]);
    const store = await fresh();
    const d = await pullImage(store, `${reg.host}/interop/from-skopeo:v2s2`, { session: testSession() });
    expect(d.mediaType).toBe(MediaTypes.DOCKER_MANIFEST);
    const img = await loadImage(store, d);
    expect(img.manifest.layers[0]!.mediaType).toBe(MediaTypes.DOCKER_LAYER_GZIP);
    await validateStoredImage(store, d);
    // and it goes back out unchanged (compressed layers are pushed as stored)
    const again = await pushImage(store, `${reg.host}/interop/from-skopeo:v2s2`, `${reg.host}/interop/roundtrip:v2s2`, { session: testSession() });
    expect(again.digest).toBe(d.digest);
  });

  it('selects the platform from a multi-platform index', async () => {
    // build an index of two images (amd64 = busybox, arm64 = same layer, other config) in a layout
    const layout = join(tmp.dir, 'multi');
    run('cp', ['-r', src.root, layout]);
    const img = await loadImage(src, (await src.resolve(BUSYBOX_REF))!);
    const armConfig: ImageConfig = { ...img.config, architecture: 'arm64', variant: 'v8' };
    const put = async (data: Buffer): Promise<Descriptor> => {
      const digest = digestOf(data);
      await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), data);
      return { mediaType: '', digest, size: data.length };
    };
    const cfg = await put(Buffer.from(JSON.stringify(armConfig)));
    const armManifest: Manifest = { ...img.manifest, config: { ...img.manifest.config, digest: cfg.digest, size: cfg.size } };
    const am = await put(Buffer.from(JSON.stringify(armManifest)));
    const amd = img.descriptor;
    const index: Index = {
      schemaVersion: 2,
      mediaType: MediaTypes.OCI_INDEX,
      manifests: [
        { mediaType: MediaTypes.OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaTypes.OCI_MANIFEST, digest: am.digest, size: am.size, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    };
    const ix = await put(Buffer.from(JSON.stringify(index)));
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
    top.manifests.push({ mediaType: MediaTypes.OCI_INDEX, digest: ix.digest, size: ix.size, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
    await writeFile(join(layout, 'index.json'), JSON.stringify(top));
    run('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${reg.host}/interop/multi:1`]);

    const s1 = await fresh();
    const dAmd = await pullImage(s1, `${reg.host}/interop/multi:1`, { session: testSession() });
    expect(dAmd.digest).toBe(amd.digest);
    expect(dAmd.platform).toMatchObject({ architecture: 'amd64' });
    const s2 = await fresh();
    const dArm = await pullImage(s2, `${reg.host}/interop/multi:1`, { session: testSession(), platform: 'linux/arm64' });
    expect(dArm.digest).toBe(am.digest);
    expect((await loadImage(s2, dArm)).config.architecture).toBe('arm64');
    await validateStoredImage(s2, dArm);
    const err = await pullImage(await fresh(), `${reg.host}/interop/multi:1`, { session: testSession(), platform: 'linux/s390x' }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('PlatformNotFoundError');
    expect((err as Error).message).toMatch(/linux\/amd64, linux\/arm64\/v8/);
  });
});

describe('image indexes', () => {
  it('pushes a stored index: images by digest, then the index by tag', async () => {
    const store = await fresh();
    await ensureBusybox(store.root);
    const img = await loadImage(store, (await store.resolve(BUSYBOX_REF))!);
    const cfg = await store.put(Buffer.from(JSON.stringify({ ...img.config, architecture: 'arm64', variant: 'v8' })), MediaTypes.OCI_CONFIG);
    const arm = await store.put(Buffer.from(JSON.stringify({ ...img.manifest, config: cfg })), MediaTypes.OCI_MANIFEST);
    const index: Index = {
      schemaVersion: 2,
      mediaType: MediaTypes.OCI_INDEX,
      manifests: [
        { ...img.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    };
    const ix = await store.put(Buffer.from(JSON.stringify(index)), MediaTypes.OCI_INDEX);
    await store.tag('docker.io/library/multi:1', ix);

    // unchanged layers: the index goes out byte for byte
    const same = await pushImage(store, 'multi:1', `${reg.host}/interop/multi-ours:1`, { session: testSession(), compression: 'none' });
    expect(same).toEqual({ mediaType: MediaTypes.OCI_INDEX, digest: ix.digest, size: ix.size });
    const raw = JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/multi-ours:1`])) as Index;
    expect(raw.manifests.map((m) => m.digest)).toEqual([img.descriptor.digest, arm.digest]);

    // gzip conversion rewrites both images and the index that names them
    const gz = await pushImage(store, 'multi:1', `${reg.host}/interop/multi-gz:1`, { session: testSession() });
    expect(gz.digest).not.toBe(ix.digest);
    const back = await fresh();
    const a = await pullImage(back, `${reg.host}/interop/multi-gz:1`, { session: testSession(), platform: 'linux/arm64' });
    expect((await loadImage(back, a)).config.architecture).toBe('arm64');
    expect((await loadImage(back, a)).manifest.layers[0]!.mediaType).toBe(MediaTypes.OCI_LAYER_GZIP);
    await validateStoredImage(back, a);
  });
});

describe('podman', () => {
  it('pulls and runs what we pushed', async () => {
    const d = await pushImage(src, BUSYBOX_REF, `${reg.host}/interop/podman:1`, { session: testSession() });
    const root = join(tmp.dir, 'podman');
    await mkdir(root, { recursive: true });
    const base = ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
    run('podman', [...base, 'pull', '--tls-verify=false', `${reg.host}/interop/podman:1`]);
    const digest = run('podman', [...base, 'image', 'inspect', '--format', '{{.Digest}}', `${reg.host}/interop/podman:1`]).trim();
    expect(digest).toBe(d.digest);
    const out = run('podman', [...base, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1000:1000', `${reg.host}/interop/podman:1`, 'echo', 'hello from imgbuild']);
    expect(out.trim()).toBe('hello from imgbuild');
    spawnSync('podman', [...base, 'rmi', '-a', '-f']);
    // podman's storage leaves mounts behind only while containers run; make sure none remain
    spawnSync('umount', ['-R', join(root, 'root')]);
  });
});
