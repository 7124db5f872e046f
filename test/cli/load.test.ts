import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { open, readFile, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { tmpBusyboxStore, ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { HOSTILE, fixtureTar, storeImage } from '../helpers/hostile-image.js';
import { validateImage } from '../conformance/validate-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage, loadImage } from '../../src/store/images.js';
import { imageId } from '../../src/image/model.js';
import { MediaTypes } from '../../src/image/media-types.js';

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

const reEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const ingestLeft = (root: string): string[] => {
  try {
    return readdirSync(join(root, 'ingest'));
  } catch {
    return [];
  }
};

describe('imgbuild load refuses a hostile image before tagging it', () => {
  for (const [name, entry] of Object.entries(HOSTILE)) {
    it(`${name}: one line naming the layer and the entry; nothing tagged, the layer not stored`, async () => {
      const src = join(tmp.dir, 'src');
      const img = await storeImage(src, 'docker.io/library/evil:1', [fixtureTar(name)], { base: true });
      const arc = join(tmp.dir, 'evil.tar');
      expect((await runCli(['save', '-o', arc, 'evil:1'], { root: src })).code).toBe(0);
      const dest = join(tmp.dir, 'dest');
      const r = await runCli(['load', '-i', arc], { root: dest });
      const bad = img.layers[1]!.digest;
      expectOneLineError(r, new RegExp(`^imgbuild: INVALID_ARGUMENT: layer ${bad} refused: refused tar entry ${reEscape(JSON.stringify(entry))}: .+$`));
      expect(r.stdout).toBe('');
      await inStore(dest, async (s) => {
        expect(await s.list()).toEqual([]);
        expect(await s.info(bad)).toBeUndefined();
      });
      expect(ingestLeft(dest)).toEqual([]);
    });
  }

  it('docker-archive (plain layers), zstd-compressed archive, uncompressed layers: refused the same way', async () => {
    const src = join(tmp.dir, 'src');
    const img = await storeImage(src, 'docker.io/library/evil:1', [fixtureTar('whiteout-dotdot')], { base: true, compression: 'none' });
    const arc = join(tmp.dir, 'evil.tar');
    expect((await runCli(['save', '--format', 'docker', '-o', arc, 'evil:1'], { root: src })).code).toBe(0);
    const zst = spawnSync('zstd', ['-q', '-c', arc], { maxBuffer: 1 << 28 });
    expect(zst.status).toBe(0);
    for (const [i, input] of [await readFile(arc), zst.stdout].entries()) {
      const dest = join(tmp.dir, `dest${i}`);
      const r = await runCli(['load'], { root: dest, input });
      expectOneLineError(r, new RegExp(`^imgbuild: INVALID_ARGUMENT: layer ${img.layers[1]!.digest} refused: refused tar entry "a/\\.wh\\.\\.\\.": a whiteout naming "\\.\\." would delete outside its directory$`));
      await inStore(dest, async (s) => expect(await s.list()).toEqual([]));
    }
  });

  it('a small layer of a legacy docker-archive (kept in memory, <id>/layer.tar) is checked too', async () => {
    const src = join(tmp.dir, 'src');
    const img = await storeImage(src, 'docker.io/library/evil:1', [fixtureTar('hardlink-absolute-escape')], { compression: 'none' });
    const arc = join(tmp.dir, 'evil.tar');
    expect((await runCli(['save', '--format', 'docker', '-o', arc, 'evil:1'], { root: src })).code).toBe(0);
    const hex = img.layers[0]!.digest.slice(7);
    const x = join(tmp.dir, 'x');
    const script = `mkdir ${x} && tar -C ${x} -xf ${arc} && cd ${x} && mkdir ${hex} && mv blobs/sha256/${hex} ${hex}/layer.tar && sed -i 's#blobs/sha256/${hex}#${hex}/layer.tar#' manifest.json && tar -cf ../legacy.tar *`;
    expect(spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stderr).toBe('');
    const dest = join(tmp.dir, 'dest');
    const r = await runCli(['load', '-i', join(tmp.dir, 'legacy.tar')], { root: dest });
    expectOneLineError(r, new RegExp(`^imgbuild: INVALID_ARGUMENT: layer ${hex}/layer\\.tar refused: refused tar entry "hl": hard link target "/\\.\\./\\.\\./etc/passwd" leads outside the root$`));
    await inStore(dest, async (s) => {
      expect(await s.list()).toEqual([]);
      expect(await s.info(img.layers[0]!.digest)).toBeUndefined();
    });
  });

  it('tags none of an archive\'s images when one of them is hostile', async () => {
    const src = join(tmp.dir, 'src');
    await ensureBusybox(src);
    await storeImage(src, 'docker.io/library/evil:1', [fixtureTar('name-escape')]);
    const arc = join(tmp.dir, 'two.tar');
    expect((await runCli(['save', '-o', arc, 'busybox', 'evil:1'], { root: src })).code).toBe(0);
    const dest = join(tmp.dir, 'dest');
    expectOneLineError(await runCli(['load', '-i', arc], { root: dest }), /refused tar entry "\.\.\/escaped": its name leads outside the root$/);
    await inStore(dest, async (s) => expect(await s.list()).toEqual([]));
  });

  it('loads what applying accepts: absolute and climbing symlinks, whiteouts, opaque dirs, hard links', async () => {
    const src = join(tmp.dir, 'src');
    const tars = ['symlink-absolute', 'symlink-escape', 'whiteout', 'opaque-out-of-order', 'hardlink'].map(fixtureTar);
    await storeImage(src, 'docker.io/library/tricky:1', tars, { base: true });
    const arc = join(tmp.dir, 'tricky.tar');
    expect((await runCli(['save', '-o', arc, 'tricky:1'], { root: src })).code).toBe(0);
    const r = await runCli(['load', '-i', arc], { root: join(tmp.dir, 'dest') });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Loaded image: tricky:1\n');
  });
});

describe('imgbuild load: a truncated or malformed archive loads nothing, with one line', () => {
  /** busybox saved in `format`, compressed as asked. */
  async function archive(format: 'oci' | 'docker', c: 'none' | 'gzip' | 'zstd'): Promise<Buffer> {
    const arc = join(tmp.dir, `${format}.tar`);
    if (!existsSync(arc)) expect((await runCli(['save', '--format', format, '-o', arc, 'busybox'], { root })).code).toBe(0);
    const plain = await readFile(arc);
    if (c === 'gzip') return gzipSync(plain);
    if (c === 'zstd') return spawnSync('zstd', ['-q', '-c'], { input: plain, maxBuffer: 1 << 28 }).stdout;
    return plain;
  }
  let n = 0;
  async function expectNothingLoaded(input: Buffer, re: RegExp): Promise<void> {
    const dest = join(tmp.dir, `cut-${++n}`);
    const r = await runCli(['load'], { root: dest, input });
    expectOneLineError(r, re);
    expect(r.stderr).not.toMatch(/INTERNAL|bug/);
    expect(r.stdout).toBe('');
    await inStore(dest, async (s) => expect(await s.list()).toEqual([]));
    expect(ingestLeft(dest)).toEqual([]);
  }

  for (const format of ['oci', 'docker'] as const) {
    it(`${format}: cut inside a header, inside the layer blob, at a member boundary`, async () => {
      const plain = await archive(format, 'none');
      await expectNothingLoaded(plain.subarray(0, 300), /^imgbuild: INVALID_ARGUMENT: invalid image archive stdin: truncated \(invalid tar stream at byte 0: unexpected end of data \(wanted 512 bytes, have 300\)\)$/);
      await expectNothingLoaded(plain.subarray(0, plain.length >> 1), /^imgbuild: INVALID_ARGUMENT: invalid image archive stdin: truncated in member blobs\/sha256\/[0-9a-f]{64} \(invalid tar stream at byte \d+: unexpected end of data inside an entry body \(\d+ bytes missing\)\)$/);
      await expectNothingLoaded(plain.subarray(0, 1024), /: neither index\.json \(OCI layout\) nor manifest\.json \(docker-archive\) found \(the archive ends without its end-of-archive marker: truncated\?\)$/);
    });

    for (const c of ['gzip', 'zstd'] as const) {
      it(`${format}, ${c}-compressed: cut early and in the middle`, async () => {
        const data = await archive(format, c);
        for (const cut of [100, data.length >> 1, data.length - 40]) {
          await expectNothingLoaded(data.subarray(0, cut), new RegExp(`^imgbuild: INVALID_ARGUMENT: invalid image archive stdin: ${c} data is truncated or corrupt`));
        }
      });
    }
  }

  it('bad index.json, manifest.json, manifests and configs; archives holding no image', async () => {
    await archive('oci', 'none');
    await archive('docker', 'none');
    const x = join(tmp.dir, 'x');
    const y = join(tmp.dir, 'y');
    expect(spawnSync('sh', ['-c', `mkdir ${x} ${y} && tar -C ${x} -xf ${join(tmp.dir, 'oci.tar')} && tar -C ${y} -xf ${join(tmp.dir, 'docker.tar')}`]).status).toBe(0);
    const pack = (dir: string): Buffer => spawnSync('sh', ['-c', `cd ${dir} && tar -cf - *`], { maxBuffer: 1 << 28 }).stdout;
    const index = await readFile(join(x, 'index.json'), 'utf8');
    const manifest = await readFile(join(y, 'manifest.json'), 'utf8');
    const cases: [string, string, string, RegExp][] = [
      [x, 'index.json', '{"schemaVersion":2,"manifests":[]}', /: it holds no images \(index\.json lists no manifests\)$/],
      [x, 'index.json', '{"schemaVersion":2,', /: index\.json is not valid JSON \(.+\)$/],
      [x, 'index.json', '{"schemaVersion":2}', /: index\.json has no "manifests" array$/],
      [x, 'index.json', '{"manifests":[{"mediaType":"x","size":1}]}', /: index\.json entry 0 is not a descriptor \(mediaType, digest, size\)$/],
      [x, 'index.json', '{"manifests":[{"mediaType":"x","size":1,"digest":"sha256:zz"}]}', /: index\.json entry 0 has an invalid digest "sha256:zz"$/],
      [y, 'manifest.json', '[]', /: it holds no images \(manifest\.json lists none\)$/],
      [y, 'manifest.json', 'nope\n', /: manifest\.json is not valid JSON \(.+\)$/],
      [y, 'manifest.json', '[{"Config":"c.json","Layers":[1]}]', /: manifest\.json entry 0 lacks Config or Layers$/],
    ];
    for (const [dir, file, text, re] of cases) {
      await writeFile(join(dir, file), text);
      await expectNothingLoaded(pack(dir), re);
    }
    await writeFile(join(x, 'index.json'), index);
    await writeFile(join(y, 'manifest.json'), manifest);
    // a manifest blob (named by its digest) that is not JSON
    const junk = Buffer.from('not json');
    const jd = createHash('sha256').update(junk).digest('hex');
    await writeFile(join(x, 'blobs', 'sha256', jd), junk);
    await writeFile(join(x, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaTypes.OCI_MANIFEST, digest: `sha256:${jd}`, size: junk.length }] }));
    await expectNothingLoaded(pack(x), new RegExp(`: manifest sha256:${jd} is not valid JSON \\(.+\\)$`));
  });
});
