/**
 * RUN cache mounts travelling with a build cache (`--cache-to ...,cache-mounts=true`): two stores
 * stand for two machines and a real docker-registry (or an OCI layout dir, type=local) carries the
 * cache between them. Machine A's RUN fills /cache; on machine B the context changed so the RUN
 * misses, and it finds A's /cache restored (content, owners, modes, links), keyed by id= or by
 * the target. A mount that already holds something on B is kept as it is; a mount blob whose bytes
 * were changed is a warning and the RUN runs with the mount empty. Privileged (root).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { machineMaker } from '../helpers/machines.js';
import { writeContext } from '../helpers/context.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { cacheMountDir } from '../../src/builder/dispatch/mounts.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let reg: TestRegistry;
/** A fresh machine: a store holding only the busybox base. */
let machine: () => Promise<string>;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-cache-mounts-');
  machine = machineMaker(tmp.dir);
  reg = await startRegistry({ mode: 'none' });
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});


async function build(root: string, ctx: string, args: string[]): Promise<{ id: string; stderr: string }> {
  const r = await runCli(['build', '--progress=plain', '--network', 'none', ...args, ctx], { root });
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return { id: r.stdout.trim(), stderr: r.stderr };
}

async function cat(root: string, image: string, path: string): Promise<string> {
  const r = await runCli(['run', '--rm', '--network', 'none', image, 'cat', path], { root });
  if (r.code !== 0) throw new Error(`run failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

// The RUN fills the mounts when they are empty (slowly, as a package manager would) and records
// what it found; a file owned by 1234:5678, mode 0600, and a symlink travel with them.
const DOCKERFILE = [
  'FROM busybox',
  'COPY input /input',
  "RUN --mount=type=cache,target=/cache --mount=type=cache,id=pkgs,target=/var/pkgs,uid=1000,mode=0700 sh -c '"
    + 'if test -f /cache/x; then echo restored > /result; else sleep 1; echo built > /cache/x; echo cold > /result; fi; '
    + 'test -f /var/pkgs/p || { echo pkg > /var/pkgs/p; chown 1234:5678 /var/pkgs/p; chmod 600 /var/pkgs/p; ln -s p /var/pkgs/link; }; '
    + "cat /cache/x /var/pkgs/p >> /result'",
  '',
].join('\n');

describe('build --cache-to cache-mounts=true', () => {
  it('restores a RUN cache mount from a registry cache on another machine, before the step that misses', async () => {
    const ctx = await writeContext(tmp.dir, 'reg-ctx', { Dockerfile: DOCKERFILE, input: 'one\n' });
    const ref = `${reg.host}/cache/mounts:latest`;
    const a = await machine();
    const built = await build(a, ctx, ['-t', 'app', '--cache-to', `type=registry,ref=${ref},cache-mounts=true`]);
    expect(built.id).toMatch(/^sha256:/);
    expect(await cat(a, 'app', '/result')).toBe('cold\nbuilt\npkg\n');

    // Machine B: the context changed, so the RUN runs again; its mounts come from A's cache.
    await writeFile(join(ctx, 'input'), 'two\n');
    const b = await machine();
    const r = await build(b, ctx, ['-t', 'app', '--cache-from', `type=registry,ref=${ref}`]);
    expect(await cat(b, 'app', '/result')).toBe('restored\nbuilt\npkg\n');
    expect(r.stderr).toMatch(/cache mount \/cache: restored/);
    expect(r.stderr).toMatch(/cache mount pkgs: restored/);
    // The restore is a phase of the RUN that waited for it.
    expect(r.stderr).toMatch(/#\d+ times: [^\n]*restore \d+\.\d\ds/);
    const pkgs = cacheMountDir(b, 'pkgs');
    const top = await lstat(pkgs);
    expect([top.mode & 0o7777, top.uid]).toEqual([0o700, 1000]);
    const p = await lstat(join(pkgs, 'p'));
    expect([p.uid, p.gid, p.mode & 0o7777]).toEqual([1234, 5678, 0o600]);
    expect(await readlink(join(pkgs, 'link'))).toBe('p');
    expect(await readFile(join(cacheMountDir(b, '/cache'), 'x'), 'utf8')).toBe('built\n');
  }, 90_000);

  it('a machine whose steps all hit passes the imported mounts on to the cache it writes', async () => {
    const ctx = await writeContext(tmp.dir, 'relay-ctx', { Dockerfile: DOCKERFILE, input: 'one\n' });
    const first = `${reg.host}/cache/relay:first`;
    const second = `${reg.host}/cache/relay:second`;
    await build(await machine(), ctx, ['--cache-to', `type=registry,ref=${first},cache-mounts=true`]);
    // B: every step hits, no RUN runs, its mounts stay empty; it writes the cache again.
    const b = await machine();
    const relay = await build(b, ctx, ['--cache-from', `type=registry,ref=${first}`, '--cache-to', `type=registry,ref=${second},cache-mounts=true`]);
    expect(relay.stderr).not.toMatch(/cache mount \/cache: restored/);
    // C: a changed context, imported from B's cache only: A's mount content arrives through B.
    await writeFile(join(ctx, 'input'), 'changed\n');
    const c = await machine();
    await build(c, ctx, ['-t', 'app', '--cache-from', `type=registry,ref=${second}`]);
    expect(await cat(c, 'app', '/result')).toBe('restored\nbuilt\npkg\n');
  }, 90_000);

  it('a mount blob whose bytes were changed in the cache is one warning: the RUN runs with the mount empty', async () => {
    const ctx = await writeContext(tmp.dir, 'fault-ctx', { Dockerfile: DOCKERFILE, input: 'one\n' });
    const dest = join(tmp.dir, 'fault-layout');
    await build(await machine(), ctx, ['--cache-to', `type=local,dest=${dest},cache-mounts=true`]);
    // The mount layers of the layout's cache, found as a reader finds them, changed in place (same size).
    const blob = (d: string): string => join(dest, 'blobs', 'sha256', d.slice('sha256:'.length));
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
    const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as { mounts: { id: string; layer: number }[] };
    expect(config.mounts.map((m) => m.id).sort()).toEqual(['/cache', 'pkgs']);
    for (const m of config.mounts) {
      const p = blob(manifest.layers[m.layer]!.digest);
      const bytes = await readFile(p);
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
      await writeFile(p, bytes);
    }
    await writeFile(join(ctx, 'input'), 'two\n');
    const b = await machine();
    const r = await build(b, ctx, ['-t', 'app', '--cache-from', `type=local,src=${dest}`]);
    expect(await cat(b, 'app', '/result')).toBe('cold\nbuilt\npkg\n');
    const warned = r.stderr.split('\n').filter((l) => l.includes('WARNING'));
    expect(warned).toHaveLength(2);
    expect(warned.filter((l) => l.includes('WARNING: cache mount /cache: not restored, the step runs with an empty mount'))).toHaveLength(1);
    expect(warned.filter((l) => l.includes('WARNING: cache mount pkgs: not restored, the step runs with an empty mount'))).toHaveLength(1);
    expect(await readFile(join(cacheMountDir(b, '/cache'), 'x'), 'utf8')).toBe('built\n');
  }, 90_000);

  it('keeps a local mount that holds anything; a cache without cache-mounts=true carries none', async () => {
    const ctx = await writeContext(tmp.dir, 'local-ctx', { Dockerfile: DOCKERFILE, input: 'one\n' });
    const dest = join(tmp.dir, 'layout');
    const a = await machine();
    await build(a, ctx, ['-t', 'app', '--cache-to', `type=local,dest=${dest},cache-mounts=true`]);
    await build(a, ctx, ['-t', 'app', '--cache-to', `type=local,dest=${join(tmp.dir, 'no-mounts')}`]);

    // Machine C holds its own /cache content already: it wins over the imported one.
    await writeFile(join(ctx, 'input'), 'three\n');
    const c = await machine();
    const mine = cacheMountDir(c, '/cache');
    await mkdir(mine, { recursive: true });
    await writeFile(join(mine, 'x'), 'local\n');
    const r = await build(c, ctx, ['-t', 'app', '--cache-from', `type=local,src=${dest}`]);
    expect(await cat(c, 'app', '/result')).toBe('restored\nlocal\npkg\n');
    expect(r.stderr).toMatch(/cache mount \/cache: the local content is kept/);

    // Machine D imports the cache written without cache-mounts=true: its mounts start empty.
    const d = await machine();
    const plain = await build(d, ctx, ['-t', 'app', '--cache-from', `type=local,src=${join(tmp.dir, 'no-mounts')}`]);
    expect(await cat(d, 'app', '/result')).toBe('cold\nbuilt\npkg\n');
    expect(plain.stderr).not.toMatch(/cache mount/);
  }, 90_000);
});
