/**
 * VfsSnapshotter on real directories: the snapshotter conformance suite, and the comparison with
 * the parent that makes a layer (vfs-diff.ts) — deletions, replaced and touched entries, hard
 * links, opaque dirs, the run's placeholders — packed as an overlay upper dir would be.
 */
import { spawnSync } from 'node:child_process';
import { chmod, link, lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { snapshotterSuite } from '../conformance/snapshotter.js';
import { VfsSnapshotter } from '../../src/snapshots/vfs.js';
import { gatherChanges } from '../../src/snapshots/vfs-diff.js';
import { packDir } from '../../src/tar/pack.js';
import { readTar } from '../../src/tar/reader.js';
import { makeTmp, mountsUnder } from '../helpers/tmp.js';

snapshotterSuite('vfs', (root) => VfsSnapshotter.open(root));

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-vfs-');
});
afterEach(async () => {
  await tmp.cleanup();
});

async function layerOf(sn: VfsSnapshotter, key: string): Promise<string[]> {
  const base = await sn.changeBase(key);
  const out = join(tmp.dir, `out-${key}`);
  await mkdir(out);
  gatherChanges(base.fs, base.parentFs, out, { copiedAt: base.copiedAt, skip: new Set([...(base.init?.files ?? []), ...(base.init?.dirs ?? [])]) });
  const names: string[] = [];
  for await (const e of readTar(packDir(out, { mode: 'overlay' }))) {
    names.push(`${e.header.type} ${e.header.name}${e.header.type === 'link' ? ` -> ${e.header.linkname}` : ''}`);
    if (e.body) for await (const _ of e.body) void _;
  }
  await rm(out, { recursive: true });
  return names;
}

describe('vfs changes', () => {
  it('records deletions, replacements, touched content, hard links and opaque dirs; leaves placeholders out', async () => {
    const sn = await VfsSnapshotter.open(join(tmp.dir, 'vfs'));
    await sn.prepare('b', undefined);
    const b = await sn.upperDir('b');
    await mkdir(join(b, 'etc'));
    await mkdir(join(b, 'd/sub'), { recursive: true });
    await writeFile(join(b, 'd/sub/x'), 'x');
    await writeFile(join(b, 'same'), 'aaaa');
    await writeFile(join(b, 'gone'), 'g');
    await writeFile(join(b, 'becomes-dir'), 'f');
    await writeFile(join(b, 'kept'), 'k');
    expect(await layerOf(sn, 'b')).toEqual(['file becomes-dir', 'dir d', 'dir d/sub', 'file d/sub/x', 'dir etc', 'file gone', 'file kept', 'file same']);
    await sn.commit('base', 'b');

    await sn.prepare('c', 'base', { init: { files: ['/etc/hosts', '/etc/resolv.conf'], dirs: ['/vol'] } });
    const c = await sn.upperDir('c');
    // Placeholders exist in the run's rootfs without changing their dir's time.
    expect((await stat(join(c, 'etc/hosts'))).size).toBe(0);
    expect((await stat(join(c, 'etc'))).mtimeMs).toBe((await stat(join(b, 'etc'))).mtimeMs);
    await writeFile(join(c, 'same'), 'bbbb'); // same size, time put back exactly: only the content tells
    expect(spawnSync('touch', ['-r', join(b, 'same'), join(c, 'same')]).status).toBe(0);
    expect((await stat(join(c, 'same'), { bigint: true })).mtimeNs).toBe((await stat(join(b, 'same'), { bigint: true })).mtimeNs);
    await rm(join(c, 'gone'));
    await rm(join(c, 'becomes-dir'));
    await mkdir(join(c, 'becomes-dir'));
    await link(join(c, 'kept'), join(c, 'kept2'));
    await chmod(join(c, 'd'), 0o700);
    const layer = await layerOf(sn, 'c');
    expect(layer).toEqual([
      'file .wh.gone',
      'dir becomes-dir',
      'file becomes-dir/.wh..wh..opq',
      'dir d',
      'file kept',
      'link kept2 -> kept',
      'file same',
    ]);
    await sn.commit('top', 'c');
    // The committed rootfs has no placeholders left.
    expect(await readdir(join(c, 'etc'))).toEqual([]);
    expect(await lstat(join(c, 'vol')).catch(() => undefined)).toBeUndefined();
    expect(await mountsUnder(tmp.dir)).toEqual([]);
  });

  it('a view is the parent directory itself, read-only, with nothing copied', async () => {
    const sn = await VfsSnapshotter.open(join(tmp.dir, 'vfs'));
    await sn.prepare('b', undefined);
    await writeFile(join(await sn.upperDir('b'), 'f'), 'f');
    await sn.commit('base', 'b');
    const m = await sn.view('v', 'base');
    expect(m).toEqual([{ type: 'bind', source: await sn.upperDir('base'), options: ['rbind', 'ro'] }]);
  });

  it('whiteouts are char 0:0 devices any user may make (Linux >= 5.8)', () => {
    const r = spawnSync('mknod', [join(tmp.dir, 'w'), 'c', '0', '0']);
    expect(r.status).toBe(0);
  });
});
