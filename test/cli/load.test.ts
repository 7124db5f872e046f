import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { open, readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { validateImage } from '../conformance/validate-image.js';
import { OciStore } from '../../src/layers/store.js';
import { findImage, imageId, loadImage } from '../../src/layers/image.js';
import { MediaTypes } from '../../src/layers/media-types.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
beforeEach(async () => {
  ({ tmp, root } = await tmpBusyboxStore());
  await runCli(['tag', 'busybox', 'localhost:5000/a/b:t'], { root });
});
afterEach(async () => tmp.cleanup());

async function inStore<T>(r: string, fn: (s: OciStore) => Promise<T>): Promise<T> {
  const s = await OciStore.open(r);
  try {
    return await fn(s);
  } finally {
    await s.release();
  }
}

const original = (): Promise<{ manifest: string; id: string }> =>
  inStore(root, async (s) => {
    const img = await loadImage(s, (await s.resolve(BUSYBOX_REF))!);
    return { manifest: img.descriptor.digest, id: imageId(img) };
  });

describe('imgbuild load', () => {
  it('round-trips an OCI archive: same manifest, same tags, valid', async () => {
    const arc = join(tmp.dir, 'oci.tar');
    expect((await runCli(['save', '-o', arc, 'busybox', 'localhost:5000/a/b:t'], { root })).code).toBe(0);
    const dest = join(tmp.dir, 'dest');
    const r = await runCli(['load', '-i', arc], { root: dest });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Loaded image: busybox:latest\nLoaded image: localhost:5000/a/b:t\n');
    const o = await original();
    await inStore(dest, async (s) => {
      for (const name of ['busybox', 'localhost:5000/a/b:t']) {
        const img = await findImage(s, name);
        expect(img.descriptor.digest).toBe(o.manifest);
        await validateImage(s, img.descriptor);
      }
    });
  });

  it('round-trips a docker-archive: same image id, Docker schema2 manifest, from stdin and gzip-compressed', async () => {
    const arc = join(tmp.dir, 'docker.tar');
    expect((await runCli(['save', '--format', 'docker', '-o', arc, 'busybox'], { root })).code).toBe(0);
    const o = await original();
    for (const [i, input] of [await readFile(arc), gzipSync(await readFile(arc))].entries()) {
      const dest = join(tmp.dir, `dest${i}`);
      const r = await runCli(['load'], { root: dest, input });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('Loaded image: busybox:latest\n');
      await inStore(dest, async (s) => {
        const img = await findImage(s, 'busybox');
        expect(imageId(img)).toBe(o.id);
        expect(img.descriptor.mediaType).toBe(MediaTypes.DOCKER_MANIFEST);
        expect(img.manifest.layers[0]!.mediaType).toBe(MediaTypes.DOCKER_LAYER);
        await validateImage(s, img.descriptor);
      });
    }
  });

  it('keeps an image saved by id untagged and prints its id', async () => {
    const o = await original();
    const arc = join(tmp.dir, 'byid.tar');
    await runCli(['save', '-o', arc, o.id.slice(7, 19)], { root });
    const dest = join(tmp.dir, 'dest');
    const r = await runCli(['load', '-i', arc], { root: dest });
    expect(r.stdout).toBe(`Loaded image ID: ${o.id}\n`);
    await inStore(dest, async (s) => expect((await s.list()).map((e) => e.ref)).toEqual([undefined]));
  });

  it.each(['oci', 'docker'])('refuses a %s archive whose layer was altered, tagging nothing', async (format) => {
    const arc = join(tmp.dir, 'a.tar');
    await runCli(['save', '--format', format, '-o', arc, 'busybox'], { root });
    const x = join(tmp.dir, 'x');
    expect(spawnSync('sh', ['-c', `mkdir ${x} && tar -C ${x} -xf ${arc}`]).status).toBe(0);
    const img = await inStore(root, async (s) => loadImage(s, (await s.resolve(BUSYBOX_REF))!));
    const layerFile = join(x, 'blobs', 'sha256', img.config.rootfs.diff_ids[0]!.slice(7));
    const fh = await open(layerFile, 'r+');
    await fh.write(Buffer.from('X'), 0, 1, 600_000);
    await fh.close();
    const bad = join(tmp.dir, 'bad.tar');
    expect(spawnSync('sh', ['-c', `cd ${x} && tar -cf ${bad} *`]).status).toBe(0);
    const dest = join(tmp.dir, 'dest');
    const r = await runCli(['load', '-i', bad], { root: dest });
    expectOneLineError(r, /archive entry blobs\/sha256\/[0-9a-f]{64}: digest mismatch/);
    await inStore(dest, async (s) => expect(await s.list()).toEqual([]));
  });

  it('reads docker-archives with legacy member names and checks their layers against diff_ids', async () => {
    const arc = join(tmp.dir, 'a.tar');
    await runCli(['save', '--format', 'docker', '-o', arc, 'busybox'], { root });
    const img = await inStore(root, async (s) => loadImage(s, (await s.resolve(BUSYBOX_REF))!));
    const hex = img.config.rootfs.diff_ids[0]!.slice(7);
    const x = join(tmp.dir, 'x');
    // docker < 25 layout: <id>/layer.tar and <config hex>.json
    const script = `mkdir ${x} && tar -C ${x} -xf ${arc} && cd ${x} && mkdir ${hex} && mv blobs/sha256/${hex} ${hex}/layer.tar && mv blobs/sha256/${img.manifest.config.digest.slice(7)} ${img.manifest.config.digest.slice(7)}.json && rmdir blobs/sha256 blobs && sed -i 's#blobs/sha256/${hex}#${hex}/layer.tar#; s#blobs/sha256/\\([0-9a-f]*\\)"#\\1.json"#' manifest.json && tar -cf ../legacy.tar *`;
    expect(spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stderr).toBe('');
    const manifest = JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
    expect(manifest[0]).toMatchObject({ Config: `${img.manifest.config.digest.slice(7)}.json`, Layers: [`${hex}/layer.tar`] });
    const ok = await runCli(['load', '-i', join(tmp.dir, 'legacy.tar')], { root: join(tmp.dir, 'd1') });
    expect(ok.code, ok.stderr).toBe(0);
    await inStore(join(tmp.dir, 'd1'), async (s) => expect(imageId(await findImage(s, 'busybox'))).toBe(imageId(img)));
    // an altered layer.tar no longer matches the config's diff_id
    const fh = await open(join(x, hex, 'layer.tar'), 'r+');
    await fh.write(Buffer.from('X'), 0, 1, 600_000);
    await fh.close();
    expect(spawnSync('sh', ['-c', `cd ${x} && tar -cf ../legacy-bad.tar *`]).status).toBe(0);
    const bad = await runCli(['load', '-i', join(tmp.dir, 'legacy-bad.tar')], { root: join(tmp.dir, 'd2') });
    expectOneLineError(bad, new RegExp(`layer ${hex}/layer.tar diff_id digest mismatch: expected sha256:${hex}`));
    await inStore(join(tmp.dir, 'd2'), async (s) => expect(await s.list()).toEqual([]));
  });

  it('refuses an OCI archive that lacks a layer blob', async () => {
    const arc = join(tmp.dir, 'a.tar');
    await runCli(['save', '-o', arc, 'busybox'], { root });
    const img = await inStore(root, async (s) => loadImage(s, (await s.resolve(BUSYBOX_REF))!));
    const layer = img.manifest.layers[0]!.digest.slice(7);
    const x = join(tmp.dir, 'x');
    expect(spawnSync('sh', ['-c', `mkdir ${x} && tar -C ${x} -xf ${arc} && rm ${x}/blobs/sha256/${layer} && cd ${x} && tar -cf ../missing.tar *`]).status).toBe(0);
    const dest = join(tmp.dir, 'dest');
    expectOneLineError(await runCli(['load', '-i', join(tmp.dir, 'missing.tar')], { root: dest }), new RegExp(`blob not found in store: sha256:${layer} \\(archive has no blobs/sha256/${layer}\\)`));
    await inStore(dest, async (s) => expect(await s.list()).toEqual([]));
  });

  it('fails with one line for something that is not an image archive', async () => {
    const dest = join(tmp.dir, 'dest');
    expectOneLineError(await runCli(['load', '-i', join(tmp.dir, 'missing.tar')], { root: dest }), /missing\.tar/);
    const notTar = join(tmp.dir, 'empty.tar');
    spawnSync('sh', ['-c', `cd ${tmp.dir} && mkdir e && touch e/hello && tar -C e -cf ${notTar} hello`]);
    expectOneLineError(await runCli(['load', '-i', notTar], { root: dest }), /neither index.json \(OCI layout\) nor manifest.json \(docker-archive\) found/);
  });
});
