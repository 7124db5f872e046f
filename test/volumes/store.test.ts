/**
 * The volume store on a real directory tree: users recorded under the lock, anonymous volumes
 * going with their last user, stale users counting for nothing, prune and rm refusing volumes in use.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { createVolume, getVolume, listVolumes, pruneVolumes, releaseVolumes, removeVolume, sweepVolumes, useVolumes, volumeUsage } from '../../src/volumes/store.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let live: Set<string>;
const o = (): { live: () => Promise<Set<string>> } => ({ live: async () => live });
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

beforeEach(async () => {
  tmp = await makeTmp('imgbuild-volstore-');
  root = tmp.dir;
  live = new Set();
});
afterEach(async () => tmp.cleanup());

describe('volume store', () => {
  it('makes a volume on first use and records each user; rm refuses while one lives', async () => {
    const [got] = await useVolumes(root, A, [{ name: 'data' }]);
    expect(got).toMatchObject({ created: true, volume: { Name: 'data', Driver: 'local', Mountpoint: join(root, 'volumes', 'data', '_data'), Labels: {} } });
    expect((await useVolumes(root, B, [{ name: 'data' }]))[0]!.created).toBe(false);
    live = new Set([A, B]);
    await expect(removeVolume(root, 'data', o())).rejects.toThrow(`remove data: volume is in use - [${A} ${B}]`);
    // A user whose container is gone counts for nothing (its file is dropped).
    live = new Set([B]);
    await expect(removeVolume(root, 'data', o())).rejects.toThrow(`volume is in use - [${B}]`);
    expect(await readdir(join(root, 'volumes', 'data', 'users'))).toEqual([B]);
    await releaseVolumes(root, B, ['data'], { removeAnonymous: true, ...o() }); // named: kept
    await removeVolume(root, 'data', o());
    await expect(getVolume(root, 'data')).rejects.toThrow('no such volume: data');
    await removeVolume(root, 'data', { force: true, ...o() });
    expect((await readdir(join(root, 'volumes'))).filter((n) => !n.endsWith('.lock'))).toEqual([]);
  });

  it('an anonymous volume goes with its last live user, and only with removeAnonymous', async () => {
    const volume = (await useVolumes(root, A, [{}]))[0]!.volume;
    expect(volume.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(volume.Labels).toEqual({ 'com.docker.volume.anonymous': '' });
    await useVolumes(root, B, [{ name: volume.Name }]);
    live = new Set([A, B]);
    expect(await releaseVolumes(root, A, [volume.Name], { removeAnonymous: true, ...o() })).toEqual([]); // B still uses it
    live = new Set([B]);
    expect(await releaseVolumes(root, B, [volume.Name], { ...o() })).toEqual([]);
    expect((await listVolumes(root)).map((v) => v.Name)).toEqual([volume.Name]);
    // Unused and anonymous: prune takes it; a named unused one only with all.
    await createVolume(root, { name: 'named', labels: { keep: '1' } });
    await writeFile(join(root, 'volumes', volume.Name, '_data', 'f'), '12345');
    expect(await pruneVolumes(root, o())).toEqual({ removed: [volume.Name], bytes: 5 });
    expect((await pruneVolumes(root, { all: true, filters: ['label!=keep'], ...o() })).removed).toEqual([]);
    expect((await pruneVolumes(root, { all: true, ...o() })).removed).toEqual(['named']);
  });

  it('a failed request undoes itself: no user file, nothing made', async () => {
    await createVolume(root, { name: 'exists' });
    await expect(useVolumes(root, A, [{ name: 'exists' }, { name: 'x' }])).rejects.toThrow(/create x: volume name is too short/);
    // Failing under the lock, after one volume was made and another used: both undone.
    await createVolume(root, { name: 'broken' });
    const { rm } = await import('node:fs/promises');
    await rm(join(root, 'volumes', 'broken', 'users'), { recursive: true });
    await writeFile(join(root, 'volumes', 'broken', 'users'), '');
    await expect(useVolumes(root, A, [{ name: 'exists' }, { name: 'fresh' }, { name: 'broken' }])).rejects.toThrow(/ENOTDIR/);
    expect(await readdir(join(root, 'volumes', 'exists', 'users'))).toEqual([]);
    expect((await listVolumes(root)).map((v) => v.Name)).toEqual(['broken', 'exists']);
  });

  it('reports sizes (hard links once) and users for system df', async () => {
    await useVolumes(root, A, [{ name: 'sized' }]);
    const d = join(root, 'volumes', 'sized', '_data');
    await writeFile(join(d, 'one'), 'x'.repeat(100));
    const { link } = await import('node:fs/promises');
    await link(join(d, 'one'), join(d, 'two'));
    live = new Set([A]);
    expect(await volumeUsage(root, o())).toMatchObject([{ Name: 'sized', size: 100, users: [A] }]);
    live = new Set();
    expect(await volumeUsage(root, { ...o(), withSize: false })).toMatchObject([{ Name: 'sized', size: -1, users: [] }]);
  });

  it('sweeps what killed processes left: half-made and half-removed volumes, a dead owner\'s lock', async () => {
    await createVolume(root, { name: 'kept' });
    const { mkdir } = await import('node:fs/promises');
    const dead = 2 ** 22 + 17; // above pid_max's default: no such process
    await mkdir(join(root, 'volumes', `.creating-half-${dead}-0badc0de`, '_data'), { recursive: true });
    await mkdir(join(root, 'volumes', `.creating-live-${process.pid}-0badc0de`), { recursive: true });
    await mkdir(join(root, 'volumes', '.removing-gone-12345678', '_data'), { recursive: true });
    await writeFile(join(root, 'volumes', '.volumes.lock'), `${dead} 1`);
    await sweepVolumes(root);
    expect((await readdir(join(root, 'volumes'))).sort()).toEqual([`.creating-live-${process.pid}-0badc0de`, 'kept']);
  });
});
