import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { open, readFile, readdir } from 'node:fs/promises';
import tar from 'tar-stream';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage } from '../../src/store/images.js';
import { digestOf } from '../../src/image/digest.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
beforeEach(async () => {
  ({ tmp, root } = await tmpBusyboxStore());
});
afterEach(async () => tmp.cleanup());

/** name → content of every file in a tar. */
async function members(data: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  ex.on('entry', (h, st, next) => {
    const chunks: Buffer[] = [];
    st.on('data', (c) => {
      chunks.push(c as Buffer);
    });
    st.on('end', () => {
      if (h.type === 'file') out.set(h.name, Buffer.concat(chunks));
      next();
    });
  });
  ex.end(data);
  await new Promise<void>((res, rej) => ex.on('finish', () => res()).on('error', rej));
  return out;
}

async function busybox(): Promise<Awaited<ReturnType<typeof loadImage>>> {
  const s = await OciStore.open(root);
  const img = await loadImage(s, (await s.resolve(BUSYBOX_REF))!);
  await s.release();
  return img;
}

describe('imgbuild save', () => {
  it('writes an OCI layout archive with ref annotations, byte-identical each time and on stdout', async () => {
    await runCli(['tag', 'busybox', 'localhost:5000/a/b:t'], { root });
    const out = join(tmp.dir, 'a.tar');
    const r = await runCli(['save', '-o', out, 'busybox', 'localhost:5000/a/b:t'], { root });
    expect(r.code, r.stderr).toBe(0);
    const data = await readFile(out);
    const m = await members(data);
    expect(JSON.parse(m.get('oci-layout')!.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
    const idx = JSON.parse(m.get('index.json')!.toString()) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    const img = await busybox();
    expect(idx.manifests.map((d) => d.annotations['org.opencontainers.image.ref.name'])).toEqual([BUSYBOX_REF, 'localhost:5000/a/b:t']);
    expect(idx.manifests.map((d) => d.annotations['io.containerd.image.name'])).toEqual([BUSYBOX_REF, 'localhost:5000/a/b:t']);
    expect(idx.manifests.every((d) => d.digest === img.descriptor.digest)).toBe(true);
    // each blob once, each named by its digest
    const blobs = [...m.keys()].filter((k) => k.startsWith('blobs/'));
    expect(blobs.sort()).toEqual([img.descriptor.digest, img.manifest.config.digest, img.manifest.layers[0]!.digest].map((d) => `blobs/sha256/${d.slice(7)}`).sort());
    for (const b of blobs) expect(digestOf(m.get(b)!)).toBe(`sha256:${b.slice(13)}`);

    const again = join(tmp.dir, 'b.tar');
    await runCli(['save', '-o', again, 'busybox', 'localhost:5000/a/b:t'], { root });
    expect((await readFile(again)).equals(data)).toBe(true);
    const stdout = await runCli(['save', 'busybox', 'localhost:5000/a/b:t'], { root });
    expect(stdout.code).toBe(0);
    expect(Buffer.from(stdout.stdout, 'latin1').length).toBeGreaterThan(0);
  });

  it('writes a docker-archive with plain layer tars named by diffID, also for a gzip image', async () => {
    const gz = join(tmp.dir, 'src.tar');
    await runCli(['save', '-o', gz, 'busybox'], { root });
    // make a gzip-layer image to show save converts it
    const rootfs = join(tmp.dir, 'l.tar');
    const img = await busybox();
    const s = await OciStore.open(root);
    const fh = await open(rootfs, 'w');
    await fh.writeFile(await s.read(img.manifest.layers[0]!));
    await fh.close();
    await s.release();
    expect((await runCli(['import', '--compression', 'gzip', rootfs, 'gz:1'], { root })).code).toBe(0);
    const out = join(tmp.dir, 'd.tar');
    const r = await runCli(['save', '--format', 'docker', '-o', out, 'busybox', 'gz:1'], { root });
    expect(r.code, r.stderr).toBe(0);
    const m = await members(await readFile(out));
    const manifest = JSON.parse(m.get('manifest.json')!.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest.map((e) => e.RepoTags)).toEqual([['busybox:latest'], ['gz:1']]);
    for (const e of manifest) {
      const config = JSON.parse(m.get(e.Config)!.toString()) as { rootfs: { diff_ids: string[] } };
      expect(digestOf(m.get(e.Config)!)).toBe(`sha256:${e.Config.slice(13)}`);
      expect(e.Layers.map((l) => digestOf(m.get(l)!))).toEqual(config.rootfs.diff_ids);
    }
    expect(JSON.parse(m.get('repositories')!.toString())).toMatchObject({ busybox: { latest: expect.stringMatching(/^[0-9a-f]{64}$/) }, gz: { 1: expect.any(String) } });
  });

  it('fails with one line naming a corrupt layer blob and leaves no partial archive', async () => {
    const img = await busybox();
    const layer = img.manifest.layers[0]!;
    const s = await OciStore.open(root);
    const fh = await open(s.blobPath(layer.digest), 'r+');
    await s.release();
    await fh.write(Buffer.from([0x42]), 0, 1, 700_000);
    await fh.close();
    const out = join(tmp.dir, 'bad.tar');
    for (const format of ['oci', 'docker']) {
      const r = await runCli(['save', '--format', format, '-o', out, 'busybox'], { root });
      expectOneLineError(r, new RegExp(`digest mismatch: expected ${layer.digest}`));
      expect((await readdir(tmp.dir)).filter((n) => n.includes('bad.tar'))).toEqual([]);
    }
  });

  it('fails with one line for a missing image or format, before writing anything', async () => {
    const out = join(tmp.dir, 'x.tar');
    expectOneLineError(await runCli(['save', '-o', out, 'busybox', 'nope'], { root }), /^imgbuild: NOT_FOUND: image not found: nope$/);
    expectOneLineError(await runCli(['save', '--format', 'zip', '-o', out, 'busybox'], { root }), /unsupported --format "zip"/);
    expect((await readdir(tmp.dir)).filter((n) => n.includes('x.tar'))).toEqual([]);
  });
});
