/**
 * RUN cache mounts as layers (src/builder/remote-cache/mounts.ts): a mount's directory packed
 * deterministically, restored on another store with its owners, modes, links and `.wh.` names, the
 * local content kept when there is any, and a hostile layer refused with nothing written outside
 * the mount and the mount left empty.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chownSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree, tar } from '../helpers/tar.js';
import { OciStore } from '../../src/store/store.js';
import { packCacheMount, restoreCacheMount, SharedCacheMounts } from '../../src/builder/remote-cache/mounts.js';
import { cacheMountDir } from '../../src/builder/dispatch/mounts.js';
import type { Descriptor } from '../../src/image/types.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let a: OciStore;
let b: OciStore;
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-cache-mounts-');
  a = await OciStore.open(join(tmp.dir, 'a'));
  b = await OciStore.open(join(tmp.dir, 'b'));
  mkdirSync(join(tmp.dir, 'scratch'));
});
afterEach(async () => {
  await a.release();
  await b.release();
  await tmp.cleanup();
});

/** A cache mount's worth of content: nested dirs, owners, modes, a symlink, a hard link, a `.wh.` name. */
function fill(dir: string): void {
  mkdirSync(join(dir, 'pkgs', 'deep'), { recursive: true });
  writeFileSync(join(dir, 'pkgs', 'deep', 'a.tgz'), Buffer.alloc(70_000, 7));
  writeFileSync(join(dir, 'x'), 'built\n');
  chownSync(join(dir, 'x'), 1234, 5678);
  chmodSync(join(dir, 'x'), 0o640);
  chownSync(join(dir, 'pkgs'), 42, 43);
  symlinkSync('../x', join(dir, 'pkgs', 'to-x'));
  linkSync(join(dir, 'x'), join(dir, 'pkgs', 'x-again'));
  writeFileSync(join(dir, '.wh.not-a-whiteout'), 'kept as a file\n');
}

/** A registry's part, played by store `from`: copies a blob into `to` (verified by the commit). */
const fetchFrom = (from: OciStore, to: OciStore) => async (l: Descriptor): Promise<void> => {
  if (await to.info(l.digest)) return;
  const w = await to.writer('mount');
  await w.write(await from.read(l));
  await w.commit(l.size, l.digest);
};

