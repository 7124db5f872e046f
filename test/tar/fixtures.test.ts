/** Replays fixtures/layers/*.tar (scripts/make-layer-fixtures.ts) in flat and overlay mode. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createReadStream, lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { getAttributeSync } from 'fs-xattr';
import { applyLayer } from '../../src/tar/apply.js';
import { LAYER_FIXTURES, LOWER, REFUSED_FIXTURES } from '../../scripts/make-layer-fixtures.js';
import { makeTmp } from '../helpers/tmp.js';
import { listAll } from '../helpers/tar.js';
import { UnsafePathError } from '../../src/tar/errors.js';

const FIX = join(import.meta.dirname, '../../fixtures/layers');
let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-fixtures-');
  root = join(tmp.dir, 'root');
  mkdirSync(root);
  mkdirSync(join(tmp.dir, 'outside'));
});
afterEach(async () => {
  await tmp.cleanup();
});

const fixture = (name: string) => createReadStream(join(FIX, `${name}.tar`));
const read = (p: string) => readFileSync(join(root, p), 'utf8');
function outsideUntouched(): void {
  expect(readdirSync(join(tmp.dir, 'outside'))).toEqual([]);
  expect(readdirSync(tmp.dir).sort()).toEqual(['outside', 'root']);
}

describe('layer fixtures', () => {
  it('are up to date with scripts/make-layer-fixtures.ts', async () => {
    for (const [name, mk] of [...Object.entries(LAYER_FIXTURES), ['lower', LOWER] as const]) {
      expect((await mk().buffer()).equals(readFileSync(join(FIX, `${name}.tar`))), name).toBe(true);
    }
  });

  describe('flat mode over the lower tree', () => {
    beforeEach(async () => {
      await applyLayer(root, fixture('lower'), { mode: 'flat' });
    });
    const expected: Record<string, string[]> = {
      whiteout: ['a', 'a/sub', 'a/sub/z', 'a/y'],
      opaque: ['a', 'a/new', 'b'],
      'opaque-out-of-order': ['a', 'a/new', 'a/x', 'b'],
      hardlink: ['a', 'a/sub', 'a/sub/z', 'a/x', 'a/y', 'b', 'h', 'h/link', 'h/lower', 'h/orig'],
      'symlink-escape': ['a', 'a/sub', 'a/sub/z', 'a/x', 'a/y', 'b', 'esc', 'outside', 'outside/pwned'],
      'symlink-absolute': ['a', 'a/sub', 'a/sub/z', 'a/x', 'a/y', 'abs', 'b', 'etc-link', 'outside', 'outside/pwned'],
      'wh-collision': ['a', 'a/sub', 'a/sub/z', 'a/x', 'a/y', 'b'],
    };
    for (const [name, want] of Object.entries(expected)) {
      it(name, async () => {
        await applyLayer(root, fixture(name), { mode: 'flat' });
        expect(listAll(root).sort()).toEqual(want);
        outsideUntouched();
      });
    }
    it('details: collision keeps the layer\'s files, hard links share inodes', async () => {
      await applyLayer(root, fixture('wh-collision'), { mode: 'flat' });
      expect([read('b'), read('a/y')]).toEqual(['upper b', 'upper y']);
      await applyLayer(root, fixture('hardlink'), { mode: 'flat' });
      expect(lstatSync(join(root, 'h/link')).ino).toBe(lstatSync(join(root, 'h/orig')).ino);
      expect(lstatSync(join(root, 'h/lower')).ino).toBe(lstatSync(join(root, 'b')).ino);
    });
    for (const [name, entry] of Object.entries(REFUSED_FIXTURES)) {
      it(`${name} is refused, naming ${entry.length > 40 ? 'its PAX name' : entry}`, async () => {
        const err = await applyLayer(root, fixture(name), { mode: 'flat' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UnsafePathError);
        expect((err as UnsafePathError).entry).toBe(entry);
        outsideUntouched();
      });
    }
  });

  describe('overlay mode into an empty layer dir', () => {
    it('whiteout and opaque fixtures become overlayfs metadata', async () => {
      await applyLayer(root, fixture('whiteout'), { mode: 'overlay' });
      expect(lstatSync(join(root, 'a/x')).rdev).toBe(0);
      expect(lstatSync(join(root, 'b')).isCharacterDevice()).toBe(true);
      const r2 = join(tmp.dir, 'root');
      await applyLayer(r2, fixture('opaque-out-of-order'), { mode: 'overlay' });
      expect(getAttributeSync(join(r2, 'a'), 'trusted.overlay.opaque').toString()).toBe('y');
      expect(read('a/x')).toBe('upper x');
    });
    for (const name of ['symlink-escape', 'symlink-absolute']) {
      it(`${name} stays inside the layer dir`, async () => {
        await applyLayer(root, fixture(name), { mode: 'overlay' });
        expect(read('outside/pwned')).toBe('x');
        outsideUntouched();
      });
    }
    for (const [name, entry] of Object.entries(REFUSED_FIXTURES)) {
      it(`${name} is refused in overlay mode too`, async () => {
        const err = await applyLayer(root, fixture(name), { mode: 'overlay' }).catch((e: unknown) => e);
        expect((err as UnsafePathError).entry).toBe(entry);
        outsideUntouched();
      });
    }
    it('a refused stream is not left half-read', async () => {
      const src = Readable.from([readFileSync(join(FIX, 'name-escape.tar'))]);
      await expect(applyLayer(root, src, { mode: 'overlay' })).rejects.toBeInstanceOf(UnsafePathError);
      expect(src.destroyed).toBe(true);
    });
  });
});
