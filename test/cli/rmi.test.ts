import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
let manifestDigest: string;
let id: string;
beforeEach(async () => {
  ({ tmp, root } = await tmpBusyboxStore());
  const s = await OciStore.open(root);
  manifestDigest = (await s.resolve(BUSYBOX_REF))!.digest;
  await s.release();
  id = (await runCli(['inspect', '-f', '{{.Id}}', 'busybox'], { root })).stdout.trim();
});
afterEach(async () => tmp.cleanup());

const refs = async (): Promise<(string | undefined)[]> => {
  const s = await OciStore.open(root);
  const r = (await s.list()).map((e) => e.ref);
  await s.release();
  return r;
};
const blobs = async (): Promise<string[]> => readdir(join(root, 'blobs', 'sha256'));

async function fakeContainer(cid: string, image: string): Promise<void> {
  await mkdir(join(root, 'containers', cid), { recursive: true });
  await writeFile(join(root, 'containers', cid, 'state.json'), JSON.stringify({ id: cid, image, state: { status: 'exited' } }));
}

describe('imgbuild rmi', () => {
  it('only untags while other tags remain, then deletes the image and its blobs', async () => {
    await runCli(['tag', 'busybox', 'other:1'], { root });
    const r1 = await runCli(['rmi', 'busybox'], { root });
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stdout).toBe('Untagged: busybox:latest\n');
    expect(await refs()).toEqual(['docker.io/library/other:1']);
    expect(await blobs()).toHaveLength(3);
    const r2 = await runCli(['rmi', 'other:1'], { root });
    expect(r2.stdout).toBe(`Untagged: other:1\nDeleted: ${id}\n`);
    expect(await refs()).toEqual([]);
    expect(await blobs()).toEqual([]);
  });

  it('refuses an id with several tags unless forced', async () => {
    await runCli(['tag', 'busybox', 'other:1'], { root });
    expectOneLineError(await runCli(['rmi', id.slice(7, 19)], { root }), /unable to delete [0-9a-f]{12} \(must be forced\): image is referenced in multiple repositories \(busybox:latest, other:1\)/);
    const r = await runCli(['rmi', '-f', id.slice(7, 19)], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').sort().join('\n')).toBe(['', `Deleted: ${id}`, 'Untagged: busybox:latest', 'Untagged: other:1'].join('\n'));
    expect(await refs()).toEqual([]);
  });

  it('refuses an image a container was created from; -f untags and keeps it dangling', async () => {
    await fakeContainer('c0ffee00c0ffee00', manifestDigest);
    expectOneLineError(await runCli(['rmi', 'busybox'], { root }), /unable to remove busybox:latest \(must force\): container c0ffee00c0ff is using its image sha256:/);
    expect(await refs()).toEqual(['docker.io/library/busybox:latest']);
    const r = await runCli(['rmi', '-f', 'busybox'], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Untagged: busybox:latest\n');
    expect(await refs()).toEqual([undefined]);
    expect(await blobs()).toHaveLength(3);
  });

  it('removes what it can and reports each missing image', async () => {
    const r = await runCli(['rmi', 'nope:1', 'busybox', 'nope:2'], { root });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`Deleted: ${id}`);
    expect(r.stderr.trim().split('\n')).toEqual(['imgbuild: NOT_FOUND: image not found: nope:1', 'imgbuild: NOT_FOUND: image not found: nope:2']);
  });
});
