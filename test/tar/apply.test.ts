import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { getAttributeSync } from 'fs-xattr';
import { applyLayer, LayerApplyError } from '../../src/tar/apply.js';
import { UnsafePathError, InvalidWhiteoutError } from '../../src/tar/errors.js';
import { makeTmp } from '../helpers/tmp.js';
import { tar, snapshotTree, listAll } from '../helpers/tar.js';
import { TarFormatError } from '../../src/tar/format.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let sentinel: string;

beforeEach(async () => {
  tmp = await makeTmp('imgbuild-apply-');
  root = join(tmp.dir, 'root');
  sentinel = join(tmp.dir, 'sentinel');
  mkdirSync(root);
  mkdirSync(sentinel);
});
afterEach(async () => {
  await tmp.cleanup();
});

/** Nothing may appear outside root: the sentinel dir beside it stays empty, tmp holds only root+sentinel. */
function assertNothingOutside(): void {
  expect(readdirSync(sentinel)).toEqual([]);
  expect(readdirSync(tmp.dir).sort()).toEqual(['root', 'sentinel']);
}

async function flat(t: ReturnType<typeof tar>, opts: Partial<Parameters<typeof applyLayer>[2]> = {}) {
  return applyLayer(root, await t.stream(), { mode: 'flat', ...opts });
}

describe('applyLayer basics', () => {
  it('creates files, dirs, symlinks, hard links with modes, owners and mtimes', async () => {
    const r = await flat(tar()
      .dir('etc', { mode: 0o750, uid: 1, gid: 2, mtime: 1_600_000_000 })
      .file('etc/passwd', 'root:x:0:0\n', { mode: 0o640, uid: 3, gid: 4, mtime: 1_500_000_000 })
      .file('bin/su', 'x', { mode: 0o4755 })
      .symlink('etc/link', '../bin/su', { uid: 5, gid: 6 })
      .hardlink('etc/passwd.hl', 'etc/passwd')
      .fifo('run/fifo', { mode: 0o620 }));
    expect(r).toEqual({ entries: 6, bytes: 12 });
    const st = lstatSync(join(root, 'etc/passwd'));
    expect([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs / 1000]).toEqual([0o640, 3, 4, 1_500_000_000]);
    expect(lstatSync(join(root, 'bin/su')).mode & 0o7777).toBe(0o4755);
    const d = lstatSync(join(root, 'etc'));
    // the dir's mtime survives the children written into it afterwards
    expect([d.mode & 0o7777, d.uid, d.gid, d.mtimeMs / 1000]).toEqual([0o750, 1, 2, 1_600_000_000]);
    const l = lstatSync(join(root, 'etc/link'));
    expect(l.isSymbolicLink()).toBe(true);
    expect([l.uid, l.gid]).toEqual([5, 6]);
    expect(readlinkSync(join(root, 'etc/link'))).toBe('../bin/su');
    expect(lstatSync(join(root, 'etc/passwd.hl')).ino).toBe(st.ino);
    expect(lstatSync(join(root, 'run/fifo')).isFIFO()).toBe(true);
    expect(lstatSync(join(root, 'run/fifo')).mode & 0o7777).toBe(0o620);
    assertNothingOutside();
  });

  it('applies PAX xattrs but never overlay-private ones', async () => {
    await flat(tar().file('f', 'x', { xattrs: { 'user.note': 'hello', 'trusted.overlay.opaque': 'y', 'user.overlay.redirect': '/x' } }));
    expect(getAttributeSync(join(root, 'f'), 'user.note').toString()).toBe('hello');
    expect(() => getAttributeSync(join(root, 'f'), 'trusted.overlay.opaque')).toThrow();
    expect(() => getAttributeSync(join(root, 'f'), 'user.overlay.redirect')).toThrow();
  });

  it('makes absolute entry names relative (documented choice)', async () => {
    await flat(tar().file('/abs/file', 'a').file('./dot/file', 'b'));
    expect(readFileSync(join(root, 'abs/file'), 'utf8')).toBe('a');
    expect(readFileSync(join(root, 'dot/file'), 'utf8')).toBe('b');
    assertNothingOutside();
  });

  it('lets the last of duplicate entries win', async () => {
    await flat(tar().file('a', 'one').file('a', 'two').dir('d').file('d', 'file now').file('e', 'f').dir('e').file('e/x', 'y'));
    expect(readFileSync(join(root, 'a'), 'utf8')).toBe('two');
    expect(readFileSync(join(root, 'd'), 'utf8')).toBe('file now');
    expect(readFileSync(join(root, 'e/x'), 'utf8')).toBe('y');
  });

  it('names the entry when a file stands where a directory is needed, or links loop', async () => {
    for (const [t, entry] of [[tar().file('a', 'x').file('a/b', 'y'), 'a/b'], [tar().symlink('l1', 'l2').symlink('l2', 'l1').file('l1/x', 'y'), 'l1/x']] as const) {
      const err = await flat(t).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LayerApplyError);
      expect(err).toMatchObject({ entry });
    }
  });

  it('honours an abort signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(applyLayer(root, await tar().file('a', 'x').stream(), { mode: 'flat', signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('accepts a stream ending right after a complete body (umoci 0.4 insert), refuses a cut body', async () => {
    const full = await tar().file('a', 'x').file('b', 'hello world').buffer();
    // header a + body block, header b, then only the 11 body bytes: no padding, no end marker
    await applyLayer(root, Readable.from([full.subarray(0, 512 * 3 + 11)]), { mode: 'flat' });
    expect(readFileSync(join(root, 'b'), 'utf8')).toBe('hello world');
    await expect(applyLayer(root, Readable.from([full.subarray(0, 512 * 3 + 5)]), { mode: 'flat' })).rejects.toBeInstanceOf(TarFormatError);
    await expect(applyLayer(root, Readable.from([full.subarray(0, 1024 + 100)]), { mode: 'flat' })).rejects.toBeInstanceOf(TarFormatError);
    const bad = Buffer.from(full);
    bad[10] = bad[10]! ^ 0x40; // name byte changed, checksum now wrong
    await expect(applyLayer(root, Readable.from([bad]), { mode: 'flat' })).rejects.toThrow(/checksum/);
  });

  it('reads the tar to its end so a verifying source gets to check its digest', async () => {
    const buf = Buffer.concat([await tar().file('a', 'x').buffer(), Buffer.alloc(10240)]);
    let ended = false;
    const src = Readable.from([buf]).on('end', () => { ended = true; });
    await applyLayer(root, src, { mode: 'flat' });
    expect(ended).toBe(true);
  });
});