describe('cache mount layers', () => {
  it('packs a mount deterministically and restores it with owners, modes and links on another store', async () => {
    const src = cacheMountDir(a.root, '/cache');
    mkdirSync(src, { recursive: true });
    fill(src);
    const one = await packCacheMount(a, src, { compression: 'gzip' });
    const two = await packCacheMount(a, src, { compression: 'gzip' });
    expect(one).toBeDefined();
    expect(two!.digest).toBe(one!.digest);
    expect(one!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    // The blob travels (here: copied from one store to the other as a registry would carry it).
    await fetchFrom(a, b)(one!);

    const dst = cacheMountDir(b.root, '/cache');
    const r = await restoreCacheMount(await b.reader(one!), one!, dst, { scratch: join(tmp.dir, 'scratch'), owner: { mode: 0o755, uid: 0, gid: 0 } });
    expect(r).toBe('restored');
    expect(snapshotTree(dst, { mtime: true })).toEqual(snapshotTree(src, { mtime: true }));
    expect(readFileSync(join(dst, 'pkgs', 'to-x'), 'utf8')).toBe('built\n');
    // Nothing is left in the scratch dir.
    expect(readdirSync(join(tmp.dir, 'scratch'))).toEqual([]);
  });

  it('zstd and uncompressed layers restore too; an empty or absent mount exports nothing', async () => {
    const src = cacheMountDir(a.root, 'npm');
    expect(await packCacheMount(a, src, { compression: 'zstd' })).toBeUndefined();
    mkdirSync(src, { recursive: true });
    expect(await packCacheMount(a, src, { compression: 'zstd' })).toBeUndefined();
    fill(src);
    for (const compression of ['zstd', 'none'] as const) {
      const l = await packCacheMount(a, src, { compression });
      const dst = join(tmp.dir, `restored-${compression}`);
      expect(await restoreCacheMount(await a.reader(l!), l!, dst, { scratch: join(tmp.dir, 'scratch') })).toBe('restored');
      expect(snapshotTree(dst)).toEqual(snapshotTree(src));
    }
  });

  it('keeps a local mount that holds anything, and fills an empty one keeping its mode and owner', async () => {
    const src = join(tmp.dir, 'src');
    mkdirSync(src);
    fill(src);
    const l = (await packCacheMount(a, src, { compression: 'gzip' }))!;
    const warm = join(tmp.dir, 'warm');
    mkdirSync(warm);
    writeFileSync(join(warm, 'mine'), 'local\n');
    expect(await restoreCacheMount(await a.reader(l), l, warm, { scratch: join(tmp.dir, 'scratch') })).toBe('kept-local');
    expect(readdirSync(warm)).toEqual(['mine']);

    const empty = join(tmp.dir, 'empty');
    mkdirSync(empty);
    chmodSync(empty, 0o1777);
    chownSync(empty, 1000, 1001);
    expect(await restoreCacheMount(await a.reader(l), l, empty, { scratch: join(tmp.dir, 'scratch') })).toBe('restored');
    const top = statSync(empty);
    expect([top.mode & 0o7777, top.uid, top.gid]).toEqual([0o1777, 1000, 1001]);
    expect(readFileSync(join(empty, 'x'), 'utf8')).toBe('built\n');
  });

  it('refuses a hostile layer: nothing is written outside the mount, which stays empty', async () => {
    const outside = join(tmp.dir, 'outside');
    const hostile = [
      await tar().file('../outside', 'escaped').buffer(),
      await tar().symlink('link', '/').file('link/../outside-too', 'escaped').dir('d').symlink('d/up', '../..').file('d/up/outside', 'escaped').buffer(),
      await tar().symlink('s', join(tmp.dir)).file('s/outside', 'escaped').buffer(),
      await tar().char('null', 1, 3).buffer(),
    ];
    for (const [i, buf] of hostile.entries()) {
      const dst = join(tmp.dir, `mount-${i}`);
      mkdirSync(dst);
      const r = restoreCacheMount(Readable.from([buf]), { mediaType: 'application/vnd.oci.image.layer.v1.tar' }, dst, { scratch: join(tmp.dir, 'scratch') });
      // A symlink is followed as if the mount were `/`: what climbs is clamped inside, so the write
      // lands in the (discarded) scratch copy or the layer is refused; never outside.
      await r.then(() => undefined, (e: Error) => expect(e.message).toMatch(/tar entry|device|outside|unsafe|refus/i));
      expect(existsSync(outside)).toBe(false);
      expect(existsSync(join(tmp.dir, 'outside-too'))).toBe(false);
      expect(readdirSync(tmp.dir).filter((n) => n.startsWith('outside'))).toEqual([]);
      expect(readdirSync(join(tmp.dir, 'scratch'))).toEqual([]);
    }
    // The first and the device are refused outright: their mounts stay empty.
    expect(readdirSync(join(tmp.dir, 'mount-0'))).toEqual([]);
    expect(readdirSync(join(tmp.dir, 'mount-3'))).toEqual([]);
  });

  it('a build restores each imported mount once, warns on a bad one, and exports local content over the imported', async () => {
    const src = join(tmp.dir, 'src');
    mkdirSync(src);
    fill(src);
    const good = (await packCacheMount(a, src, { compression: 'none' }))!;
    const other = join(tmp.dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'o'), 'other\n');
    const unusedHere = (await packCacheMount(a, other, { compression: 'gzip' }))!;
    const lines: string[] = [];
    const bad: Descriptor = { ...good, digest: `sha256:${'0'.repeat(64)}` as Descriptor['digest'] };
    const mounts = new SharedCacheMounts({
      store: b,
      scratch: join(tmp.dir, 'scratch'),
      imported: [
        { layers: [{ id: '/cache', layer: good, diffId: good.diffId }, { id: 'broken', layer: bad, diffId: good.diffId }, { id: 'unused', layer: good, diffId: good.diffId }], fetch: fetchFrom(a, b) },
        // A later import naming the same id is not used for it.
        { layers: [{ id: '/cache', layer: unusedHere, diffId: unusedHere.diffId }, { id: 'imported-only', layer: unusedHere, diffId: unusedHere.diffId }], fetch: fetchFrom(a, b) },
      ],
      say: (l) => lines.push(l),
    });
    mounts.use('/cache');
    mounts.use('broken');
    mounts.use('local-only');
    const d1 = cacheMountDir(b.root, '/cache');
    await Promise.all([mounts.restore('/cache', d1), mounts.restore('/cache', d1)]);
    expect(readFileSync(join(d1, 'x'), 'utf8')).toBe('built\n');
    const d2 = cacheMountDir(b.root, 'broken');
    mkdirSync(d2, { recursive: true });
    await mounts.restore('broken', d2);
    expect(readdirSync(d2)).toEqual([]);
    expect(lines.filter((l) => l.startsWith('WARNING: cache mount broken: not restored'))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('cache mount /cache: restored'))).toHaveLength(1);

    // Exported: /cache packed from its local content (identical bytes: the same tree),
    // `imported-only` as imported (never filled here: its blob fetched into the store), `broken`
    // left out with a warning (its blob is nowhere), `local-only` packed, `unused` not named.
    mounts.use('imported-only');
    const d3 = cacheMountDir(b.root, 'local-only');
    mkdirSync(d3, { recursive: true });
    writeFileSync(join(d3, 'f'), 'b\n');
    const out = await mounts.export(b.root);
    expect(out.map((e) => e.id)).toEqual(['/cache', 'local-only', 'imported-only']);
    expect(out[0]!.layer.digest).toBe(good.digest);
    expect(out[0]!.diffId).toBe(good.diffId);
    expect(out[1]!.layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(await b.info(out[1]!.layer.digest)).toBeDefined();
    expect(out[2]!.layer.digest).toBe(unusedHere.digest);
    expect(await b.info(unusedHere.digest)).toBeDefined();
    expect(lines.filter((l) => l.startsWith('WARNING: cache mount broken: the imported content cannot be fetched'))).toHaveLength(1);
  });
});
