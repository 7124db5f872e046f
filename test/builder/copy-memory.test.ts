import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { planCopy, planDigest } from '../../src/builder/dispatch/copy.js';
import { StatCache } from '../../src/builder/context.js';
import { makeTmp } from '../helpers/tmp.js';

// A full collection before each reading, so the figures are what is held, not garbage.
setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const heldMiB = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1048576;
};

const FILES = 40_000;
let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-copymem-');
  for (let i = 0; i < FILES; i++) {
    const dir = join(tmp.dir, 'ctx', 'files', `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}`), `file ${i}\n`);
  }
}, 80_000);
afterAll(async () => {
  await tmp.cleanup();
});

describe('memory of a COPY of many files', () => {
  it('a plan and the stat cache hold a bounded number of entries, cold and warm', async () => {
    const cacheFile = join(tmp.dir, 'stat-cache');
    const tree = (sc: StatCache) => ({ root: join(tmp.dir, 'ctx'), kind: 'context' as const, statCache: sc });
    const before = heldMiB();
    const sc = await StatCache.open(cacheFile);
    const plan = await planCopy({ sources: ['files'], tree: tree(sc), hash: true });
    // Held while the plan waits to be written: before, ~500 bytes a file (20 MiB here).
    const cold = heldMiB() - before;
    expect(sc.misses).toBe(FILES);
    expect(plan.items[0]!.walk).toBeDefined();
    await sc.save();

    const sc2 = await StatCache.open(cacheFile);
    const plan2 = await planCopy({ sources: ['files'], tree: tree(sc2), hash: true });
    const warm = heldMiB() - before;
    expect(sc2.hits).toBe(FILES);
    expect(planDigest(plan2)).toBe(planDigest(plan));
    expect(cold).toBeLessThan(8);
    expect(warm).toBeLessThan(8);
    sc2.close();
  }, 80_000);
});
