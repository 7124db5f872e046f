/**
 * Layer interop with the peers that define the format in practice: umoci (generate + unpack),
 * skopeo (containers/image: Go's gzip and zstd readers, digest verification) and buildah.
 * Trees are compared file by file: path, type, mode, uid/gid, size, content hash, link target.
 * Needs: umoci, skopeo, buildah, busybox-static (Debian packages), root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, createReadStream, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { setAttributeSync } from 'fs-xattr';
import { applyLayer } from '../../src/tar/apply.js';
import { packDir } from '../../src/tar/pack.js';
import { decompress } from '../../src/compress/compress.js';
import { writeLayerBlob, type LayerBlob } from '../../src/store/layers.js';
import { OciStore } from '../../src/store/store.js';
import { MediaTypes, type Compression } from '../../src/image/media-types.js';
import type { Descriptor, Manifest } from '../../src/image/types.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree } from '../helpers/tar.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let src: string;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  for (const tool of ['umoci', 'skopeo', 'buildah']) {
    // Not a skip: these are required test dependencies (Debian packages) on CI.
    expect(spawnSync(tool, ['--version']).status, `${tool} must be installed`).toBe(0);
  }
  tmp = await makeTmp('imgbuild-interop-');
  src = join(tmp.dir, 'src');
  execFileSync('sh', [join(import.meta.dirname, '../../scripts/busybox-rootfs.sh'), src]);
  // extras beyond busybox: hard link, setuid, odd owners, deep and long names, an xattr, an empty dir
  linkSync(join(src, 'bin/busybox'), join(src, 'bin/busybox.hard'));
  writeFileSync(join(src, 'usr/bin/suid'), '#!/bin/sh\n');
  chmodSync(join(src, 'usr/bin/suid'), 0o4755);
  mkdirSync(join(src, 'home/user/.config/a/b/c'), { recursive: true });
  writeFileSync(join(src, 'home/user/.config/a/b/c', 'x'.repeat(150)), 'long name');
  chownSync(join(src, 'home/user'), 1000, 1000);
  writeFileSync(join(src, 'home/user/notes'), 'n');
  chownSync(join(src, 'home/user/notes'), 1000, 100);
  setAttributeSync(join(src, 'home/user/notes'), 'user.origin', 'interop');
  mkdirSync(join(src, 'var/empty'), { recursive: true });
  symlinkSync('/etc/passwd', join(src, 'etc/passwd.link'));
}, 120_000);
afterAll(async () => {
  await tmp?.cleanup();
});

interface LayoutImage { manifest: Manifest; layers: Descriptor[]; dir: string }

function readLayout(dir: string, tag: string): LayoutImage {
  const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const m = idx.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!m) throw new Error(`tag ${tag} not in ${dir}`);
  const manifest = JSON.parse(readFileSync(join(dir, 'blobs/sha256', m.digest.slice(7)), 'utf8')) as Manifest;
  return { manifest, layers: manifest.layers, dir };
}

/** Applies an OCI layout image's layers (flat) with imgbuild. */
async function applyAll(img: LayoutImage, root: string): Promise<void> {
  mkdirSync(root, { recursive: true });
  for (const l of img.layers) {
    await applyLayer(root, decompress(createReadStream(join(img.dir, 'blobs/sha256', l.digest.slice(7)))), { mode: 'flat' });
  }
}

/** Writes an image made of imgbuild layer blobs into an OCI layout (the store root is one). */
async function writeImage(dir: string, layers: LayerBlob[]): Promise<void> {
  const store = await OciStore.open(dir);
  const config = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } };
  const cfg = await store.put(Buffer.from(JSON.stringify(config)), MediaTypes.OCI_CONFIG);
  const manifest = {
    schemaVersion: 2, mediaType: MediaTypes.OCI_MANIFEST, config: cfg,
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const md = await store.put(Buffer.from(JSON.stringify(manifest)), MediaTypes.OCI_MANIFEST);
  await store.tag('latest', md);
  // the store's own bookkeeping is not part of an OCI layout
  for (const extra of ['ingest', 'leases', 'imgbuild.json']) rmSync(join(dir, extra), { recursive: true, force: true });
}

const tree = (root: string) => snapshotTree(root);

