import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { makeTmp } from '../helpers/tmp.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { validateImage } from '../conformance/validate-image.js';
import { OciStore } from '../../src/store/store.js';
import { applyConfigChanges } from '../../src/image/changes.js';
import { chainIds, imageId } from '../../src/image/model.js';
import { findImage, loadImage, writeImage, writeManifest, AmbiguousImageIdError } from '../../src/store/images.js';
import { hostPlatform, parsePlatform } from '../../src/image/platform.js';
import { InvalidReferenceError } from '../../src/image/errors.js';
import { PlatformNotFoundError } from '../../src/image/platform.js';
import { writeLayerBlob } from '../../src/store/layers.js';
import { digestOf, type Digest } from '../../src/image/digest.js';
import { MediaTypes } from '../../src/image/media-types.js';
import type { Descriptor, ImageConfig } from '../../src/image/types.js';
import tar from 'tar-stream';
import { BlobNotFoundError, ImageNotFoundError } from '../../src/store/errors.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let store: OciStore;

beforeEach(async () => {
  tmp = await makeTmp();
  store = await OciStore.open(join(tmp.dir, 'store'));
});
afterEach(async () => {
  await store.release();
  await tmp.cleanup();
});

/** A one-file layer tar. */
async function tarOf(name: string, content: string): Promise<Buffer> {
  const p = tar.pack();
  p.entry({ name, mtime: new Date(0), mode: 0o644, uid: 0, gid: 0 }, content);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function makeImage(s: OciStore, o: { arch?: string; files?: string[]; compression?: 'none' | 'gzip' | 'zstd'; format?: 'oci' | 'docker' } = {}): Promise<Descriptor> {
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const f of o.files ?? ['a']) {
    const blob = await writeLayerBlob(s, Readable.from([await tarOf(f, `content of ${f} for ${o.arch ?? 'amd64'}`)]), {
      compression: o.compression ?? 'gzip',
      format: o.format ?? 'oci',
    });
    layers.push({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size });
    diffIds.push(blob.diffId);
  }
  const config: ImageConfig = {
    created: '2024-01-01T00:00:00Z',
    architecture: o.arch ?? 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `step ${i}` })),
  };
  return writeImage(s, config, layers, o.format ? { format: o.format } : {});
}

describe('chainIds', () => {
  it('follows image-spec: chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))', () => {
    const d = [digestOf('a'), digestOf('b'), digestOf('c')];
    const c1 = `sha256:${createHash('sha256').update(`${d[0]} ${d[1]}`).digest('hex')}`;
    const c2 = `sha256:${createHash('sha256').update(`${c1} ${d[2]}`).digest('hex')}`;
    expect(chainIds(d)).toEqual([d[0], c1, c2]);
    expect(chainIds([])).toEqual([]);
  });
});

describe('writeImage / loadImage', () => {
  it('writes a valid OCI image whose raw bytes are its identity', async () => {
    const desc = await makeImage(store, { files: ['a', 'b'] });
    expect(desc.mediaType).toBe(MediaTypes.OCI_MANIFEST);
    const img = await loadImage(store, desc);
    expect(digestOf(img.rawManifest)).toBe(desc.digest);
    expect(digestOf(img.rawConfig)).toBe(img.manifest.config.digest);
    expect(imageId(img)).toBe(img.manifest.config.digest);
    expect(img.manifest.layers).toHaveLength(2);
    // LayerBlob extras (diffId, uncompressedSize) never leak into the manifest
    expect(Object.keys(img.manifest.layers[0]!).sort()).toEqual(['digest', 'mediaType', 'size']);
    await validateImage(store, desc);
  });

  it('writes Docker schema2 with Docker media types', async () => {
    const desc = await makeImage(store, { format: 'docker', compression: 'none' });
    expect(desc.mediaType).toBe(MediaTypes.DOCKER_MANIFEST);
    const img = await loadImage(store, desc);
    expect(img.manifest.config.mediaType).toBe(MediaTypes.DOCKER_CONFIG);
    expect(img.manifest.layers[0]!.mediaType).toBe(MediaTypes.DOCKER_LAYER);
    await validateImage(store, desc);
  });

  it('keeps a config blob as it is in writeManifest (image id preserved)', async () => {
    const raw = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},  "extra":1}');
    const cfg = await store.put(raw, MediaTypes.DOCKER_CONFIG);
    const m = await writeManifest(store, cfg, [], { format: 'docker' });
    expect(imageId(await loadImage(store, m))).toBe(digestOf(raw));
  });

  it('refuses a diff_ids / layers count mismatch and missing layer blobs', async () => {
    const base: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf('x')] } };
    await expect(writeImage(store, base, [])).rejects.toThrow(/1 diff_ids but 0 layers/);
    await expect(writeImage(store, base, [{ mediaType: MediaTypes.OCI_LAYER, digest: digestOf('x'), size: 1 }])).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('a corrupt config is detected on load', async () => {
    const desc = await makeImage(store);
    const img = await loadImage(store, desc);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(store.blobPath(img.manifest.config.digest), img.rawConfig.toString().replace('amd64', 'AMD64'));
    await expect(loadImage(store, desc)).rejects.toThrow(/digest mismatch/);
  });
});