describe('applyLayer refusals (nothing written outside root)', () => {
  const cases: [string, () => ReturnType<typeof tar>, string][] = [
    ['entry name ../x', () => tar().file('../x', 'pwned'), '../x'],
    ['entry name a/../../x', () => tar().dir('a').file('a/../../x', 'pwned'), 'a/../../x'],
    ['entry name deep climb', () => tar().file('a/b/../../../sentinel/x', 'pwned'), 'a/b/../../../sentinel/x'],
    ['hard link to ../sentinel', () => tar().hardlink('hl', '../sentinel/x'), 'hl'],
    ['hard link to /../../etc/passwd', () => tar().hardlink('hl', '/../../etc/passwd'), 'hl'],
    ['whiteout naming ..', () => tar().dir('a').file('a/.wh...', ''), 'a/.wh...'],
    ['char device', () => tar().char('dev/null', 1, 3), 'dev/null'],
    ['block device', () => tar().block('dev/sda', 8, 0), 'dev/sda'],
  ];
  for (const mode of ['flat', 'overlay'] as const) {
    for (const [what, mk, entry] of cases) {
      it(`${mode}: refuses ${what}`, async () => {
        writeFileSync(join(tmp.dir, 'x-marker'), ''); // something a climb could clobber
        const err = await applyLayer(root, await mk().stream(), { mode }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UnsafePathError);
        expect(err).toMatchObject({ code: 'PERMISSION_DENIED' });
        expect((err as UnsafePathError).entry).toBe(entry);
        expect((err as Error).message).toContain(JSON.stringify(entry));
        expect(readdirSync(sentinel)).toEqual([]);
        expect(readdirSync(tmp.dir).sort()).toEqual(['root', 'sentinel', 'x-marker']);
        expect(readFileSync(join(tmp.dir, 'x-marker'), 'utf8')).toBe('');
      });
    }
  }

  it('allows device nodes when asked', async () => {
    await flat(tar().char('dev/null', 1, 3).block('dev/loopx', 7, 200), { allowDevices: true });
    const st = lstatSync(join(root, 'dev/null'));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(statSync('/dev/null').rdev);
    expect(lstatSync(join(root, 'dev/loopx')).isBlockDevice()).toBe(true);
  });

  it('rejects a whiteout naming nothing', async () => {
    await expect(flat(tar().file('a/.wh..', ''))).rejects.toBeInstanceOf(InvalidWhiteoutError);
    await expect(flat(tar().file('a/.wh.', ''))).rejects.toBeInstanceOf(InvalidWhiteoutError);
  });
});

