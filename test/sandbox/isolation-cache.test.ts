/**
 * The isolation probe's kept answer (sandbox/isolation.ts `probeIsolationCached`): a full-isolation
 * answer found in this environment is used without probing; one of another environment, a chroot
 * answer or a damaged file means probing again. A probe here needs its scratch dir: pointed at a
 * dir that does not exist, a probe fails, so a call that returns did not probe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { isolationEnvironment, probeIsolationCached } from '../../src/sandbox/isolation.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let file: string;
const noProbe = { tmpDir: '/nonexistent/imgbuild-isolation-test' };

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-isolation-cache-');
  file = join(tmp.dir, 'cache', 'isolation.json');
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('probeIsolationCached', () => {
  it('probes once, keeps the full answer with its environment, and then answers from the file', async () => {
    expect(await probeIsolationCached(file, { tmpDir: tmp.dir })).toEqual({ isolation: 'oci' });
    const environment = await isolationEnvironment();
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ environment, isolation: 'oci' });
    expect(await probeIsolationCached(file, noProbe)).toEqual({ isolation: 'oci' });
  });

  it('probes again for another environment, a chroot answer or a damaged file', async () => {
    const environment = await isolationEnvironment();
    for (const text of [
      JSON.stringify({ environment: '0'.repeat(64), isolation: 'oci' }),
      JSON.stringify({ environment, isolation: 'chroot', reason: 'kept' }),
      '{not json',
      'null',
    ]) {
      await writeFile(file, text);
      await expect(probeIsolationCached(file, noProbe), text).rejects.toThrow(/ENOENT/);
      expect(await probeIsolationCached(file, { tmpDir: tmp.dir })).toEqual({ isolation: 'oci' });
      expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ environment, isolation: 'oci' });
    }
  });

  it('names the environment by what the answer depends on: the same twice in one process', async () => {
    const a = await isolationEnvironment();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(await isolationEnvironment()).toBe(a);
  });
});