describe('findImage', () => {
  it('finds by familiar name, full name, id, id prefix and name@digest', async () => {
    await ensureBusybox(store.root);
    const byName = await findImage(store, 'busybox');
    expect(byName.ref).toBe(BUSYBOX_REF);
    const id = imageId(byName);
    for (const input of ['busybox:latest', 'docker.io/library/busybox', id, id.slice(7), id.slice(7, 19), `busybox@${byName.descriptor.digest}`]) {
      expect(imageId(await findImage(store, input)), input).toBe(id);
    }
    await validateImage(store, byName.descriptor);
  });

  it('throws ImageNotFoundError for unknown names and ids, InvalidReferenceError for malformed ones', async () => {
    await ensureBusybox(store.root);
    await expect(findImage(store, 'nope')).rejects.toBeInstanceOf(ImageNotFoundError);
    await expect(findImage(store, 'busybox:other')).rejects.toBeInstanceOf(ImageNotFoundError);
    await expect(findImage(store, `sha256:${'0'.repeat(64)}`)).rejects.toBeInstanceOf(ImageNotFoundError);
    await expect(findImage(store, 'Busybox')).rejects.toBeInstanceOf(InvalidReferenceError);
    await expect(findImage(store, 'a b')).rejects.toBeInstanceOf(InvalidReferenceError);
  });

  it('prefers a tag over an id prefix that looks the same, and refuses ambiguous prefixes', async () => {
    const d1 = await makeImage(store, { files: ['x'] });
    const d2 = await makeImage(store, { files: ['y'] });
    const id1 = imageId(await loadImage(store, d1));
    const id2 = imageId(await loadImage(store, d2));
    await store.keepUntagged(d1);
    await store.keepUntagged(d2);
    // a tag named like the other image's id prefix wins, as in Docker
    const prefix = id2.slice(7, 13);
    await store.tag(`docker.io/library/${prefix}:latest`, d1);
    expect(imageId(await findImage(store, prefix))).toBe(id1);
    // 17 ids over 16 first hex digits: at least two share a one-character prefix
    const ids = [id1, id2];
    for (let i = 0; i < 15; i++) {
      const d = await makeImage(store, { files: [`f${i}`] });
      await store.keepUntagged(d);
      ids.push(imageId(await loadImage(store, d)));
    }
    const first = ids.map((x) => x[7]!);
    const shared = first.find((c, i) => first.indexOf(c) !== i)!;
    await expect(findImage(store, shared)).rejects.toBeInstanceOf(AmbiguousImageIdError);
    expect(imageId(await findImage(store, id2.slice(7, 20)))).toBe(id2);
  });
});

