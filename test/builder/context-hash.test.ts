import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashFile, hashFileSync } from '../../src/builder/context.js';
import { createHasher } from '../../src/image/digest.js';
import { makeTmp } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-ctxhash-');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('hashFileSync', () => {
  it('gives the blake3 of the whole file, for files smaller than, equal to and larger than its 1 MiB buffer', async () => {
    const MiB = 1024 * 1024;
    for (const size of [0, 1, 4096, MiB - 1, MiB, MiB + 1, 3 * MiB + 5]) {
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i += 997) data[i] = (i / 997) & 0xff;
      const p = join(tmp.dir, `f${size}`);
      writeFileSync(p, data);
      const h = createHasher('blake3');
      h.update(data);
      const want = h.digest();
      expect(hashFileSync(p), `size ${size}`).toBe(want);
      expect(await hashFile(p), `size ${size}`).toBe(want);
    }
  });
});
