/**
 * RUN isolation (`build --isolation`, IMGBUILD_ISOLATION): `chroot` runs a step chrooted into its
 * rootfs with the namespaces that can be made, and builds the same layer as `oci`; `auto` takes
 * the full isolation where the host allows it (here) and says nothing. As an unprivileged user,
 * chroot builds on the copying snapshotter, and under no_new_privs (newuidmap powerless) the
 * build falls back to the single-id mapping with one warning line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { tmpBusyboxStore } from '../helpers/base-image.js';
import { ensureTestUser, makeUserEnv } from '../helpers/rootless.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let root: string;
let ctx: string;

beforeAll(async () => {
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-isolation-'));
  ctx = join(tmp.dir, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), [
    'FROM busybox',
    // What the step sees of its sandbox, kept out of the layer compared below.
    'RUN --mount=type=tmpfs,target=/probe echo "$$ $(hostname) $(cat /proc/1/comm)" > /dev/shm/seen && cat /dev/shm/seen',
    'RUN mkdir -p /app && echo a > /app/a && echo gone > /app/b && rm /app/b && rm /etc/group && chown 1:1 /app/a',
    '',
  ].join('\n'));
});
afterAll(async () => {
  await tmp.cleanup();
});

/** `path owner` of every entry of an image's last layer, from `save`. */
function lastLayerEntries(rootDir: string, ref: string, dir: string): string[] {
  const out = join(dir, 'img.tar');
  expect(spawnSync(join(import.meta.dirname, '..', '..', 'bin', 'imgbuild'), ['--root', rootDir, 'save', '-o', out, ref]).status).toBe(0);
  const x = join(dir, 'x');
  spawnSync('mkdir', ['-p', x]);
  spawnSync('tar', ['-C', x, '-xf', out]);
  const index = JSON.parse(spawnSync('cat', [join(x, 'index.json')], { encoding: 'utf8' }).stdout) as { manifests: { digest: string }[] };
  const blob = (d: string): string => join(x, 'blobs', 'sha256', d.replace('sha256:', ''));
  const manifest = JSON.parse(spawnSync('cat', [blob(index.manifests[0]!.digest)], { encoding: 'utf8' }).stdout) as { layers: { digest: string }[] };
  const l = spawnSync('tar', ['--numeric-owner', '-tvf', blob(manifest.layers.at(-1)!.digest)], { encoding: 'utf8' });
  spawnSync('rm', ['-rf', x, out]);
  return l.stdout.trim().split('\n').map((line) => {
    const f = line.split(/\s+/);
    return `${f[5]} ${f[1]}`;
  }).sort();
}

describe('build --isolation', () => {
  it('chroot: the step runs as pid 1 of its own pid namespace, named once, and makes the layer oci makes', async () => {
    const c = await runCli(['build', '--no-cache', '--progress', 'plain', '--isolation', 'chroot', '-t', 'iso:chroot', ctx], { root });
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr.match(/\[internal\] RUN isolation: chroot$/gm)).toHaveLength(1);
    // Root can make every namespace: its own pid 1, its hostname, a procfs of its own.
    expect(c.stderr).toMatch(/^#\d+ [\d.]+ 1 buildkitsandbox sh$/m);
    const o = await runCli(['build', '--no-cache', '--progress', 'plain', '-t', 'iso:oci', ctx], { root });
    expect(o.code, o.stderr).toBe(0);
    expect(o.stderr).not.toMatch(/RUN isolation:/);
    const chroot = lastLayerEntries(root, 'iso:chroot', tmp.dir);
    expect(chroot).toEqual(['app/ 0/0', 'app/a 1/1', 'etc/ 0/0', 'etc/.wh.group 0/0']);
    expect(lastLayerEntries(root, 'iso:oci', tmp.dir)).toEqual(chroot);
  });

  it('IMGBUILD_ISOLATION chooses it too, a bad value is one line, and info names what auto finds', async () => {
    const e = await runCli(['build', '--no-cache', '--progress', 'plain', '--storage-driver', 'vfs', ctx], { root, env: { IMGBUILD_ISOLATION: 'chroot' } });
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr).toMatch(/\[internal\] RUN isolation: chroot$/m);
    const bad = await runCli(['build', '--isolation', 'vm', ctx], { root });
    expectOneLineError(bad, /^imgbuild: INVALID_ARGUMENT: invalid isolation "vm": auto, oci or chroot$/);
    const info = await runCli(['info', '--format', '{{.Isolation}}'], { root });
    expect(info.stdout.trim()).toBe('namespaces');
    expect((await runCli(['info', '--format', '{{.Isolation}}'], { root, env: { IMGBUILD_ISOLATION: 'chroot' } })).stdout.trim()).toBe('chroot');
  });

  it('auto: the probe\'s full-isolation answer is kept in the store, a fixed isolation leaves it alone', async () => {
    const file = join(root, 'cache', 'isolation.json');
    const first = await runCli(['build', '--no-cache', '--progress', 'plain', ctx], { root });
    expect(first.code, first.stderr).toBe(0);
    const kept = JSON.parse(await readFile(file, 'utf8')) as { environment: string; isolation: string };
    expect(kept).toEqual({ environment: expect.stringMatching(/^[0-9a-f]{64}$/), isolation: 'oci' });
    // A damaged file is probed again and replaced.
    await writeFile(file, '{not json');
    const again = await runCli(['build', '--no-cache', '--progress', 'plain', ctx], { root });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/RUN isolation:/);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(kept);
    await writeFile(file, '{not json');
    expect((await runCli(['build', '--no-cache', '--isolation', 'oci', ctx], { root })).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('{not json');
    await writeFile(file, JSON.stringify(kept));
  });

  it('rootless under no_new_privs: one warning, the single-id mapping, and RUN under chroot on vfs builds', async () => {
    const ue = await makeUserEnv(ensureTestUser(), { noNewPrivs: true });
    try {
      await ue.importBusybox();
      await ue.file('Dockerfile', 'FROM busybox\nRUN cat /proc/self/uid_map > /map && echo x > /x\n');
      const b = await ue.cli(['build', '--isolation', 'chroot', '--storage-driver', 'vfs', '--progress', 'plain', '-t', 'nnp:1', ue.dir]);
      expect(b.code, b.stderr).toBe(0);
      const warnings = b.stderr.split('\n').filter((l) => l.startsWith('imgbuild: warning:'));
      expect(warnings).toEqual([
        `imgbuild: warning: the subordinate ids of user ${ue.user.name} cannot be mapped: no_new_privs is set, so newuidmap gains no privileges (Kubernetes: allowPrivilegeEscalation: false) (meanwhile only ${ue.user.name}'s own id is mapped: files of an image's other users become root's)`,
      ]);
      const r = await ue.cli(['run', '--rm', 'nnp:1', 'cat', '/map', '/x']);
      expect(r.code, r.stderr).toBe(0);
      const [map, x] = r.stdout.trim().split('\n');
      // The step's namespace mapped the user alone, as container root.
      expect(map!.trim().split(/\s+/).map(Number)).toEqual([0, ue.user.uid, 1]);
      expect(x).toBe('x');
    } finally {
      await ue.cleanup();
    }
  });
});
