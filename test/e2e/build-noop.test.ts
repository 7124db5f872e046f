/**
 * A rebuild that changes nothing, which does the least work a build can: every step a cache hit,
 * the same image id, the same lint warnings, no scratch dir left behind. And what it must still
 * notice: a base image whose name was moved to another image (the lookup lint made and the build
 * reuses is of that run, not the last one).
 */
import { afterAll, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { buildOk, machineMaker } from '../helpers/machines.js';
import { writeContext } from '../helpers/context.js';
import { runCli } from '../helpers/cli.js';
import { layerSteps } from '../helpers/build-outcomes.js';

const tmp = await makeTmp('imgbuild-e2e-build-noop-');
afterAll(() => tmp.cleanup());
const machine = machineMaker(tmp.dir);

const warns = (stderr: string): string[] => stderr.split('\n').filter((l) => /WARN/.test(l)).map((l) => l.replace(/^#\d+ /, ''));

it('a no-op rebuild hits every step, gives the same id and prints the same lint warnings', async () => {
  const root = await machine();
  // Lint findings: MAINTAINER (MaintainerDeprecated), a lowercase `as` (FromAsCasing).
  const ctx = await writeContext(tmp.dir, 'noop', { Dockerfile: 'FROM busybox as b\nMAINTAINER me\nRUN echo a > /a\nCOPY f /f\n', f: 'x' });
  const a = await buildOk(root, ctx, ['-t', 'noop']);
  const b = await buildOk(root, ctx, ['-t', 'noop']);
  expect(b.id).toBe(a.id);
  expect(layerSteps(b.stderr).map(([, o]) => o), b.stderr).toEqual(['CACHED', 'CACHED']);
  expect(warns(a.stderr).length).toBeGreaterThanOrEqual(2);
  expect(warns(b.stderr)).toEqual(warns(a.stderr));
  // The scratch dir of each build is gone.
  expect(await readdir(join(root, 'cache', 'build', 'tmp')).catch(() => [])).toEqual([]);
});

it('a rebuild after the base name moved to another image misses and builds on the new one', async () => {
  const root = await machine();
  expect((await runCli(['tag', 'busybox', 'base:x'], { root })).code).toBe(0);
  const ctx = await writeContext(tmp.dir, 'moved', { Dockerfile: 'FROM base:x\nRUN cat /marker 2>/dev/null > /seen; true\n' });
  const a = await buildOk(root, ctx, ['-t', 'out']);
  expect(layerSteps(a.stderr).map(([, o]) => o)).toEqual(['DONE']);
  // Another image under the base's name: busybox with /marker.
  const other = await writeContext(tmp.dir, 'other', { Dockerfile: 'FROM busybox\nRUN echo moved > /marker\n' });
  await buildOk(root, other, ['-t', 'base:x']);
  const b = await buildOk(root, ctx, ['-t', 'out']);
  expect(layerSteps(b.stderr).map(([, o]) => o), b.stderr).toEqual(['DONE']);
  expect(b.id).not.toBe(a.id);
  const r = await runCli(['run', '--rm', '--network', 'none', 'out', 'cat', '/seen'], { root });
  expect(r.stdout).toBe('moved\n');
  // And the next rebuild is a hit again, on the new base.
  const c = await buildOk(root, ctx, ['-t', 'out']);
  expect(c.id).toBe(b.id);
  expect(layerSteps(c.stderr).map(([, o]) => o)).toEqual(['CACHED']);
});
