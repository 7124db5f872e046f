/**
 * Regenerates fixtures/layers/<case>.tar, the hostile and tricky layer tars the apply tests and
 * other subsystems (overlay unpack, export) replay: `npx tsx scripts/make-layer-fixtures.ts`.
 * Built with test/helpers/tar.ts (tar-stream), not with imgbuild's own writer.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tar, type TarBuilder } from '../test/helpers/tar.js';

/** Each case is meant to be applied over LOWER (see below). */
export const LAYER_FIXTURES: Record<string, () => TarBuilder> = {
  // deletes a lower file and a lower directory
  whiteout: () => tar().dir('a').whiteout('a/x').whiteout('b'),
  // marker first, as image-spec recommends
  opaque: () => tar().dir('a').opaque('a').file('a/new', 'upper'),
  // marker after this layer's own entries of that dir: they must survive
  'opaque-out-of-order': () => tar().dir('a').file('a/new', 'upper').file('a/x', 'upper x').opaque('a'),
  // a hard link to a file of the same layer, and one to a lower file
  hardlink: () => tar().file('h/orig', 'orig').hardlink('h/link', 'h/orig').hardlink('h/lower', 'b'),
  // a relative link climbing out, then a write through it: lands inside root
  'symlink-escape': () => tar().symlink('esc', '../../../../outside').file('esc/pwned', 'x'),
  // an absolute link, then a write through it: re-rooted
  'symlink-absolute': () => tar().symlink('abs', '/outside').file('abs/pwned', 'x').symlink('etc-link', '/etc'),
  // a file and a whiteout of the same name in one layer: the file stays
  'wh-collision': () => tar().file('b', 'upper b').whiteout('b').dir('a').file('a/.wh.y', '').file('a/y', 'upper y'),
  // entry name escaping: must be refused
  'name-escape': () => tar().file('ok', '1').file('../escaped', 'x'),
  // hard link to outside: must be refused
  'hardlink-escape': () => tar().hardlink('h', '../../etc/passwd'),
  // an absolute hard link target climbing above the root: must be refused
  'hardlink-absolute-escape': () => tar().file('ok', '1').hardlink('hl', '/../../etc/passwd'),
  // a whiteout naming "..": must be refused (it would delete the directory's parent)
  'whiteout-dotdot': () => tar().dir('a').file('a/.wh...', ''),
  // a device node: refused by applyLayer and checkLayerTar unless allowDevices (given by unpack,
  // pull and load where the process may make device nodes)
  'device': () => tar().dir('dev').char('dev/mem', 1, 1),
  // a name that climbs out, only in its PAX path record (the ustar name field holds a cut form)
  'pax-escape': () => tar().file(PAX_ESCAPE_NAME, 'x'),
};

/** Longer than the 100 bytes of a ustar name, so it is written as a PAX `path` record. */
export const PAX_ESCAPE_NAME = `${'d/'.repeat(60)}${'../'.repeat(61)}escaped`;

/** The entry each refused fixture is refused for. */
export const REFUSED_FIXTURES: Record<string, string> = {
  'name-escape': '../escaped',
  'hardlink-escape': 'h',
  'hardlink-absolute-escape': 'hl',
  'whiteout-dotdot': 'a/.wh...',
  device: 'dev/mem',
  'pax-escape': PAX_ESCAPE_NAME,
};

/** The tree the fixtures are applied on in flat mode. */
export const LOWER = (): TarBuilder => tar().dir('a').file('a/x', 'lower x').file('a/y', 'lower y').dir('a/sub').file('a/sub/z', 'z').file('b', 'lower b');

async function main(): Promise<void> {
  const dir = join(import.meta.dirname, '../fixtures/layers');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lower.tar'), await LOWER().buffer());
  for (const [name, mk] of Object.entries(LAYER_FIXTURES)) writeFileSync(join(dir, `${name}.tar`), await mk().buffer());
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) await main();