describe('applyLayer symlink confinement', () => {
  it('clamps a relative ../ symlink: writes through it land inside root', async () => {
    await flat(tar().symlink('evil', '../../sentinel').file('evil/pwn', 'x'));
    expect(readFileSync(join(root, 'sentinel/pwn'), 'utf8')).toBe('x');
    assertNothingOutside();
  });

  it('clamps an absolute symlink at root (as if root were /)', async () => {
    await flat(tar().symlink('evil', sentinel).file('evil/pwn', 'x').symlink('up', '/').file('up/top', 't'));
    expect(readFileSync(join(root, sentinel.slice(1), 'pwn'), 'utf8')).toBe('x');
    expect(readFileSync(join(root, 'top'), 'utf8')).toBe('t');
    assertNothingOutside();
  });

  it('clamps chains of links, and hard links resolve through them inside root', async () => {
    writeFileSync(join(sentinel, '..', 'secret'), 'host secret');
    try {
      await flat(tar().symlink('a', '../../..').symlink('b', 'a/../a/..').file('secret', 'layer secret').hardlink('hl', 'b/secret'));
      expect(readFileSync(join(root, 'hl'), 'utf8')).toBe('layer secret');
    } finally {
      expect(readFileSync(join(sentinel, '..', 'secret'), 'utf8')).toBe('host secret');
    }
  });

  it('duplicate-entry race: a dir replacing a planted symlink is not followed', async () => {
    await flat(tar().symlink('a', sentinel).dir('a').file('a/f', 'x'));
    expect(lstatSync(join(root, 'a')).isDirectory()).toBe(true);
    expect(readFileSync(join(root, 'a/f'), 'utf8')).toBe('x');
    assertNothingOutside();
  });

  it('duplicate-entry race: a file replacing a planted symlink is not written through it', async () => {
    writeFileSync(join(sentinel, 'target'), 'untouched');
    await flat(tar().symlink('f', join(sentinel, 'target')).file('f', 'new'));
    expect(lstatSync(join(root, 'f')).isFile()).toBe(true);
    expect(readFileSync(join(root, 'f'), 'utf8')).toBe('new');
    expect(readFileSync(join(sentinel, 'target'), 'utf8')).toBe('untouched');
  });

  it('an existing symlink in the lower tree is followed for parents but clamped', async () => {
    symlinkSync('/var/run-real', join(root, 'run'));
    await flat(tar().file('run/x.pid', '1'));
    expect(readFileSync(join(root, 'var/run-real/x.pid'), 'utf8')).toBe('1');
    assertNothingOutside();
  });

  it('a refused layer leaves what it wrote inside root only (cleanup is the caller\'s)', async () => {
    await expect(flat(tar().file('ok', '1').symlink('s', '../../..').file('s/also-ok', '2').file('../../x', 'no'))).rejects.toBeInstanceOf(UnsafePathError);
    expect(listAll(root).sort()).toEqual(['also-ok', 'ok', 's']);
    assertNothingOutside();
  });
});

