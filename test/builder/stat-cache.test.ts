import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashFileSync, StatCache } from '../../src/builder/context.js';
import { makeTmp } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let ctx: string;
const files: string[] = [];
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-statcache-');
  ctx = join(tmp.dir, 'ctx');
  files.length = 0;
  // 12 directories of 10 files, one of them nested.
  for (let d = 0; d < 12; d++) {
    const dir = join(ctx, d === 11 ? 'd0/inner' : `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 10; i++) {
      const p = join(dir, `f${i}`);
      writeFileSync(p, `${d} ${i}`);
      files.push(p);
    }
  }
});
afterEach(async () => {
  await tmp.cleanup();
});

/** Hashes every file through the cache (in the order given) and checks each hash. */
function hashAll(c: StatCache, order = files): void {
  for (const p of order) expect(c.hashSync(p, lstatSync(p)), p).toBe(hashFileSync(p));
}

describe('StatCache', () => {
  it('answers unchanged files from the saved file with fewer entries in memory than files', async () => {
    const file = join(tmp.dir, 'cache', 'sc');
    const c1 = await StatCache.open(file, { cachedEntries: 15 });
    hashAll(c1);
    expect(c1.misses).toBe(120);
    await c1.save();
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe('{"v":2}');
    // Read back in another order, through the same small window: every file is a hit.
    const c2 = await StatCache.open(file, { cachedEntries: 15 });
    hashAll(c2, [...files].reverse());
    expect(c2.hits).toBe(120);
    expect(c2.misses).toBe(0);
    await c2.save(); // nothing changed: nothing written
    expect(readdirSync(join(tmp.dir, 'cache'))).toEqual(['sc']);
  });

  it('keeps a change made in a directory put out of memory, and the directories it did not read', async () => {
    const file = join(tmp.dir, 'sc');
    const c1 = await StatCache.open(file, { cachedEntries: 15 });
    hashAll(c1);
    await c1.save();
    appendFileSync(files[3]!, ' changed');
    appendFileSync(files[115]!, ' changed');
    // Only d0 (with d0/inner) and the last directory are read; the others are carried over as they were.
    const c2 = await StatCache.open(file, { cachedEntries: 15 });
    hashAll(c2, [...files.slice(0, 10), ...files.slice(110), ...files.slice(100, 110)]);
    expect(c2.misses).toBe(2);
    await c2.save();
    const c3 = await StatCache.open(file, { cachedEntries: 1000 });
    hashAll(c3);
    expect(c3.misses).toBe(0);
    expect(c3.hits).toBe(120);
    await c3.save();
  });

  it('reads a damaged or older file as empty, and a failed build leaves no file of its own', async () => {
    const file = join(tmp.dir, 'sc');
    writeFileSync(file, JSON.stringify({ v: 1, e: {} }));
    const c1 = await StatCache.open(file, { cachedEntries: 5 });
    hashAll(c1);
    expect(c1.misses).toBe(120);
    // Put out of memory, the changed directories went to a generation file: closing removes it.
    expect(readdirSync(tmp.dir).filter((n) => n.endsWith('.tmp'))).toHaveLength(1);
    c1.close();
    expect(readdirSync(tmp.dir).sort()).toEqual(['ctx', 'sc']);
    writeFileSync(file, '{"v":2}\n"/x"\tnot json\n');
    const c2 = await StatCache.open(file);
    hashAll(c2);
    expect(c2.misses).toBe(120);
    await c2.save();
    const c3 = await StatCache.open(file);
    hashAll(c3);
    expect(c3.hits).toBe(120);
  });
});

describe('hashFileSync and copySmallFileSync with the size the walk saw', () => {
  it('read a file that grew since it was walked whole, and one that did not the same as without a size', async () => {
    const { blake3Of } = await import('../../src/image/digest.js');
    const { copySmallFileSync, copyBuffer } = await import('../../src/builder/dispatch/copy-file.js');
    const p = files[0]!;
    const walked = lstatSync(p).size;
    expect(hashFileSync(p, walked)).toBe(hashFileSync(p));
    appendFileSync(p, ' and more');
    const now = readFileSync(p);
    expect(now.length).toBeGreaterThan(walked);
    expect(hashFileSync(p, walked)).toBe(blake3Of(now));
    const attrs = { uid: 0, gid: 0, mode: 0o644, mtimeMs: 0, size: walked };
    copySmallFileSync(p, join(tmp.dir, 'copied'), copyBuffer(), attrs);
    expect(readFileSync(join(tmp.dir, 'copied'))).toEqual(now);
    // A file that shrank is read to its (new) end too.
    writeFileSync(p, 'x');
    expect(hashFileSync(p, walked)).toBe(blake3Of(Buffer.from('x')));
    copySmallFileSync(p, join(tmp.dir, 'copied2'), copyBuffer(), attrs);
    expect(readFileSync(join(tmp.dir, 'copied2'), 'utf8')).toBe('x');
  });
});