describe('platform selection', () => {
  async function index(mediaType: string, children: { d: Descriptor; arch: string; variant?: string; os?: string }[]): Promise<Descriptor> {
    const doc = {
      schemaVersion: 2,
      mediaType,
      manifests: children.map((c) => ({ ...c.d, platform: { os: c.os ?? 'linux', architecture: c.arch, ...(c.variant ? { variant: c.variant } : {}) } })),
    };
    return store.put(Buffer.from(JSON.stringify(doc)), mediaType);
  }

  it('picks the host platform from an OCI index, or the one asked for', async () => {
    const amd = await makeImage(store, { arch: 'amd64' });
    const arm = await makeImage(store, { arch: 'arm64' });
    const att = await makeImage(store, { arch: 'amd64', files: ['attestation'] });
    const idx = await index(MediaTypes.OCI_INDEX, [
      { d: att, arch: 'unknown', os: 'unknown' },
      { d: arm, arch: 'arm64', variant: 'v8' },
      { d: amd, arch: 'amd64' },
    ]);
    await store.tag('docker.io/library/multi:1', idx);
    const host = await findImage(store, 'multi:1');
    expect(host.config.architecture).toBe(hostPlatform().architecture);
    expect(host.indexDescriptor?.digest).toBe(idx.digest);
    const a = await findImage(store, 'multi:1', { platform: parsePlatform('linux/arm64') });
    expect(a.descriptor.digest).toBe(arm.digest);
    expect(a.config.architecture).toBe('arm64');
    const b = await findImage(store, 'multi:1', { platform: parsePlatform('linux/amd64') });
    expect(b.descriptor.digest).toBe(amd.digest);
    await expect(findImage(store, 'multi:1', { platform: parsePlatform('linux/s390x') })).rejects.toBeInstanceOf(PlatformNotFoundError);
    await expect(findImage(store, 'multi:1', { platform: parsePlatform('linux/s390x') })).rejects.toThrow(/available: linux\/arm64\/v8, linux\/amd64/);
    // a platform manifest is reachable by digest too
    expect((await findImage(store, `multi@${arm.digest}`)).config.architecture).toBe('arm64');
    await validateImage(store, idx);
  });

  it('reads a Docker manifest list', async () => {
    const amd = await makeImage(store, { arch: 'amd64', format: 'docker' });
    const arm = await makeImage(store, { arch: 'arm', format: 'docker' });
    const list = await index(MediaTypes.DOCKER_MANIFEST_LIST, [
      { d: arm, arch: 'arm', variant: 'v7' },
      { d: amd, arch: 'amd64' },
    ]);
    await store.tag('docker.io/library/list:1', list);
    expect((await findImage(store, 'list:1', { platform: { os: 'linux', architecture: 'amd64' } })).descriptor.digest).toBe(amd.digest);
    expect((await findImage(store, 'list:1', { platform: parsePlatform('linux/arm/v7') })).descriptor.digest).toBe(arm.digest);
    await expect(findImage(store, 'list:1', { platform: parsePlatform('linux/arm/v6') })).rejects.toBeInstanceOf(PlatformNotFoundError);
  });
});

describe('applyConfigChanges', () => {
  it('applies Dockerfile instructions like docker import --change', () => {
    const c = applyConfigChanges({ Env: ['PATH=/bin', 'A=1'], Cmd: ['old'] }, [
      'ENV A=2 B="two words"',
      'ENV C legacy form value',
      'CMD ["sh", "-c", "echo hi"]',
      'ENTRYPOINT /entry.sh',
      'EXPOSE 80 53/udp',
      'LABEL a=b "c d"=e',
      'VOLUME ["/data", "/logs"]',
      'USER 1000:1000',
      'WORKDIR /app',
      'WORKDIR sub',
      'STOPSIGNAL SIGINT',
      'ONBUILD RUN true',
    ]);
    expect(c).toEqual({
      Env: ['PATH=/bin', 'A=2', 'B=two words', 'C=legacy form value'],
      Cmd: ['sh', '-c', 'echo hi'],
      Entrypoint: ['/bin/sh', '-c', '/entry.sh'],
      ExposedPorts: { '80/tcp': {}, '53/udp': {} },
      Labels: { a: 'b', 'c d': 'e' },
      Volumes: { '/data': {}, '/logs': {} },
      User: '1000:1000',
      WorkingDir: '/app/sub',
      StopSignal: 'SIGINT',
      OnBuild: ['RUN true'],
    });
  });

  it('an ENTRYPOINT alone resets the inherited CMD; unknown instructions are refused', () => {
    expect(applyConfigChanges({ Cmd: ['sh'] }, ['ENTRYPOINT ["/e"]'])).toEqual({ Cmd: null, Entrypoint: ['/e'] });
    expect(() => applyConfigChanges({}, ['RUN true'])).toThrow(/unsupported change instruction "RUN"/);
    expect(() => applyConfigChanges({}, ['EXPOSE http'])).toThrow(/invalid port/);
  });
});
