/**
 * The build cache when things go wrong, and its other places: a cache in an OCI layout directory;
 * two builds exporting to one ref at once (the last complete write wins, an import then works);
 * a cache ref that does not exist, a manifest that is not a cache or whose bytes were changed in
 * the registry's storage, a blob deleted from it or changed in place: each one warning line, the
 * affected steps built, the build successful; an export that fails (the build fails after storing
 * the image, or warns with ignore-error=true); and registries with Basic and token auth (credentials
 * from login and from a credential helper).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { buildOk, machineMaker, validImageDigest } from '../helpers/machines.js';
import { writeContext } from '../helpers/context.js';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { layerSteps } from '../helpers/build-outcomes.js';

const tmp = await makeTmp('imgbuild-e2e-cache-faults-');
let reg: TestRegistry;

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

const machine = machineMaker(tmp.dir);
const context = (name: string, dockerfile: string): Promise<string> => writeContext(tmp.dir, name, { Dockerfile: dockerfile });
const build = buildOk;

const warnings = (stderr: string): string[] => stderr.split('\n').filter((l) => l.includes('WARNING'));

/** Three RUN steps writing random bytes: a step that ran again changes the image. */
const THREE = 'FROM busybox\nRUN head -c 64 /dev/urandom > /1\nRUN head -c 4096 /dev/urandom > /2\nRUN head -c 64 /dev/urandom > /3\n';

const digestOf = validImageDigest;

/** The registry's file of a blob (distribution's filesystem driver). */
function blobData(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

async function cacheManifest(ref: string): Promise<{ config: { digest: string }; layers: { digest: string; size: number }[]; digest: string }> {
  const [repo, tag] = ref.slice(reg.host.length + 1).split(':');
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: MediaTypes.OCI_MANIFEST } });
  expect(res.status).toBe(200);
  return { ...((await res.json()) as { config: { digest: string }; layers: { digest: string; size: number }[] }), digest: res.headers.get('docker-content-digest')! };
}