describe('umoci', () => {
  it('a umoci-generated image (insert, --whiteout, --opaque) applies flat to the tree umoci unpack makes', async () => {
    const L = join(tmp.dir, 'umoci-layout');
    run('umoci', ['init', '--layout', L]);
    run('umoci', ['new', '--image', `${L}:img`]);
    run('umoci', ['insert', '--image', `${L}:img`, src, '/']);
    run('umoci', ['insert', '--image', `${L}:img`, '--whiteout', '/bin/vi']);
    run('umoci', ['insert', '--image', `${L}:img`, '--whiteout', '/var']);
    const etc2 = join(tmp.dir, 'etc2');
    mkdirSync(etc2);
    writeFileSync(join(etc2, 'only'), 'replaced');
    run('umoci', ['insert', '--image', `${L}:img`, '--opaque', etc2, '/etc']);
    const bundle = join(tmp.dir, 'umoci-bundle');
    run('umoci', ['unpack', '--image', `${L}:img`, bundle]);
    const img = readLayout(L, 'img');
    expect(img.layers.length).toBe(4);
    const ours = join(tmp.dir, 'ours-from-umoci');
    await applyAll(img, ours);
    const theirs = tree(join(bundle, 'rootfs'));
    expect(theirs.find((e) => e.path === 'bin/vi')).toBeUndefined();
    expect(theirs.filter((e) => e.path.startsWith('etc/')).map((e) => e.path)).toEqual(['etc/only']);
    expect(tree(ours)).toEqual(theirs);
  });

  for (const compression of ['gzip', 'none'] as Compression[]) {
    it(`umoci unpack of an imgbuild ${compression} layer gives back the source tree`, async () => {
      const L = join(tmp.dir, `ours-layout-${compression}`);
      const store = await OciStore.open(join(tmp.dir, `scratch-${compression}`));
      const blob = await writeLayerBlob(store, packDir(src, { mode: 'plain' }), { compression });
      mkdirSync(join(L, 'blobs/sha256'), { recursive: true });
      execFileSync('cp', [store.blobPath(blob.digest), join(L, 'blobs/sha256', blob.digest.slice(7))]);
      await writeImage(L, [blob]);
      const bundle = join(tmp.dir, `bundle-${compression}`);
      run('umoci', ['unpack', '--image', `${L}:latest`, bundle]);
      expect(tree(join(bundle, 'rootfs'))).toEqual(tree(src));
    });
  }

  it('an overlay-mode layer (whiteout device, opaque xattr) means the same to umoci as to imgbuild', async () => {
    const upper = join(tmp.dir, 'upper');
    mkdirSync(join(upper, 'etc'), { recursive: true });
    mkdirSync(join(upper, 'bin'), { recursive: true });
    run('mknod', [join(upper, 'bin/vi'), 'c', '0', '0']);
    setAttributeSync(join(upper, 'etc'), 'trusted.overlay.opaque', 'y');
    writeFileSync(join(upper, 'etc/hostname'), 'box\n');
    const L = join(tmp.dir, 'ours-overlay-layout');
    const store = await OciStore.open(L);
    const base = await writeLayerBlob(store, packDir(src, { mode: 'plain' }), { compression: 'gzip' });
    const top = await writeLayerBlob(store, packDir(upper, { mode: 'overlay' }), { compression: 'gzip' });
    await writeImage(L, [base, top]);
    const bundle = join(tmp.dir, 'bundle-overlay');
    run('umoci', ['unpack', '--image', `${L}:latest`, bundle]);
    const ours = join(tmp.dir, 'ours-overlay');
    await applyAll(readLayout(L, 'latest'), ours);
    const theirs = tree(join(bundle, 'rootfs'));
    expect(theirs.filter((e) => e.path.startsWith('etc/')).map((e) => e.path)).toEqual(['etc/hostname']);
    expect(theirs.some((e) => e.path === 'bin/vi')).toBe(false);
    expect(tree(ours)).toEqual(theirs);
  });
});

describe('skopeo (containers/image readers)', () => {
  // Converting the compression makes skopeo read our blob with Go's decompressor (and verify its
  // digest); the layer it writes must then hold exactly our tar (its sha256 is our diffID).
  for (const [compression, to, tool] of [['gzip', 'zstd', 'zstd'], ['zstd', 'gzip', 'gzip']] as const) {
    it(`reads an imgbuild ${compression} layer (recompressing to ${to}) back to exactly the diffID`, async () => {
      const L = join(tmp.dir, `skopeo-src-${compression}`);
      const store = await OciStore.open(L);
      const blob = await writeLayerBlob(store, packDir(src, { mode: 'plain' }), { compression });
      await writeImage(L, [blob]);
      const D = join(tmp.dir, `skopeo-dst-${compression}`);
      run('skopeo', ['copy', '--quiet', '--dest-compress-format', to, `oci:${L}:latest`, `oci:${D}:latest`]);
      const out = readLayout(D, 'latest');
      expect(out.layers.length).toBe(1);
      expect(out.layers[0]!.digest).not.toBe(blob.digest);
      const theirs = join(D, 'blobs/sha256', out.layers[0]!.digest.slice(7));
      const plain = spawnSync(tool, ['-dc', theirs], { maxBuffer: 1 << 30 });
      expect(plain.status).toBe(0);
      expect(`sha256:${createHash('sha256').update(plain.stdout).digest('hex')}`).toBe(blob.diffId);
      const root = join(tmp.dir, `skopeo-applied-${compression}`);
      await applyAll(out, root);
      expect(tree(root)).toEqual(tree(src));
    });
  }
});

describe('buildah', () => {
  it('a buildah-committed layer applies flat to the copied tree', async () => {
    const B = ['--storage-driver', 'vfs', '--root', join(tmp.dir, 'buildah/root'), '--runroot', join(tmp.dir, 'buildah/runroot')];
    const ctr = run('buildah', [...B, 'from', '--quiet', 'scratch']).trim().split('\n').pop()!;
    try {
      run('buildah', [...B, 'copy', '--quiet', ctr, src, '/']);
      run('buildah', [...B, 'commit', '--quiet', '--format', 'oci', ctr, `oci:${join(tmp.dir, 'buildah-layout')}:img`]);
    } finally {
      spawnSync('buildah', [...B, 'rm', ctr]);
    }
    const img = readLayout(join(tmp.dir, 'buildah-layout'), 'img');
    const root = join(tmp.dir, 'from-buildah');
    await applyAll(img, root);
    // buildah copy owns everything by root (as Dockerfile COPY does) and keeps modes and content
    const rootOwned = tree(src).map((e) => ({ ...e, uid: 0, gid: 0 }));
    expect(tree(root)).toEqual(rootOwned);
  }, 120_000);
});
