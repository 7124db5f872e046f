import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage, writeImage } from '../../src/store/images.js';
import { chainIds } from '../../src/image/model.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { unpackImage } from '../../src/snapshots/unpack.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
beforeEach(async () => {
  ({ tmp, root } = await tmpBusyboxStore());
});
afterEach(async () => tmp.cleanup());

/** An untagged image with its own config (and a unique extra blob) next to busybox. */
async function addDangling(): Promise<string> {
  const s = await OciStore.open(root);
  const base = await loadImage(s, (await s.resolve(BUSYBOX_REF))!);
  const d = await writeImage(s, { ...base.config, created: '2024-02-02T00:00:00Z' }, base.manifest.layers);
  await s.keepUntagged(d);
  await s.put(Buffer.from('unreferenced junk'), MediaTypes.OCI_LAYER);
  await s.release();
  return d.digest;
}

const refs = async (): Promise<(string | undefined)[]> => {
  const s = await OciStore.open(root);
  const r = (await s.list()).map((e) => e.ref);
  await s.release();
  return r;
};

describe('imgbuild prune', () => {
  it('removes dangling images and unreferenced blobs, keeps tagged ones', async () => {
    await addDangling();
    expect(await readdir(join(root, 'blobs', 'sha256'))).toHaveLength(6);
    const r = await runCli(['prune'], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Deleted Images:\ndeleted: sha256:[0-9a-f]{64}\n\nTotal reclaimed space: \d+B\n$/);
    expect(await refs()).toEqual([BUSYBOX_REF]);
    expect(await readdir(join(root, 'blobs', 'sha256'))).toHaveLength(3);
    const again = await runCli(['prune'], { root });
    expect(again.stdout).toBe('Total reclaimed space: 0B\n');
  });

  it('-a removes every image no container uses, and their snapshots', async () => {
    // unpack busybox into overlay snapshots, as a run would
    const s = await OciStore.open(root);
    const img = await loadImage(s, (await s.resolve(BUSYBOX_REF))!);
    const sn = await OverlaySnapshotter.open(join(root, 'overlay'));
    const top = await unpackImage(s, sn, img.manifest.layers, img.config.rootfs.diff_ids);
    expect(top).toBe(chainIds(img.config.rootfs.diff_ids).at(-1));
    await s.release();
    // a second image used by a container survives -a
    const used = await addDangling();
    await runCli(['tag', used, 'used:1'], { root });
    await mkdir(join(root, 'containers', 'abc'), { recursive: true });
    await writeFile(join(root, 'containers', 'abc', 'state.json'), JSON.stringify({ id: 'abc', image: used }));

    const r = await runCli(['prune', '-a'], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('untagged: busybox:latest');
    expect(r.stdout).not.toContain('used:1');
    expect(await refs()).toEqual(['docker.io/library/used:1']);
    // the layer is still needed by used:1, so its snapshot stays
    const keys: string[] = [];
    await sn.walk((i) => void keys.push(i.key));
    expect(keys).toContain(top);

    // once used:1 is gone too, the snapshot and all blobs go
    await writeFile(join(root, 'containers', 'abc', 'state.json'), JSON.stringify({ id: 'abc', image: 'sha256:' + '0'.repeat(64) }));
    const r2 = await runCli(['prune', '-a'], { root });
    expect(r2.stdout).toMatch(/untagged: used:1\ndeleted: sha256:/);
    expect(r2.stdout).toMatch(/Deleted snapshots: 1\nTotal reclaimed space: [\d.]+MB\n$/);
    const after: string[] = [];
    await (await OverlaySnapshotter.open(join(root, 'overlay'))).walk((i) => void after.push(i.key));
    expect(after).toEqual([]);
    expect(await readdir(join(root, 'blobs', 'sha256'))).toEqual([]);
  });
});
