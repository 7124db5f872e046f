import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveInRoot, resolveInRootSync, NotADirectoryError, SymlinkLoopError } from '../../src/tar/resolve.js';
import { makeTmp } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-resolve-');
  root = join(tmp.dir, 'root');
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  mkdirSync(join(tmp.dir, 'root-evil'));
  symlinkSync('/usr/lib', join(root, 'lib'));
  symlinkSync('../../../..', join(root, 'usr/up'));
  symlinkSync(join(tmp.dir, 'root-evil'), join(root, 'evil'));
  symlinkSync('../root-evil', join(root, 'sibling'));
  symlinkSync('loop2', join(root, 'loop1'));
  symlinkSync('loop1', join(root, 'loop2'));
  writeFileSync(join(root, 'file'), '');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('resolveInRoot', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['/', ''],
    ['usr/lib/x', 'usr/lib/x'],
    ['lib/x', 'usr/lib/x'], // absolute target, re-rooted
    ['usr/up/etc', 'etc'], // .. chain clamped at root
    ['../../etc/passwd', 'etc/passwd'],
    ['evil/x', '(host path of root-evil, re-rooted)'],
    ['sibling/x', 'root-evil/x'], // not /tmp/.../root-evil: no string-prefix confusion
    ['usr/lib/../../lib/y', 'usr/lib/y'],
    ['missing/../usr', 'usr'],
  ];
  for (const [name, want] of cases) {
    it(`${JSON.stringify(name)} → root/${want}`, async () => {
      const expected = name === 'evil/x' ? join(root, tmp.dir.slice(1), 'root-evil/x') : join(root, want);
      expect(await resolveInRoot(root, name)).toBe(expected);
    });
  }

  it('does not follow the last component when asked', () => {
    expect(resolveInRootSync(root, 'lib', { followFinal: false }).path).toBe(join(root, 'lib'));
    expect(resolveInRootSync(root, 'lib').path).toBe(join(root, 'usr/lib'));
  });

  it('reports loops and non-directories', () => {
    expect(() => resolveInRootSync(root, 'loop1/x')).toThrow(SymlinkLoopError);
    expect(() => resolveInRootSync(root, 'file/x')).toThrow(NotADirectoryError);
  });

  it('lenient: a file mid-path reads as missing (the rest taken lexically), loops still throw', () => {
    expect(resolveInRootSync(root, 'file/x/../y', { lenient: true }).rel).toBe('file/y');
    expect(resolveInRootSync(root, 'file/x/../../lib', { lenient: true }).rel).toBe('usr/lib');
    expect(() => resolveInRootSync(root, 'loop1/x', { lenient: true })).toThrow(SymlinkLoopError);
  });

  it('mkdirs creates missing parents inside root, through clamped links', () => {
    const r = resolveInRootSync(root, 'evil/a/b', { mkdirs: true });
    expect(r.path.startsWith(`${root}/`)).toBe(true);
    expect(existsSync(r.path)).toBe(true);
    expect(existsSync(join(tmp.dir, 'root-evil/a'))).toBe(false);
  });
});
