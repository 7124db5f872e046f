/**
 * `build --cache-to type=registry` and `--cache-from` between two stores standing for two machines,
 * through the real distribution registry: a build on the second store with the first's cache runs
 * no RUN (each RUN writes random bytes, so a RUN that ran would change the image) and gives the
 * very same image digest, with no snapshot made (a hit needs descriptors only, the image's blobs
 * are fetched at the end); after a context change only the steps whose keys changed run, and later
 * steps hit again; mode=min keeps the image's steps, mode=max every stage's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { buildOk, machineMaker, validImageDigest } from '../helpers/machines.js';
import { writeContext } from '../helpers/context.js';
import { runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { outcomes } from '../helpers/build-outcomes.js';

const tmp = await makeTmp('imgbuild-e2e-cache-registry-');
let reg: TestRegistry;

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

/** A fresh store with busybox: one machine. */
const machine = machineMaker(tmp.dir);
const context = (name: string, files: Record<string, string>): Promise<string> => writeContext(tmp.dir, name, files);
const build = buildOk;

const manifestDigest = validImageDigest;

const DOCKERFILE = [
  'FROM busybox',
  'COPY a /a',
  'RUN head -c 64 /dev/urandom > /r1',
  'WORKDIR /w',
  'COPY b .',
  'RUN cat /a b > /ab && head -c 64 /dev/urandom > /r2',
  'ENV X=1',
  'LABEL l=v',
  'CMD ["cat", "/ab"]',
  '',
].join('\n');

