/**
 * OverlaySnapshotter on real overlayfs: the conformance suite plus what is particular to the
 * overlay form — init layers, crash leftovers, concurrent processes, relative mount options,
 * unpacking images into shared chain-ID snapshots, upper-dir diffs and pruning.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmod, cp, lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { snapshotterSuite, readTree, withMount } from '../conformance/snapshotter.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { probeOverlay } from '../../src/snapshots/probe.js';
import { OverlayUnsupportedError } from '../../src/snapshots/errors.js';
import { unpackImage } from '../../src/snapshots/unpack.js';
import { diffSnapshot, pruneSnapshots } from '../../src/snapshots/diff.js';
import { OciStore } from '../../src/store/store.js';
import { Lease } from '../../src/store/lease.js';
import { openLayerTar, writeLayerBlob, type LayerBlob } from '../../src/store/layers.js';
import { readTar } from '../../src/tar/reader.js';
import { applyLayer } from '../../src/tar/apply.js';
import { chainIds } from '../../src/image/model.js';
import type { Digest } from '../../src/image/digest.js';
import { makeTmp, mountsUnder } from '../helpers/tmp.js';

const run = promisify(execFile);

snapshotterSuite('overlay', (root) => OverlaySnapshotter.open(root));

interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'character-device';
  body?: string;
  mode?: number;
  linkname?: string;
}

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((res, rej) => {
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(1_700_000_000_000), linkname: e.linkname };
    const cb = (res: () => void, rej: (x: Error) => void) => (err?: Error | null) => (err ? rej(err) : res());
    await new Promise<void>((res, rej) => {
      if (type === 'file') pack.entry(header, e.body ?? '', cb(res, rej));
      else pack.entry(header, cb(res, rej));
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

async function layerOf(store: OciStore, entries: Entry[]): Promise<LayerBlob> {
  return writeLayerBlob(store, Readable.from([await tarOf(entries)]), { compression: 'gzip' });
}

async function tarNames(stream: Readable): Promise<string[]> {
  const names: string[] = [];
  for await (const e of readTar(stream)) names.push(e.header.type === 'dir' ? `${e.header.name}/` : e.header.name);
  return names;
}

/** The snapshot keys a lease's file lists. */
async function leasedSnapshots(storeRoot: string, lease: Lease): Promise<string[]> {
  const text = await readFile(join(storeRoot, 'leases', `${lease.id}.jsonl`), 'utf8');
  return text.split('\n').filter(Boolean).flatMap((l) => (JSON.parse(l) as { snapshots: string[] }).snapshots);
}

async function snapshotDirs(sn: OverlaySnapshotter): Promise<string[]> {
  return (await readdir(sn.snapshotsDir)).sort();
}