it('type=local writes an OCI layout that another store builds from, to the same image', async () => {
  const ctx = await context('local', THREE);
  const dir = join(tmp.dir, 'local-cache');
  const m1 = await machine();
  await build(m1, ctx, ['-t', 'l:1', '--cache-to', `type=local,dest=${dir},compression=zstd`]);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
  expect(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name'])).toEqual(['latest']);
  // skopeo reads it as an OCI layout holding one artifact.
  const m2 = await machine();
  const r = await build(m2, ctx, ['-t', 'l:1', '--cache-from', `type=local,src=${dir}`]);
  expect(layerSteps(r.stderr).every(([, s]) => s === 'CACHED'), r.stderr).toBe(true);
  expect(await digestOf(m2, 'l:1')).toBe(await digestOf(m1, 'l:1'));
}, 90_000);

it('two builds exporting to one ref at once leave a cache that an import uses whole', async () => {
  const ref = `${reg.host}/faults/race:c`;
  const ctxA = await context('raceA', `${THREE}RUN echo a > /a\n`);
  const ctxB = await context('raceB', `${THREE}RUN echo b > /b\n`);
  const [ma, mb] = [await machine(), await machine()];
  const [a, b] = await Promise.all([
    build(ma, ctxA, ['-t', 'race:1', '--cache-to', `type=registry,ref=${ref}`]),
    build(mb, ctxB, ['-t', 'race:1', '--cache-to', `type=registry,ref=${ref}`]),
  ]);
  // Whichever wrote last: its image comes back whole, every step a hit.
  const m3 = await machine();
  const again = [await build(m3, ctxA, ['-t', 'race:1', '--cache-from', ref]), await build(await machine(), ctxB, ['-t', 'race:1', '--cache-from', ref])];
  const whole = again.map((r) => layerSteps(r.stderr).every(([, s]) => s === 'CACHED'));
  expect(whole.filter(Boolean).length, again.map((r) => r.stderr).join('\n')).toBe(1);
  const winner = whole[0] ? a : b;
  expect(again[whole[0] ? 0 : 1]!.id).toBe(winner.id);
  expect(warnings(again[0]!.stderr + again[1]!.stderr)).toEqual([]);
}, 90_000);

it('a ref that does not exist, or a manifest that is not a cache, is one warning and a cold build', async () => {
  const ctx = await context('absent', 'FROM busybox\nRUN echo hi > /hi\n');
  const m = await machine();
  const r = await build(m, ctx, ['--cache-from', `${reg.host}/faults/absent:nope`]);
  expect(warnings(r.stderr)).toHaveLength(1);
  expect(warnings(r.stderr)[0]).toMatch(/WARNING: cannot use the cache .*absent:nope: .*(not found|manifest unknown|404)/i);
  expect(layerSteps(r.stderr).map(([, s]) => s)).toEqual(['DONE']);

  // An image pushed under the ref: not a cache.
  const pushed = await build(m, ctx, ['-t', `${reg.host}/faults/image:1`, '--push']);
  expect(pushed.code).toBe(0);
  const m2 = await machine();
  const r2 = await build(m2, ctx, ['--cache-from', `${reg.host}/faults/image:1`]);
  expect(warnings(r2.stderr)).toEqual([expect.stringMatching(/: an image, not an imgbuild build cache \(images carry no step map: write a cache with --cache-to\)$/)]);
}, 90_000);

it('a manifest whose bytes changed in storage, a deleted blob, a blob changed in place: a warning each, the steps built', async () => {
  const ctx = await context('broken', THREE);
  const m1 = await machine();
  const refs = ['manifest', 'deleted', 'changed'].map((t) => `${reg.host}/faults/broken:${t}`);
  // Each cache from a build of its own (--no-cache: other random bytes), so no two share a blob.
  const first = [];
  for (const r of refs) first.push(await build(m1, ctx, ['--no-cache', '--cache-to', `type=registry,ref=${r},compression=uncompressed`]));

  // The manifest's bytes in storage replaced: the registry serves bytes that do not match its digest.
  const man = await cacheManifest(refs[0]!);
  await writeFile(blobData(man.digest), '{"schemaVersion":2,"broken":true}');
  const r0 = await build(await machine(), ctx, ['--cache-from', refs[0]!]);
  expect(warnings(r0.stderr)).toHaveLength(1);
  expect(layerSteps(r0.stderr).map(([, s]) => s)).toEqual(['DONE', 'DONE', 'DONE']);
  expect(first.map((f) => f.id)).not.toContain(r0.id);

  // The second RUN's blob deleted: steps 1 hits, 2 and 3 build (3's parent changed).
  const del = await cacheManifest(refs[1]!);
  const layer2 = del.layers[1]!;
  await rm(blobData(layer2.digest));
  const r1 = await build(await machine(), ctx, ['--cache-from', refs[1]!]);
  expect(warnings(r1.stderr)).toEqual([expect.stringMatching(new RegExp(`blob ${layer2.digest} is missing; building the step`))]);
  expect(layerSteps(r1.stderr).map(([, s]) => s)).toEqual(['CACHED', 'DONE', 'DONE']);

  // The second RUN's blob (4 KiB of random bytes, uncompressed) changed in place, same size: the
  // HEAD finds it, the step is a hit, and its bytes fail their digest when the image needs them;
  // the stages start again without it.
  const chg = await cacheManifest(refs[2]!);
  const layer = chg.layers[1]!;
  await writeFile(blobData(layer.digest), randomBytes(layer.size));
  const r2 = await build(await machine(), ctx, ['-t', 'b:2', '--cache-from', refs[2]!]);
  expect(warnings(r2.stderr)).toEqual([expect.stringMatching(new RegExp(`cache .*broken:changed: blob ${layer.digest}: .*; not using it`))]);
  expect(layerSteps(r2.stderr).map(([, s]) => s)).toEqual(['CACHED', 'DONE', 'DONE']);
}, 90_000);

it('a blob found broken when a step needs its content: the stages start again without it', async () => {
  const ctx = await context('instep', `${THREE}COPY x /x\n`);
  await writeFile(join(ctx, 'x'), '1\n');
  const ref = `${reg.host}/faults/instep:c`;
  await build(await machine(), ctx, ['--cache-to', `type=registry,ref=${ref},compression=uncompressed`]);
  const layer = (await cacheManifest(ref)).layers[1]!;
  await writeFile(blobData(layer.digest), randomBytes(layer.size));
  // The COPY misses (x changed) and needs its parent's snapshot: the layers are fetched then.
  await writeFile(join(ctx, 'x'), '2\n');
  const m = await machine();
  const r = await build(m, ctx, ['-t', 'instep:1', '--cache-from', ref]);
  expect(warnings(r.stderr)).toEqual([expect.stringMatching(new RegExp(`blob ${layer.digest}: .*; not using it`))]);
  expect(r.stderr).toMatch(/ERROR: no imported cache could give the layer sha256:[0-9a-f]{64} \(see the warning above\); the build starts its stages again without it/);
  expect(layerSteps(r.stderr).map(([, s]) => s)).toEqual(['CACHED', 'DONE', 'DONE', 'DONE']);
  const run = await runCli(['run', '--rm', '--network', 'none', 'instep:1', 'cat', '/x'], { root: m });
  expect(run.stdout).toBe('2\n');
}, 90_000);

it('an export that fails fails the build after the image is stored; ignore-error=true makes it a warning', async () => {
  const ctx = await context('export-fails', 'FROM busybox\nRUN echo x > /x\n');
  const m = await machine();
  const bad = await runCli(['build', '-q', '-t', 'ef:1', '--cache-to', 'type=registry,ref=127.0.0.1:1/nowhere:c', ctx], { root: m });
  expectOneLineError(bad, /^imgbuild: UNAVAILABLE: exporting the build cache to 127\.0\.0\.1:1\/nowhere:c: /);
  expect(await digestOf(m, 'ef:1')).toMatch(/^sha256:/);
  const ok = await build(m, ctx, ['-t', 'ef:1', '--cache-to', 'type=registry,ref=127.0.0.1:1/nowhere:c,ignore-error=true']);
  expect(warnings(ok.stderr)).toEqual([expect.stringMatching(/WARNING: failed to export the cache to 127\.0\.0\.1:1\/nowhere:c: /)]);
}, 90_000);

it('works through Basic and token auth with the credentials login saved or a credential helper gives; without them it is a warning', async () => {
  for (const mode of ['basic', 'token'] as const) {
    const r = await startRegistry({ mode });
    try {
      const docker = join(tmp.dir, `docker-${mode}`);
      const env = { DOCKER_CONFIG: docker };
      const m1 = await machine();
      const login = await runCli(['login', '-u', 'alice', '--password-stdin', r.host], { root: m1, env, input: 'wonderland\n' });
      expect(login.code, login.stderr).toBe(0);
      const ctx = await context(`auth-${mode}`, THREE);
      const ref = `${r.host}/auth/${mode}:c`;
      const first = await build(m1, ctx, ['-t', 'a:1', '--cache-to', `type=registry,ref=${ref}`], env);
      // The importing machine reads its credentials from a credential helper (credHelpers).
      const helper = join(tmp.dir, `helper-${mode}`);
      await mkdir(join(helper, 'bin'), { recursive: true });
      await writeFile(join(helper, 'bin', 'docker-credential-cachetest'), `#!/bin/sh\nread url\necho '{"ServerURL":"'$url'","Username":"alice","Secret":"wonderland"}'\n`, { mode: 0o755 });
      await writeFile(join(helper, 'config.json'), JSON.stringify({ credHelpers: { [r.host]: 'cachetest' } }));
      const m2 = await machine();
      const second = await build(m2, ctx, ['-t', 'a:1', '--cache-from', ref], { DOCKER_CONFIG: helper, PATH: `${join(helper, 'bin')}:${process.env.PATH}` });
      expect(layerSteps(second.stderr).every(([, s]) => s === 'CACHED'), second.stderr).toBe(true);
      expect(second.id).toBe(first.id);
      const anon = await build(await machine(), ctx, ['--cache-from', ref], { DOCKER_CONFIG: join(tmp.dir, 'nobody') });
      expect(warnings(anon.stderr)).toEqual([expect.stringMatching(/WARNING: cannot use the cache .*: .*(401|unauthorized|authentication)/i)]);
    } finally {
      await r.stop();
    }
  }
}, 90_000);
