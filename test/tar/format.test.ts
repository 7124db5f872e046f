/** The header codec and reader against archives written by GNU tar in each of its formats. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, symlinkSync, readFileSync, chownSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readTar } from '../../src/tar/reader.js';
import { decodePax, encodeHeader, type TarHeader } from '../../src/tar/format.js';
import { makeTmp } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let src: string;
const longDir = `${'d'.repeat(80)}/${'e'.repeat(90)}`;
const longFile = `${longDir}/${'f'.repeat(120)}`;
const longLink = `${'t'.repeat(130)}`;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-format-');
  src = join(tmp.dir, 'src');
  mkdirSync(join(src, longDir), { recursive: true });
  writeFileSync(join(src, longFile), 'long');
  symlinkSync(longLink, join(src, 'link'));
  writeFileSync(join(src, 'big'), Buffer.alloc(100_000, 7));
  writeFileSync(join(src, 'owned'), '');
  chownSync(join(src, 'owned'), 2_500_000, 7);
});
afterAll(async () => {
  await tmp.cleanup();
});

async function entries(buf: Buffer): Promise<Map<string, TarHeader & { data: Buffer }>> {
  const out = new Map<string, TarHeader & { data: Buffer }>();
  // feed in odd-sized chunks to exercise header/body boundaries
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 777) chunks.push(buf.subarray(i, i + 777));
  for await (const e of readTar(Readable.from(chunks))) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c);
    out.set(e.header.name, { ...e.header, data: Buffer.concat(parts) });
  }
  return out;
}

describe('reading GNU tar output', () => {
  for (const format of ['gnu', 'posix', 'oldgnu']) {
    it(`--format=${format}: long names, long link targets, big uids, bodies`, async () => {
      const file = join(tmp.dir, `${format}.tar`);
      const r = spawnSync('tar', [`--format=${format}`, '-cf', file, '-C', src, '.'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const es = await entries(readFileSync(file));
      expect(es.get(`./${longFile}`)?.data.toString()).toBe('long');
      expect(es.get('./link')).toMatchObject({ type: 'symlink', linkname: longLink });
      expect(es.get('./big')!.data.equals(Buffer.alloc(100_000, 7))).toBe(true);
      expect(es.get(`./${longDir}`)!.type).toBe('dir');
      expect(es.get('./owned')).toMatchObject({ uid: 2_500_000, gid: 7 });
    });
  }
});

describe('header codec', () => {
  const base: TarHeader = { name: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() };

  it('PAX record lengths are right across a digit boundary', () => {
    for (let n = 80; n < 120; n++) {
      const h = encodeHeader({ ...base, xattrs: new Map([['user.k', Buffer.alloc(n, 0x61)]]) });
      const size = parseInt(h.toString('ascii', 124, 135), 8);
      const recs = decodePax(h.subarray(512, 512 + size), 0);
      expect(recs.get('SCHILY.xattr.user.k')!.length).toBe(n);
    }
  });

  it('writes each ustar field as GNU tar does: zero-padded octal and a NUL, names cut at their width', () => {
    const h = encodeHeader({ ...base, name: 'n'.repeat(100), type: 'symlink', mode: 0o4755, uid: 0o7777777, gid: 8, size: 0o77777777777, mtime: 1700000000, linkname: `${'l'.repeat(99)}`, devmajor: 0, devminor: 7 });
    expect(h.length).toBe(512);
    const field = (off: number, len: number): string => h.toString('latin1', off, off + len);
    expect(field(0, 100)).toBe('n'.repeat(100));
    expect([field(100, 8), field(108, 8), field(116, 8), field(124, 12), field(136, 12)]).toEqual(['0004755\0', '7777777\0', '0000010\0', '77777777777\0', `${(1700000000).toString(8).padStart(11, '0')}\0`]);
    expect([field(156, 1), field(157, 100), field(257, 8), field(329, 8), field(337, 8)]).toEqual(['2', `${'l'.repeat(99)}\0`, 'ustar\x0000', '0000000\0', '0000007\0']);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    expect(field(148, 8)).toBe(`${sum.toString(8).padStart(6, '0')}\0 `);
    // Larger than a field holds: the ustar field keeps its maximum, the value goes to PAX.
    const big = encodeHeader({ ...base, uid: 0o7777777 + 1, size: 0o77777777777 + 1 });
    expect(big.length).toBe(3 * 512); // PAX header, its records, the ustar block
    expect(big.toString('latin1', 1024 + 108, 1024 + 116)).toBe('7777777\0');
    expect(big.toString('latin1', 1024 + 124, 1024 + 136)).toBe('77777777777\0');
    expect(decodePax(big.subarray(512, 1024), 0).get('uid')!.toString()).toBe(String(0o7777777 + 1));
  });

  it('GNU tar accepts what we write (long names, xattrs, big ids) and lists the same names', async () => {
    const hs: TarHeader[] = [
      { ...base, name: longFile, size: 3 },
      { ...base, name: 'ü/ñ', uid: 5_000_000, gid: 5_000_001 },
      { ...base, name: 'l', type: 'symlink', linkname: longLink },
    ];
    const parts: Buffer[] = [];
    for (const h of hs) {
      parts.push(encodeHeader(h));
      if (h.size) parts.push(Buffer.concat([Buffer.from('abc'), Buffer.alloc(509)]));
    }
    parts.push(Buffer.alloc(1024));
    const file = join(tmp.dir, 'ours.tar');
    writeFileSync(file, Buffer.concat(parts));
    const r = spawnSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(longFile);
    expect(r.stdout).toContain('5000000/5000001');
    expect(r.stdout).toContain(`l -> ${longLink}`);
    expect([...(await entries(Buffer.concat(parts))).keys()]).toEqual([longFile, 'ü/ñ', 'l']);
  });
});
