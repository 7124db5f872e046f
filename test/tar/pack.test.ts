import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync, chownSync, chmodSync, lutimesSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setAttributeSync, getAttributeSync } from 'fs-xattr';
import tarStream from 'tar-stream';
import { packDir, packDirChunks } from '../../src/tar/pack.js';
import { applyLayer } from '../../src/tar/apply.js';
import { readTar, type TarEntry } from '../../src/tar/reader.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree } from '../helpers/tar.js';
import { diskUsage } from '../../src/snapshots/records.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-pack-');
});
afterEach(async () => {
  await tmp.cleanup();
});

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Entries as an independent reader (tar-stream) sees them. */
async function listWithTarStream(buf: Buffer): Promise<tarStream.Header[]> {
  const ex = tarStream.extract();
  const out: tarStream.Header[] = [];
  const done = (async () => {
    for await (const e of ex) {
      out.push(e.header);
      e.resume();
    }
  })();
  ex.end(buf);
  await done;
  return out;
}

function mknod(p: string, ...args: string[]): void {
  const r = spawnSync('mknod', [p, ...args]);
  if (r.status !== 0) throw new Error(`mknod failed: ${r.stderr}`);
}

/** A tree with every kind of entry. */
function makeTree(d: string): void {
  mkdirSync(join(d, 'etc/sub'), { recursive: true });
  writeFileSync(join(d, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(d, 'etc/b'), 'b');
  writeFileSync(join(d, 'etc/a'), 'a');
  chownSync(join(d, 'etc/a'), 1234, 5678);
  chmodSync(join(d, 'etc/a'), 0o4751);
  linkSync(join(d, 'etc/passwd'), join(d, 'etc/sub/hard'));
  symlinkSync('../passwd', join(d, 'etc/sub/soft'));
  mkdirSync(join(d, 'dev'));
  mknod(join(d, 'dev/null'), 'c', '1', '3');
  mknod(join(d, 'dev/loop9'), 'b', '7', '9');
  mknod(join(d, 'fifo'), 'p');
  const long = `${'d'.repeat(120)}/${'e'.repeat(120)}`;
  mkdirSync(join(d, long), { recursive: true });
  writeFileSync(join(d, long, `${'f'.repeat(100)}.txt`), 'long');
  writeFileSync(join(d, 'ünïcødé'), 'u');
  writeFileSync(join(d, 'big-uid'), '');
  chownSync(join(d, 'big-uid'), 3_000_000, 3_000_001);
  // A binary security.capability value (cap_net_bind_service+ep, VFS_CAP_REVISION_2).
  writeFileSync(join(d, 'ping'), 'ELF');
  setAttributeSync(join(d, 'ping'), 'security.capability', Buffer.from('0000000200040000000000000000000000000000', 'hex').fill(0x01, 0, 1));
  setAttributeSync(join(d, 'ping'), 'user.bin', Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x3d]));
}