it('a fresh store with the cache runs no RUN, makes no snapshot, and gives the same image digest', async () => {
  const ctx = await context('full', { Dockerfile: DOCKERFILE, a: 'A\n', b: 'B\n' });
  const ref = `${reg.host}/cache/full:c`;
  const m1 = await machine();
  const first = await build(m1, ctx, ['-t', 'app:1', '--cache-to', `type=registry,ref=${ref}`]);
  expect(first.stderr).toContain(`exporting cache to ${ref}`);

  const m2 = await machine();
  // Importing and exporting one ref, as a CI job does: the layers are fetched once, at the end.
  const second = await build(m2, ctx, ['-t', 'app:1', '--cache-from', ref, '--cache-to', `type=registry,ref=${ref}`]);
  expect(second.stderr.match(/^#\d+ fetching cached layer /gm)).toHaveLength(4);
  // Not one before the last step: the steps needed descriptors only, the image its blobs.
  expect(second.stderr.indexOf('fetching cached layer')).toBeGreaterThan(second.stderr.lastIndexOf('CACHED'));
  const steps = [...outcomes(second.stderr)].filter(([l]) => /^\[\S+ \d+\/\d+\] (RUN|COPY)/.test(l));
  expect(steps.length).toBe(4);
  expect(steps.every(([, o]) => o === 'CACHED'), second.stderr).toBe(true);
  expect(second.id).toBe(first.id);
  expect(await manifestDigest(m2, 'app:1')).toBe(await manifestDigest(m1, 'app:1'));
  // Nothing was unpacked or run: no snapshot exists on the second machine.
  expect(await readdir(join(m2, 'overlay', 'snapshots')).catch(() => [])).toEqual([]);
  // The image is whole there: it runs.
  const run = await runCli(['run', '--rm', '--network', 'none', 'app:1'], { root: m2 });
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toBe('A\nB\n');
  // The cache it wrote back serves a third machine as well.
  const third = await build(await machine(), ctx, ['-t', 'app:1', '--cache-from', ref]);
  expect(third.id).toBe(first.id);
}, 90_000);

it('after a context change only the steps whose keys changed run; later steps hit again', async () => {
  // With SOURCE_DATE_EPOCH a RUN's layer is the same bytes each time it runs, so the step that
  // reads the changed file rebuilds to the same layer and the RUN after it hits.
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const df = [
    'FROM busybox',
    'RUN --mount=type=bind,source=input,target=/in cat /in > /dev/null && echo fixed > /f',
    'RUN head -c 64 /dev/urandom > /r',
    'COPY input /input',
    'RUN head -c 64 /dev/urandom > /r2',
    '',
  ].join('\n');
  const ctx = await context('partial', { Dockerfile: df, input: 'one\n' });
  const ref = `${reg.host}/cache/partial:c`;
  const m1 = await machine();
  await build(m1, ctx, ['-t', 'p:1', '--cache-to', `type=registry,ref=${ref}`], env);
  const r1 = await runCli(['run', '--rm', '--network', 'none', 'p:1', 'cat', '/r'], { root: m1 });

  await writeFile(join(ctx, 'input'), 'two\n');
  const m2 = await machine();
  const second = await build(m2, ctx, ['-t', 'p:2', '--cache-from', `type=registry,ref=${ref}`], env);
  const o = outcomes(second.stderr);
  const status = (prefix: string): string | undefined => [...o].find(([l]) => l.includes(prefix))?.[1];
  expect(status('RUN --mount=type=bind'), second.stderr).toBe('DONE');
  expect(status('RUN head -c 64 /dev/urandom > /r\n') ?? status('/dev/urandom > /r'), second.stderr).toBe('CACHED');
  expect(status('COPY input /input')).toBe('DONE');
  expect(status('> /r2')).toBe('DONE');
  // The hit's layer is the first machine's: the same random bytes.
  const r2 = await runCli(['run', '--rm', '--network', 'none', 'p:2', 'cat', '/r'], { root: m2 });
  expect(r2.code, r2.stderr).toBe(0);
  expect(r2.stdout).toBe(r1.stdout);
}, 90_000);

it('mode=min keeps the image\'s steps, mode=max every stage\'s', async () => {
  const df = [
    'FROM busybox AS deps',
    'RUN head -c 64 /dev/urandom > /deps && echo not-copied > /other',
    'FROM busybox',
    'COPY --from=deps /deps /deps',
    'RUN head -c 64 /dev/urandom > /app',
    '',
  ].join('\n');
  const ctx = await context('modes', { Dockerfile: df });
  const m1 = await machine();
  await build(m1, ctx, ['-t', 'modes:1', '--cache-to', `type=registry,ref=${reg.host}/cache/modes:min`, '--cache-to', `type=registry,ref=${reg.host}/cache/modes:max,mode=max`]);

  // min: the deps stage's RUN is not in the cache, so it runs; the final stage's steps then miss
  // too (the copied file differs), which is what min means for a multi-stage build.
  const m2 = await machine();
  const min = outcomes((await build(m2, ctx, ['-t', 'modes:1', '--cache-from', `${reg.host}/cache/modes:min`])).stderr);
  expect([...min].find(([l]) => l.includes('> /deps'))?.[1]).toBe('DONE');
  // max: every step hits, the same image.
  const m3 = await machine();
  const max = await build(m3, ctx, ['-t', 'modes:1', '--cache-from', `${reg.host}/cache/modes:max`]);
  const steps = [...outcomes(max.stderr)].filter(([l]) => /\] (RUN|COPY)/.test(l));
  expect(steps.length).toBe(3);
  expect(steps.every(([, s]) => s === 'CACHED'), max.stderr).toBe(true);
  expect(await manifestDigest(m3, 'modes:1')).toBe(await manifestDigest(m1, 'modes:1'));
  // A machine that hit every step passes a mode=max cache on to another repository: the deps
  // stage's layer, never needed there, is mounted from the imported repository, not fetched.
  const m5 = await machine();
  // An OCI layout cannot mount: there the layer is fetched and copied.
  const dir = join(tmp.dir, 'relay-layout');
  const relay = await build(m5, ctx, ['-t', 'modes:1', '--cache-from', `${reg.host}/cache/modes:max`, '--cache-to', `type=registry,ref=${reg.host}/relay/modes:max,mode=max`, '--cache-to', `type=local,dest=${dir},mode=max`]);
  expect(relay.stderr.match(/^#\d+ fetching cached layer /gm)).toHaveLength(2);
  for (const from of [`${reg.host}/relay/modes:max`, `type=local,src=${dir}`]) {
    const relayed = await build(await machine(), ctx, ['-t', 'modes:1', '--cache-from', from]);
    expect([...outcomes(relayed.stderr)].filter(([l]) => /\] (RUN|COPY)/.test(l)).map(([, s]) => s)).toEqual(['CACHED', 'CACHED', 'CACHED']);
    expect(relayed.id).toBe(max.id);
  }
  // Several imports: each step from the first that has it (the deps stage's from max only).
  const several = await build(await machine(), ctx, ['-t', 'modes:1', '--cache-from', `${reg.host}/cache/modes:min`, '--cache-from', `type=registry,ref=${reg.host}/cache/modes:max`]);
  expect([...outcomes(several.stderr)].filter(([l]) => /\] (RUN|COPY)/.test(l)).map(([, s]) => s)).toEqual(['CACHED', 'CACHED', 'CACHED']);
  expect(several.id).toBe(max.id);
  // min on a machine that has the deps stage locally: the final stage hits from the cache.
  const m4 = await machine();
  await build(m4, ctx, ['--target', 'deps', '--cache-from', `${reg.host}/cache/modes:max`]);
  const both = outcomes((await build(m4, ctx, ['-t', 'modes:1', '--cache-from', `${reg.host}/cache/modes:min`])).stderr);
  expect([...both].filter(([l]) => /\] (RUN|COPY)/.test(l)).every(([, s]) => s === 'CACHED')).toBe(true);
}, 90_000);

it('the same digest with --compression and --format docker, and with SOURCE_DATE_EPOCH', async () => {
  const ctx = await context('formats', { Dockerfile: DOCKERFILE, a: 'A\n', b: 'B\n' });
  for (const [i, args, env] of [
    [1, ['--compression', 'gzip', '--format', 'docker'], {}],
    [2, ['--compression', 'zstd'], { SOURCE_DATE_EPOCH: '1700000000' }],
  ] as const) {
    const ref = `${reg.host}/cache/formats:${i}`;
    const m1 = await machine();
    await build(m1, ctx, ['-t', 'f:1', ...args, '--cache-to', `type=registry,ref=${ref}`], env);
    const m2 = await machine();
    const r = await build(m2, ctx, ['-t', 'f:1', ...args, '--cache-from', ref], env);
    expect([...outcomes(r.stderr)].filter(([l]) => /\] (RUN|COPY)/.test(l)).every(([, s]) => s === 'CACHED'), r.stderr).toBe(true);
    expect(await manifestDigest(m2, 'f:1')).toBe(await manifestDigest(m1, 'f:1'));
  }
}, 90_000);