describe('overlay snapshotter specifics', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let sn: OverlaySnapshotter;
  let store: OciStore;

  beforeEach(async () => {
    const t = await makeTmp('imgbuild-overlay-');
    dir = t.dir;
    cleanup = t.cleanup;
    store = await OciStore.open(join(dir, 'store'));
    sn = await OverlaySnapshotter.open(join(dir, 'store', 'overlay'));
  });

  afterEach(async () => {
    const left = await mountsUnder(dir);
    await store.release?.();
    await cleanup();
    expect(left, 'mounts left behind by the test').toEqual([]);
  });

  it('probes overlayfs once and caches the result in the root', async () => {
    const p = sn.probe;
    expect(p.supported).toBe(true);
    expect(p.multipleLowers).toBe(true);
    // Running as root in the initial user namespace: no userxattr, trusted.* opaque markers.
    expect(p.userxattr).toBe(false);
    expect(p.opaqueXattr).toBe('trusted.overlay.opaque');
    expect(p.options).toContain('index=off');
    expect(p.options).toContain('redirect_dir=off');
    // Linux 5.10 and later (this machine's kernel is 6.x).
    expect(p.volatile).toBe(true);
    const cached = JSON.parse(await readFile(join(sn.root, 'probe.json'), 'utf8')) as { checkedAt: string };
    expect(cached.checkedAt).toBe(p.checkedAt);
    expect((await probeOverlay(sn.root)).checkedAt).toBe(p.checkedAt);
    expect((await probeOverlay(sn.root, { refresh: true })).checkedAt).not.toBe(p.checkedAt);
    // No probe scratch dirs are left behind.
    expect((await readdir(sn.root)).filter((n) => n.startsWith('probe-'))).toEqual([]);
  });

  it('reports a root where overlay cannot work (an overlayfs upper) as OverlayUnsupportedError', async () => {
    const base = join(dir, 'nested');
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(base, d), { recursive: true });
    const m = { type: 'overlay' as const, source: 'overlay', cwd: base, options: ['lowerdir=l', 'upperdir=u', 'workdir=w'] };
    const err = await withMount(base, [m], (target) =>
      OverlaySnapshotter.open(join(target, 'root')).then(
        () => undefined,
        (e: unknown) => e as OverlayUnsupportedError,
      ),
    );
    expect(err).toBeInstanceOf(OverlayUnsupportedError);
    expect(err?.code).toBe('NOT_IMPLEMENTED');
    expect(err?.probe.supported).toBe(false);
    expect(err?.probe.reason).toMatch(/mount .*failed/);
    // A negative result is not cached.
    expect(await readdir(join(base, 'u', 'root'))).toEqual(['snapshots']);
  });

  it('gives relative overlay options with cwd; 130 layers fit where absolute paths would not', async () => {
    let parent: string | undefined;
    for (let i = 0; i < 130; i++) {
      await sn.prepare(`a${i}`, parent);
      await writeFile(join(await sn.upperDir(`a${i}`), `f${i}`), String(i));
      await sn.commit(`c${i}`, `a${i}`);
      parent = `c${i}`;
    }
    const [m] = await sn.prepare('top', parent);
    expect(m?.type).toBe('overlay');
    expect(m?.cwd).toBe(sn.snapshotsDir);
    const lower = m!.options.find((o) => o.startsWith('lowerdir='))!;
    expect(lower.split(':')).toHaveLength(130);
    expect(lower).toMatch(/^lowerdir=130\/fs:129\/fs:/);
    expect(m!.options).toContain('upperdir=131/fs');
    expect(m!.options.join(',').length).toBeLessThan(4096);
    const absolute = lower.split(/[=:]/).slice(1).map((l) => join(sn.snapshotsDir, l)).join(':');
    expect(absolute.length).toBeGreaterThan(4096);
    await withMount(dir, [m!], async (r) => {
      expect((await readdir(r)).length).toBe(130);
      expect(await readFile(join(r, 'f0'), 'utf8')).toBe('0');
    });
    // A read-only single committed layer is a bind mount; a stack is an overlay without upper.
    expect((await sn.mounts('c0'))[0]).toMatchObject({ type: 'bind', options: ['rbind', 'ro'] });
    const [v] = await sn.mounts('c1');
    expect(v?.options.some((o) => o.startsWith('upperdir='))).toBe(false);
  });

  it('init layer: placeholders show in the merged view but never in the diff or the commit', async () => {
    await sn.prepare('base-a');
    const up = await sn.upperDir('base-a');
    await mkdir(join(up, 'etc'), { mode: 0o750 });
    await chmod(join(up, 'etc'), 0o750);
    await writeFile(join(up, 'etc', 'hosts'), 'image hosts\n');
    await mkdir(join(up, 'tmp'));
    await chmod(join(up, 'tmp'), 0o1777);
    await sn.commit('base', 'base-a');

    const init = { files: ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/run/secrets/x'], dirs: ['/data', '/tmp/vol'] };
    const mounts = await sn.prepare('step', 'base', { init });
    await withMount(dir, mounts, async (r) => {
      expect(await readFile(join(r, 'etc', 'resolv.conf'), 'utf8')).toBe('');
      expect(await readFile(join(r, 'etc', 'hostname'), 'utf8')).toBe('');
      expect((await stat(join(r, 'data'))).isDirectory()).toBe(true);
      expect((await stat(join(r, 'run', 'secrets', 'x'))).isFile()).toBe(true);
      expect((await stat(join(r, 'tmp', 'vol'))).isDirectory()).toBe(true);
      // Dirs the init layer shares with the image keep the image's attributes.
      expect((await stat(join(r, 'etc'))).mode & 0o7777).toBe(0o750);
      expect((await stat(join(r, 'tmp'))).mode & 0o7777).toBe(0o1777);
      await writeFile(join(r, 'app.txt'), 'app\n');
    });
    const blob = await diffSnapshot(store, sn, 'step', { compression: 'none' });
    expect(await tarNames(await openLayerTar(store, blob))).toEqual(['app.txt']);
    await sn.commit('stepped', 'step');
    const id = (await readdir(sn.snapshotsDir)).sort((a, b) => Number(b) - Number(a))[0]!;
    expect(await readdir(join(sn.snapshotsDir, id))).toEqual(['fs']);
    await withMount(dir, await sn.view('v', 'stepped'), async (r) => {
      expect(await readTree(r)).toEqual({
        'app.txt': 'app\n',
        etc: '<dir>',
        'etc/hosts': 'image hosts\n',
        tmp: '<dir>',
      });
    });
  });

  it('an interrupted create or remove leaves nothing visible and is cleaned on open', async () => {
    await sn.prepare('a');
    await writeFile(join(await sn.upperDir('a'), 'f'), 'x');
    await mkdir(join(sn.root, 'new-abc123', 'fs'), { recursive: true });
    await mkdir(join(sn.root, 'rm-7', 'fs'), { recursive: true });
    await mkdir(join(sn.snapshotsDir, '77', 'fs'), { recursive: true });
    await writeFile(join(sn.root, '.metadata.json.123.abcd.tmp'), '{"half');
    const keys: string[] = [];
    await sn.walk((i) => void keys.push(i.key));
    expect(keys).toEqual(['a']);
    const again = await OverlaySnapshotter.open(sn.root);
    const names = await readdir(sn.root);
    expect(names.filter((n) => n.startsWith('new-') || n.startsWith('rm-') || n.endsWith('.tmp'))).toEqual([]);
    expect(await snapshotDirs(again)).toEqual(['1']);
    expect(await readFile(join(await again.upperDir('a'), 'f'), 'utf8')).toBe('x');
    // The next id is not one a crash could have left a directory under.
    await again.prepare('b');
    expect(await snapshotDirs(again)).toEqual(['1', '2']);
  });

  it('two processes preparing at once never lose or duplicate a snapshot', async () => {
    await sn.prepare('base-a');
    await sn.commit('base', 'base-a');
    const script = join(import.meta.dirname, 'fixtures', 'prepare-many.ts');
    const count = 15;
    const outs = await Promise.all(
      ['p', 'q'].map((n) => run(process.execPath, ['--import', 'tsx', script, sn.root, n, String(count)], { cwd: join(import.meta.dirname, '../..') })),
    );
    const results = outs.map((o) => JSON.parse(o.stdout) as { created: string[]; lost: number });
    const created = results.flatMap((r) => r.created);
    expect(new Set(created).size).toBe(created.length);
    expect(results[0]!.lost + results[1]!.lost).toBe(count);
    const infos: string[] = [];
    await sn.walk((i) => void infos.push(i.key));
    expect(infos.sort()).toEqual(['base', ...created].sort());
    const meta = JSON.parse(await readFile(join(sn.root, 'metadata.json'), 'utf8')) as { snapshots: Record<string, { id: number }> };
    const ids = Object.values(meta.snapshots).map((r) => String(r.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect(await snapshotDirs(sn)).toEqual(ids.sort());
  }, 60_000);

  it('rootless (user namespace): probe picks userxattr; unpack, whiteouts and diff use user.overlay.*', async () => {
    const script = join(import.meta.dirname, 'fixtures', 'rootless.ts');
    const out = await run('unshare', ['--user', '--map-root-user', '--mount', process.execPath, '--import', 'tsx', script, join(dir, 'rootless')], {
      cwd: join(import.meta.dirname, '../..'),
    });
    const r = JSON.parse(out.stdout) as { probe: { userxattr: boolean; opaqueXattr: string; options: string[] }; unpacked: Record<string, string>; names: string[] };
    expect(r.probe.userxattr).toBe(true);
    expect(r.probe.opaqueXattr).toBe('user.overlay.opaque');
    expect(r.probe.options).toContain('userxattr');
    expect(r.unpacked).toEqual({ d: '<dir>', 'd/new': 'new', k: 'k' });
    expect(r.names).toEqual(['.wh.k', 'd', 'd/.wh..wh..opq', 'd/again']);
  }, 60_000);

  it('unpacks images into chain-ID snapshots shared between images', async () => {
    const base = await layerOf(store, [
      { name: 'etc/', type: 'directory' },
      { name: 'etc/os', body: 'base\n' },
      { name: 'rm-me', body: 'x' },
      { name: 'opq/', type: 'directory' },
      { name: 'opq/old', body: 'old' },
    ]);
    const a1 = await layerOf(store, [
      { name: '.wh.rm-me' },
      { name: 'opq/', type: 'directory' },
      { name: 'opq/.wh..wh..opq' },
      { name: 'opq/new', body: 'new' },
      { name: 'a', body: 'a' },
    ]);
    const b1 = await layerOf(store, [{ name: 'b', body: 'b' }]);
    const [topA, topB] = await Promise.all([
      unpackImage(store, sn, [base, a1], [base.diffId, a1.diffId]),
      unpackImage(store, sn, [base, b1], [base.diffId, b1.diffId]),
    ]);
    expect(topA).toBe(chainIds([base.diffId, a1.diffId])[1]);
    // Unpacking again (and concurrently) finds everything committed.
    const [again1, again2] = await Promise.all([
      unpackImage(store, sn, [base, a1], [base.diffId, a1.diffId]),
      unpackImage(store, sn, [base, a1], [base.diffId, a1.diffId]),
    ]);
    expect([again1, again2]).toEqual([topA, topA]);
    const infos: { key: string; kind: string; parent?: string }[] = [];
    await sn.walk((i) => void infos.push(i));
    expect(infos.map((i) => i.key).sort()).toEqual([base.diffId, topA, topB].sort());
    expect(infos.every((i) => i.kind === 'committed')).toBe(true);
    expect(await snapshotDirs(sn)).toHaveLength(3);
    expect((await sn.stat(topA!)).parent).toBe(base.diffId);
    expect((await sn.stat(topB!)).parent).toBe(base.diffId);
    // In overlay form the whiteout is a 0:0 char device and the opaque dir carries the xattr.
    const aUpper = await sn.upperDir(topA!);
    expect((await lstat(join(aUpper, 'rm-me'))).isCharacterDevice()).toBe(true);
    await withMount(dir, await sn.view('va', topA), async (r) => {
      expect(await readTree(r)).toEqual({ a: 'a', etc: '<dir>', 'etc/os': 'base\n', opq: '<dir>', 'opq/new': 'new' });
    });
    await withMount(dir, await sn.view('vb', topB), async (r) => {
      expect(await readTree(r)).toEqual({ b: 'b', etc: '<dir>', 'etc/os': 'base\n', opq: '<dir>', 'opq/old': 'old', 'rm-me': 'x' });
    });
    expect(await unpackImage(store, sn, [], [])).toBeUndefined();
  });

  it('a refused or mismatching layer leaves no snapshot behind', async () => {
    const base = await layerOf(store, [{ name: 'ok', body: 'ok' }]);
    const evil = await layerOf(store, [
      { name: 'fine', body: 'fine' },
      { name: '../escape', body: 'evil' },
    ]);
    const err = await unpackImage(store, sn, [base, evil], [base.diffId, evil.diffId]).then(
      () => undefined,
      (e: unknown) => e as { name: string },
    );
    expect(err?.name).toBe('UnsafePathError');
    const keys: string[] = [];
    await sn.walk((i) => void keys.push(i.key));
    expect(keys).toEqual([base.diffId]);
    expect(await snapshotDirs(sn)).toHaveLength(1);
    expect(await readdir(join(dir, 'store'))).not.toContain('escape');

    const other = await layerOf(store, [{ name: 'x', body: 'x' }]);
    const wrong = ('sha256:' + '0'.repeat(64)) as Digest;
    const err2 = await unpackImage(store, sn, [base, other], [base.diffId, wrong]).then(
      () => undefined,
      (e: unknown) => e as { name: string },
    );
    expect(err2?.name).toBe('DigestMismatchError');
    const keys2: string[] = [];
    await sn.walk((i) => void keys2.push(i.key));
    expect(keys2).toEqual([base.diffId]);
    expect(await snapshotDirs(sn)).toHaveLength(1);
  });

  it('diff of a real upper dir gives whiteouts and opaque markers that flatten to the merged tree', async () => {
    const base = await layerOf(store, [
      { name: 'a', body: 'a' },
      { name: 'keep', body: 'keep' },
      { name: 'd/', type: 'directory' },
      { name: 'd/x', body: 'x' },
      { name: 'd/sub/', type: 'directory' },
      { name: 'd/sub/y', body: 'y' },
      { name: 'e/', type: 'directory' },
      { name: 'e/old', body: 'old' },
    ]);
    const top = (await unpackImage(store, sn, [base], [base.diffId]))!;
    await withMount(dir, await sn.prepare('work', top), async (r) => {
      await rm(join(r, 'a'));
      await rm(join(r, 'd'), { recursive: true });
      await mkdir(join(r, 'd'));
      await writeFile(join(r, 'd', 'new'), 'new');
      await writeFile(join(r, 'e', 'added'), 'added');
      await rm(join(r, 'e', 'old'));
    });
    const blob = await diffSnapshot(store, sn, 'work', { compression: 'gzip' });
    expect(blob.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const names = await tarNames(await openLayerTar(store, blob));
    expect(names).toEqual(['.wh.a', 'd/', 'd/.wh..wh..opq', 'd/new', 'e/', 'e/.wh.old', 'e/added']);
    await sn.commit('worked', 'work');
    // Flat-apply the diff on a copy of the lower tree: the result is the merged tree.
    const flat = join(dir, 'flat');
    await withMount(dir, await sn.view('vbase', top), (r) => cp(r, flat, { recursive: true }));
    await applyLayer(flat, await openLayerTar(store, blob), { mode: 'flat' });
    const merged = await withMount(dir, await sn.view('vtop', 'worked'), (r) => readTree(r));
    expect(await readTree(flat)).toEqual(merged);
    expect(merged).toEqual({ d: '<dir>', 'd/new': 'new', e: '<dir>', 'e/added': 'added', keep: 'keep' });
    // Unpacking the diff as a layer on the same base gives the same snapshot content.
    const re = (await unpackImage(store, sn, [base, blob], [base.diffId, blob.diffId]))!;
    expect(await withMount(dir, await sn.view('vre', re), (r) => readTree(r))).toEqual(merged);
  });

  it('prune keeps what is referenced, active or an ancestor, and removes the rest', async () => {
    const base = await layerOf(store, [{ name: 'base', body: 'base' }]);
    const a = await layerOf(store, [{ name: 'a', body: 'a' }]);
    const b = await layerOf(store, [{ name: 'b', body: Buffer.alloc(50_000, 7).toString() }]);
    const c = await layerOf(store, [{ name: 'c', body: 'c' }]);
    const topA = (await unpackImage(store, sn, [base, a], [base.diffId, a.diffId]))!;
    const topB = (await unpackImage(store, sn, [base, b], [base.diffId, b.diffId]))!;
    const topC = (await unpackImage(store, sn, [c], [c.diffId]))!;
    await sn.prepare('running', topC);
    const r = await pruneSnapshots(sn, new Set([topA]));
    expect(r.removed).toEqual([topB]);
    expect(r.bytes).toBeGreaterThanOrEqual(50_000);
    const keys: string[] = [];
    await sn.walk((i) => void keys.push(i.key));
    expect(keys.sort()).toEqual([base.diffId, topA, topC, 'running'].sort());
    await sn.remove('running');
    const r2 = await pruneSnapshots(sn, new Set());
    expect([...r2.removed].sort()).toEqual([topA, base.diffId, topC].sort());
    expect(r2.removed.indexOf(topA)).toBeLessThan(r2.removed.indexOf(base.diffId));
    expect(await snapshotDirs(sn)).toEqual([]);
  });

  it('the leftover of a killed unpack is removed by the next unpack of that layer and by prune', async () => {
    const base = await layerOf(store, [{ name: 'base', body: 'base' }]);
    const top = await layerOf(store, [{ name: 'top', body: 'top' }]);
    const [c0, c1] = chainIds([base.diffId, top.diffId]);
    await unpackImage(store, sn, [base], [base.diffId]);
    // What a process killed while applying `top` leaves: an active snapshot with a dead pid.
    const dead = { 'imgbuild.unpacking': c1!, 'imgbuild.unpacking.pid': '2147483646' };
    await sn.prepare('unpack-dead-1', c0, { labels: dead });
    await sn.prepare('unpack-dead-2', c0, { labels: { ...dead, 'imgbuild.unpacking': 'sha256:other' } });
    await sn.prepare('unpack-alive', c0, { labels: { ...dead, 'imgbuild.unpacking.pid': String(process.pid) } });
    expect(await unpackImage(store, sn, [base, top], [base.diffId, top.diffId])).toBe(c1);
    const keys = async (): Promise<string[]> => {
      const k: string[] = [];
      await sn.walk((i) => void k.push(i.key));
      return k.sort();
    };
    expect(await keys()).toEqual([c0, c1, 'unpack-alive', 'unpack-dead-2'].sort());
    const r = await pruneSnapshots(sn, new Set());
    expect(r.removed.sort()).toEqual([c1, 'unpack-dead-2'].sort());
    expect(await keys()).toEqual([c0, 'unpack-alive'].sort());
  });

  it('prune spares what a live lease holds and removes the temporary snapshots of a dead one', async () => {
    const base = await layerOf(store, [{ name: 'base', body: 'base' }]);
    const top = await layerOf(store, [{ name: 'top', body: 'top' }]);
    const [c0, c1] = chainIds([base.diffId, top.diffId]);
    const lease = new Lease(store.root);
    expect(await unpackImage(store, sn, [base, top], [base.diffId, top.diffId], { lease })).toBe(c1);
    expect((await leasedSnapshots(store.root, lease)).sort()).toEqual([c0, c1].sort());
    // A build's scratch snapshots: ours (live), a killed build's (dead lease), and one of no lease.
    const dead = `${spawnSync('true').pid}-12345-0badcafe`;
    await sn.prepare('build-mine', c1, { lease });
    await sn.view('view-dead', c1, { labels: { 'imgbuild.lease': dead } });
    await sn.prepare('build-dead', c1, { labels: { 'imgbuild.lease': dead } });
    await sn.prepare('ctr-abc', c0);
    const keys = async (): Promise<string[]> => {
      const k: string[] = [];
      await sn.walk((i) => void k.push(i.key));
      return k.sort();
    };
    const r = await pruneSnapshots(sn, new Set(), { storeRoot: store.root });
    expect(r.removed.sort()).toEqual(['build-dead', 'view-dead']);
    expect(await keys()).toEqual([c0, c1, 'build-mine', 'ctr-abc'].sort());
    // Once the build is done with them, the chain goes too (but what the container needs).
    await sn.remove('build-mine');
    await lease.release();
    expect((await pruneSnapshots(sn, new Set(), { storeRoot: store.root })).removed).toEqual([c1]);
    expect(await keys()).toEqual([c0, 'ctr-abc'].sort());
  });

  it('acquire leases an existing snapshot under the metadata lock and reports a missing one', async () => {
    await sn.prepare('a-active');
    await sn.commit('a', 'a-active');
    const lease = new Lease(store.root);
    expect(await sn.acquire('a', lease)).toBe(true);
    expect(await sn.acquire('missing', lease)).toBe(false);
    expect(await sn.acquire('a')).toBe(true);
    expect(await leasedSnapshots(store.root, lease)).toEqual(['a']);
    expect((await pruneSnapshots(sn, new Set(), { storeRoot: store.root })).removed).toEqual([]);
    await lease.release();
    expect((await pruneSnapshots(sn, new Set(), { storeRoot: store.root })).removed).toEqual(['a']);
  });

  it('a volatile mount of an active snapshot writes its upper dir, is refused a second time, and commits like any other', async () => {
    await sn.prepare('vb-a');
    await writeFile(join(await sn.upperDir('vb-a'), 'base.txt'), 'b');
    await sn.commit('vb', 'vb-a');
    // A snapshot on no parent is a bind: nothing to make volatile.
    expect(sn.volatileMounts(await sn.prepare('vbare'))).toBeUndefined();
    const mounts = await sn.prepare('vstep', 'vb');
    const vol = sn.volatileMounts(mounts)!;
    expect(vol[0]!.options).toEqual([...mounts[0]!.options, 'volatile']);
    await withMount(dir, vol, (r) => writeFile(join(r, 'step.txt'), 's'));
    expect(await readFile(join(await sn.upperDir('vstep'), 'step.txt'), 'utf8')).toBe('s');
    // Overlay marks the work dir: the upper is never mounted again (run.ts mounts it volatile last).
    const err = await withMount(dir, mounts, async () => undefined).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/^mount .* failed \(status 32\)/);
    await sn.commit('vstepped', 'vstep');
    await withMount(dir, await sn.view('vv', 'vstepped'), async (r) => {
      expect(await readTree(r)).toEqual({ 'base.txt': 'b', 'step.txt': 's' });
    });
    // A probe cached before volatile was probed is made again.
    const cachedPath = join(sn.root, 'probe.json');
    const cached = JSON.parse(await readFile(cachedPath, 'utf8')) as { version: number; volatile?: boolean };
    const { volatile: _v, ...old } = { ...cached, version: 1 };
    await writeFile(cachedPath, JSON.stringify(old));
    const again = await probeOverlay(sn.root);
    expect(again.version).toBe(2);
    expect(again.volatile).toBe(true);
  });

  it('a committed snapshot keeps no work and init dirs of its active one; prune sweeps those a killed commit left', async () => {
    const lease = new Lease(store.root);
    await sn.prepare('w', undefined, { lease, init: { files: ['/etc/hosts'], dirs: ['/proc'] } });
    await sn.commit('c', 'w', { lease });
    const meta = JSON.parse(await readFile(join(sn.root, 'metadata.json'), 'utf8')) as { snapshots: Record<string, { id: number; labels: object }> };
    expect(await readdir(join(sn.snapshotsDir, String(meta.snapshots.c!.id)))).toEqual(['fs']);
    expect(meta.snapshots.c!.labels).toEqual({}); // the lease label stays with the active snapshot
    expect((await readdir(sn.root)).filter((n) => n.startsWith('rm-'))).toEqual([]);
    await lease.release();
    // What a commit killed before moving them out leaves is swept by prune.
    const dir = join(sn.snapshotsDir, String(meta.snapshots.c!.id));
    await mkdir(join(dir, 'work', 'work'), { recursive: true });
    await mkdir(join(dir, 'init', 'etc'), { recursive: true });
    expect((await sn.sweep()).sort()).toEqual([`snapshots/${meta.snapshots.c!.id}/init`, `snapshots/${meta.snapshots.c!.id}/work`]);
    expect(await readdir(dir)).toEqual(['fs']);
  });

  it('a probe killed with its test mount in place is unmounted and removed on open', async () => {
    const dead = spawnSync('true').pid!;
    const probe = join(sn.root, `probe-${dead}-AbC123`);
    await mkdir(join(probe, 'merged'), { recursive: true });
    await writeFile(join(probe, 'l0'), 'x');
    await run('mount', ['-t', 'tmpfs', 'tmpfs', join(probe, 'merged')]);
    await writeFile(join(probe, 'merged', 'inside'), 'x');
    const live = join(sn.root, `probe-${process.pid}-AbC124`);
    await mkdir(live);
    await OverlaySnapshotter.open(sn.root);
    expect(await mountsUnder(sn.root)).toEqual([]);
    expect((await readdir(sn.root)).filter((n) => n.startsWith('probe-'))).toEqual([`probe-${process.pid}-AbC124`]);
    await rm(live, { recursive: true });
  });

  it('sweep removes lock owner files and locks that dead processes left', async () => {
    const dead = spawnSync('true').pid!;
    await writeFile(join(sn.root, `metadata.json.lock.${dead}.0a1b2c3d`), `${dead} 12345\n`);
    await mkdir(join(sn.root, 'unpack'), { recursive: true });
    await writeFile(join(sn.root, 'unpack', 'abc.lock'), `${dead} 12345\n`);
    expect((await sn.sweep()).sort()).toEqual([`metadata.json.lock.${dead}.0a1b2c3d`, 'unpack/abc.lock']);
    expect(await readdir(join(sn.root, 'unpack'))).toEqual([]);
  });

  it('an aborted unpack stops and leaves no snapshot', async () => {
    const base = await layerOf(store, [{ name: 'base', body: 'base' }]);
    const ac = new AbortController();
    ac.abort();
    const err = await unpackImage(store, sn, [base], [base.diffId], { signal: ac.signal }).then(
      () => undefined,
      (e: unknown) => e as { code: string },
    );
    expect(err?.code).toBe('ABORTED');
    expect(await snapshotDirs(sn)).toEqual([]);
  });
});