describe('packDir', () => {
  it('is deterministic: same tree, same bytes; sorted; numeric owners only', async () => {
    const d = join(tmp.dir, 't');
    makeTree(d);
    const a = await collect(packDir(d, { mode: 'plain' }));
    readFileSync(join(d, 'etc/passwd')); // reading (atime) must not matter
    const b = await collect(packDir(d, { mode: 'plain' }));
    const c = await collect(packDir(d, { mode: 'plain' }));
    expect(b.equals(c)).toBe(true);
    const names = (await listWithTarStream(a)).map((h) => h.name);
    expect(names.slice(0, 4)).toEqual(['big-uid', 'd'.repeat(120) + '/', `${'d'.repeat(120)}/${'e'.repeat(120)}/`, `${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(100)}.txt`]);
    expect(names).toContain('etc/');
    expect(names.indexOf('etc/a')).toBeLessThan(names.indexOf('etc/b'));
    expect(names.indexOf('etc/')).toBeLessThan(names.indexOf('etc/a'));
    for (const h of await listWithTarStream(a)) {
      expect(h.uname).toBe('');
      expect(h.gname).toBe('');
    }
  });

  it('orders names by their UTF-8 bytes, where UTF-16 order differs (above U+FFFF against U+E000-U+FFFF)', async () => {
    // UTF-16 puts '\u{1F600}' (a surrogate pair, 0xD83D...) before '\uE000'; UTF-8 (Go, BuildKit) after.
    const names = ['b', 'a', 'z\u{1F600}', 'z\uE000', 'zé', 'z~', 'Z'];
    for (const dir of ['plain', 'mixed']) {
      const d = join(tmp.dir, dir);
      mkdirSync(d);
      for (const n of dir === 'plain' ? names.filter((x) => x.length === 1 || x === 'zé' || x === 'z~') : names) writeFileSync(join(d, n), n);
      const got = (await listWithTarStream(await collect(packDir(d, { mode: 'plain' })))).map((h) => h.name);
      const want = [...got].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      expect(got).toEqual(want);
      if (dir === 'mixed') expect(got.slice(-3)).toEqual(['zé', 'z\uE000', 'z\u{1F600}']);
    }
  });

  it('clamps mtimes to sourceDateEpoch so later touches do not change the bytes', async () => {
    const d = join(tmp.dir, 't');
    makeTree(d);
    const sde = 1_000_000_000;
    const a = await collect(packDir(d, { mode: 'plain', sourceDateEpoch: sde }));
    writeFileSync(join(d, 'etc/b'), 'b'); // rewrite, new mtime
    utimesSync(join(d, 'etc'), new Date(), new Date());
    const b = await collect(packDir(d, { mode: 'plain', sourceDateEpoch: sde }));
    expect(a.equals(b)).toBe(true);
    for (const h of await listWithTarStream(a)) expect(h.mtime!.getTime() / 1000).toBeLessThanOrEqual(sde);
    // older mtimes are kept
    utimesSync(join(d, 'etc/b'), new Date(500_000_000_000), new Date(500_000_000_000));
    const hs = await listWithTarStream(await collect(packDir(d, { mode: 'plain', sourceDateEpoch: sde })));
    expect(hs.find((h) => h.name === 'etc/b')!.mtime!.getTime()).toBe(500_000_000_000);
  });

  it('keeps hard links as links, devices, fifos, big ids and binary xattrs (GNU tar reads it)', async () => {
    const d = join(tmp.dir, 't');
    makeTree(d);
    const buf = await collect(packDir(d, { mode: 'plain' }));
    const entries = new Map<string, TarEntry['header']>();
    for await (const e of readTar(Readable.from([buf]))) entries.set(e.header.name, e.header);
    expect(entries.get('etc/passwd')!.type).toBe('file');
    expect(entries.get('etc/sub/hard')).toMatchObject({ type: 'link', linkname: 'etc/passwd', size: 0 });
    expect(entries.get('etc/sub/soft')).toMatchObject({ type: 'symlink', linkname: '../passwd' });
    expect(entries.get('dev/null')).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
    expect(entries.get('dev/loop9')).toMatchObject({ type: 'block', devmajor: 7, devminor: 9 });
    expect(entries.get('fifo')!.type).toBe('fifo');
    expect(entries.get('etc/a')).toMatchObject({ uid: 1234, gid: 5678, mode: 0o4751 });
    expect(entries.get('big-uid')).toMatchObject({ uid: 3_000_000, gid: 3_000_001 });
    expect(entries.get('ping')!.xattrs.get('security.capability')).toEqual(getAttributeSync(join(d, 'ping'), 'security.capability'));
    expect(entries.get('ping')!.xattrs.get('user.bin')).toEqual(Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x3d]));

    writeFileSync(join(tmp.dir, 'l.tar'), buf);
    const gnu = spawnSync('tar', ['--numeric-owner', '-tvf', join(tmp.dir, 'l.tar')], { encoding: 'utf8' });
    expect(gnu.status).toBe(0);
    expect(gnu.stdout).toContain(`${'f'.repeat(100)}.txt`);
    expect(gnu.stdout).toContain('ünïcødé');
    expect(gnu.stdout).toMatch(/etc\/sub\/hard link to etc\/passwd/);
    expect(gnu.stdout).toMatch(/3000000\/3000001/);
    mkdirSync(join(tmp.dir, 'gnu-out'));
    const x = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '-xf', join(tmp.dir, 'l.tar'), '-C', join(tmp.dir, 'gnu-out'), 'ping'], { encoding: 'utf8' });
    expect(x.stderr).toBe('');
    expect(getAttributeSync(join(tmp.dir, 'gnu-out/ping'), 'security.capability')).toEqual(getAttributeSync(join(d, 'ping'), 'security.capability'));
    expect(getAttributeSync(join(tmp.dir, 'gnu-out/ping'), 'user.bin')).toEqual(Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x3d]));
  });

  it('round trip: pack(apply(pack(tree))) gives the same bytes and the same tree', async () => {
    const d = join(tmp.dir, 't');
    makeTree(d);
    const first = await collect(packDir(d, { mode: 'plain' }));
    const out = join(tmp.dir, 'out');
    mkdirSync(out);
    await applyLayer(out, Readable.from([first]), { mode: 'flat', allowDevices: true });
    expect(snapshotTree(out, { mtime: true })).toEqual(snapshotTree(d, { mtime: true }));
    expect(getAttributeSync(join(out, 'ping'), 'security.capability')).toEqual(getAttributeSync(join(d, 'ping'), 'security.capability'));
    const second = await collect(packDir(out, { mode: 'plain' }));
    expect(second.equals(first)).toBe(true);
  });

  it('overlay mode: char 0:0 becomes .wh.<name>, an opaque dir gets .wh..wh..opq right after it', async () => {
    const d = join(tmp.dir, 'upper');
    mkdirSync(join(d, 'a/z'), { recursive: true });
    writeFileSync(join(d, 'a/b'), 'b');
    mknod(join(d, 'a/gone'), 'c', '0', '0');
    mknod(join(d, 'zz-gone'), 'c', '0', '0');
    setAttributeSync(join(d, 'a'), 'trusted.overlay.opaque', 'y');
    setAttributeSync(join(d, 'a/z'), 'user.overlay.opaque', 'y');
    setAttributeSync(join(d, 'a/b'), 'trusted.overlay.origin', 'x');
    setAttributeSync(join(d, 'a/b'), 'user.keep', 'k');
    const hs = await listWithTarStream(await collect(packDir(d, { mode: 'overlay' })));
    expect(hs.map((h) => h.name)).toEqual(['.wh.zz-gone', 'a/', 'a/.wh..wh..opq', 'a/.wh.gone', 'a/b', 'a/z/', 'a/z/.wh..wh..opq']);
    const b = hs.find((h) => h.name === 'a/b')!;
    expect(b.pax).toEqual({ 'SCHILY.xattr.user.keep': 'k' });
    expect(hs.find((h) => h.name === 'a/')!.pax ?? {}).toEqual({});
    // plain mode keeps the device as a device
    const plain = await listWithTarStream(await collect(packDir(d, { mode: 'plain' })));
    expect(plain.find((h) => h.name === 'zz-gone')!.type).toBe('character-device');
  });

  it('overlay round trip: apply(overlay) of a packed upper dir recreates it', async () => {
    const d = join(tmp.dir, 'upper');
    mkdirSync(join(d, 'a'), { recursive: true });
    writeFileSync(join(d, 'a/b'), 'b');
    mknod(join(d, 'a/gone'), 'c', '0', '0');
    // A whiteout's time is in its entry: applying it must put it back, not leave the moment of mknod.
    lutimesSync(join(d, 'a/gone'), 1_500_000_000, 1_500_000_000);
    setAttributeSync(join(d, 'a'), 'trusted.overlay.opaque', 'y');
    lutimesSync(join(d, 'a'), 1_600_000_000, 1_600_000_000);
    const buf = await collect(packDir(d, { mode: 'overlay' }));
    const out = join(tmp.dir, 'out');
    mkdirSync(out);
    await applyLayer(out, Readable.from([buf]), { mode: 'overlay' });
    const strip = (t: ReturnType<typeof snapshotTree>) => t.map((e) => ({ ...e, mode: e.type === 'char' ? 0 : e.mode }));
    expect(strip(snapshotTree(out))).toEqual(strip(snapshotTree(d)));
    expect(getAttributeSync(join(out, 'a'), 'trusted.overlay.opaque').toString()).toBe('y');
    expect((await collect(packDir(out, { mode: 'overlay' }))).equals(buf)).toBe(true);
  });

  it('gathers small files into batches and streams large ones without changing a byte', async () => {
    // Sizes around the 1 MiB batch: a file that fills a batch exactly, one a byte over, and small
    // files before and after them, so contents land on both sides of every boundary.
    const d = join(tmp.dir, 'b');
    mkdirSync(d);
    const sizes = [100, 1024 * 1024 - 1024, 70_000, 1024 * 1024 + 1, 0, 3 * 1024 * 1024 + 17, ...Array.from({ length: 40 }, (_, i) => 30_000 + i * 511)];
    const want = new Map<string, Buffer>();
    sizes.forEach((n, i) => {
      const data = Buffer.alloc(n);
      for (let j = 0; j < n; j++) data[j] = (j * 31 + i) & 0xff;
      const name = `f${String(i).padStart(3, '0')}`;
      writeFileSync(join(d, name), data);
      want.set(name, data);
    });
    const chunks: Buffer[] = [];
    for await (const c of packDir(d, { mode: 'plain' })) chunks.push(c as Buffer);
    // Few chunks: not one or two per file.
    expect(chunks.length).toBeLessThan(sizes.length);
    const got = new Map<string, Buffer>();
    for await (const e of readTar(Readable.from([Buffer.concat(chunks)]))) {
      const parts: Buffer[] = [];
      if (e.body) for await (const c of e.body) parts.push(c as Buffer);
      if (e.header.type === 'file') got.set(e.header.name, Buffer.concat(parts));
    }
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [n, data] of want) expect(got.get(n)!.equals(data), n).toBe(true);
  });

  it('packDirChunks gives packDir\'s bytes while reusing its two buffers', async () => {
    const d = join(tmp.dir, 'c');
    makeTree(d);
    const big = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let j = 0; j < big.length; j++) big[j] = (j * 7) & 0xff;
    writeFileSync(join(d, 'big'), big);
    for (let i = 0; i < 300; i++) writeFileSync(join(d, `s${i}`), Buffer.alloc(5000, i));
    const want = await collect(packDir(d, { mode: 'plain', sourceDateEpoch: 5 }));
    const copies: Buffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    for (const c of packDirChunks(d, { mode: 'plain', sourceDateEpoch: 5 })) {
      copies.push(Buffer.from(c));
      seen.add(c.buffer);
    }
    expect(Buffer.concat(copies).equals(want)).toBe(true);
    // Several MiB went through the same two allocations (the batch and the read buffer).
    expect(copies.length).toBeGreaterThan(4);
    expect(seen.size).toBeLessThanOrEqual(2);
  });

  it('measures what it packs as diskUsage does: blocks and inodes, a hard-linked inode once', async () => {
    const d = join(tmp.dir, 'u');
    mkdirSync(join(d, 'a/b'), { recursive: true });
    writeFileSync(join(d, 'a/big'), Buffer.alloc(300_000, 1));
    writeFileSync(join(d, 'a/b/small'), 'x');
    linkSync(join(d, 'a/big'), join(d, 'a/b/big-link'));
    symlinkSync('big', join(d, 'a/ln'));
    mknod(join(d, 'a/gone'), 'c', '0', '0');
    const usage = { size: 0, inodes: 0 };
    await collect(packDir(d, { mode: 'overlay', usage }));
    expect(usage).toEqual(await diskUsage(d));
    expect(usage.inodes).toBe(7); // the dir, a, a/b, big (twice linked), small, ln, gone
  });

  it('stops on abort', async () => {
    const d = join(tmp.dir, 't');
    makeTree(d);
    const ac = new AbortController();
    ac.abort();
    await expect(collect(packDir(d, { mode: 'plain', signal: ac.signal }))).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