describe('whiteouts: flat mode', () => {
  beforeEach(async () => {
    await flat(tar().dir('a').file('a/x', 'lower').file('a/y', 'lower').dir('a/sub').file('a/sub/deep', 'lower').file('b', 'lower').dir('c').file('c/z', 'lower'));
  });

  it('a whiteout deletes the lower file or dir', async () => {
    await flat(tar().whiteout('b').whiteout('a/sub').whiteout('nope/missing'));
    expect(listAll(root).sort()).toEqual(['a', 'a/x', 'a/y', 'c', 'c/z']);
  });

  it('an opaque marker clears lower contents but keeps this layer\'s entries', async () => {
    await flat(tar().dir('a').opaque('a').file('a/new', 'upper'));
    expect(listAll(root).sort()).toEqual(['a', 'a/new', 'b', 'c', 'c/z']);
  });

  it('out-of-order opaque (after siblings) keeps the same layer\'s earlier entries', async () => {
    await flat(tar().dir('a').file('a/new', 'upper').file('a/x', 'upper x').dir('a/sub').file('a/sub/n2', 'u').opaque('a'));
    expect(listAll(root).sort()).toEqual(['a', 'a/new', 'a/sub', 'a/sub/n2', 'a/x', 'b', 'c', 'c/z']);
    expect(readFileSync(join(root, 'a/x'), 'utf8')).toBe('upper x');
  });

  it('a .wh. collision (file and its whiteout in one layer) keeps the file', async () => {
    await flat(tar().file('b', 'upper').whiteout('b').file('c/z', 'upper z').whiteout('c/z'));
    expect(readFileSync(join(root, 'b'), 'utf8')).toBe('upper');
    expect(readFileSync(join(root, 'c/z'), 'utf8')).toBe('upper z');
  });

  it('a whiteout through a symlinked parent deletes inside root only', async () => {
    writeFileSync(join(sentinel, 'keep'), 'k');
    await flat(tar().symlink('l', sentinel).whiteout('l/keep').symlink('m', '../../sentinel').whiteout('m/keep'));
    expect(readdirSync(sentinel)).toEqual(['keep']);
  });
});

describe('whiteouts: overlay mode', () => {
  it('turns whiteouts into char 0:0 and opaque markers into the opaque xattr', async () => {
    await applyLayer(root, await tar().dir('a').opaque('a').file('a/n', '1').whiteout('gone').whiteout('a/old').stream(), { mode: 'overlay' });
    const wh = lstatSync(join(root, 'gone'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(lstatSync(join(root, 'a/old')).isCharacterDevice()).toBe(true);
    expect(getAttributeSync(join(root, 'a'), 'trusted.overlay.opaque').toString()).toBe('y');
    expect(existsSync(join(root, 'a/.wh..wh..opq'))).toBe(false);
    expect(readFileSync(join(root, 'a/n'), 'utf8')).toBe('1');
  });

  it('uses user.overlay.opaque when asked', async () => {
    await applyLayer(root, await tar().opaque('d').stream(), { mode: 'overlay', opaqueXattr: 'user.overlay.opaque' });
    expect(getAttributeSync(join(root, 'd'), 'user.overlay.opaque').toString()).toBe('y');
  });

  it('a file of the same layer wins over its whiteout in either order', async () => {
    await applyLayer(root, await tar().file('a', '1').whiteout('a').whiteout('b').file('b', '2').stream(), { mode: 'overlay' });
    expect(readFileSync(join(root, 'a'), 'utf8')).toBe('1');
    expect(readFileSync(join(root, 'b'), 'utf8')).toBe('2');
  });

  it('keeps the whole tree of a layer as-is', async () => {
    await applyLayer(root, await tar().dir('x').file('x/1', 'a').symlink('x/l', '/etc').hardlink('x/h', 'x/1').stream(), { mode: 'overlay' });
    expect(snapshotTree(root).map((e) => [e.path, e.type])).toEqual([
      ['x', 'dir'], ['x/1', 'file'], ['x/h', 'file'], ['x/l', 'symlink'],
    ]);
  });
});
