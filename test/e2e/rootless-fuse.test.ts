/**
 * The fuse-overlayfs storage driver, forced with `--storage-driver` / $IMGBUILD_STORAGE_DRIVER (the
 * kernel here mounts overlay in a user namespace, so the chain would never reach it by itself), as
 * the unprivileged `imgbuild-ci` user and as root:
 * - a RUN that deletes a file of the base and replaces a directory gives the layer the kernel
 *   overlay gives (same diff id under SOURCE_DATE_EPOCH, `.wh.group` and `.wh..wh..opq`), whether
 *   fuse-overlayfs wrote its whiteouts as char 0:0 devices or, where it may not mknod (forced with
 *   its FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT), as `.wh.` files; the test checks it saw both forms;
 * - run (foreground and detached), exec, diff, cp, commit, inspect and info name and use it;
 * - nothing stays mounted and no fuse-overlayfs daemon outlives its container.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeContext } from '../helpers/context.js';
import { useUserEnv, type TestUser, type UserEnv } from '../helpers/rootless.js';

const DOCKERFILE = `FROM busybox
RUN rm /etc/group && rm -rf /usr/sbin && mkdir /usr/sbin && echo new > /usr/sbin/tool && chown 1000:1000 /usr/sbin/tool
`;
const EPOCH = { SOURCE_DATE_EPOCH: '1000000' };
const MKNOD_OFF = { FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT: '1' };

/** Live (not zombie) fuse-overlayfs daemons, of `uid` and started with HOME=`home` when given. */
function fuseDaemons(uid?: number, home?: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (!stat.includes('(fuse-overlayfs)') || / Z /.test(stat.slice(stat.lastIndexOf(')')))) continue;
      if (uid !== undefined && lstatSync(`/proc/${p}`).uid !== uid) continue;
      if (home !== undefined && !readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`HOME=${home}`)) continue;
      out.push(`${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Waits until no daemon is left (each ends once its last mount is gone, a moment after its container). */
async function noDaemonsLeft(uid?: number, home?: string): Promise<string[]> {
  let left = fuseDaemons(uid, home);
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = fuseDaemons(uid, home);
  }
  return left;
}

function fuseMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('fuse'));
}

/** `type mode uid/gid name` of every entry of the image's last layer (through `save`). */
function lastLayer(saved: string, dir: string): string[] {
  spawnSync('mkdir', ['-p', dir]);
  expect(spawnSync('tar', ['-C', dir, '-xf', saved]).status).toBe(0);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string): string => join(dir, 'blobs', 'sha256', d.replace('sha256:', ''));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  const l = spawnSync('tar', ['--numeric-owner', '-tvf', blob(manifest.layers.at(-1)!.digest)], { encoding: 'utf8' });
  return l.stdout.trim().split('\n').map((line) => {
    const f = line.split(/\s+/);
    return `${f[0]} ${f[1]} ${f.at(-1)}`;
  });
}

/** The forms the fuse-overlayfs upper dirs under `root` hold for the deleted /etc/group. */
function whiteoutForms(root: string): Set<string> {
  const forms = new Set<string>();
  const snaps = join(root, 'fuse-overlayfs', 'snapshots');
  for (const id of readdirSync(snaps)) {
    const etc = join(snaps, id, 'fs', 'etc');
    try {
      if (lstatSync(join(etc, 'group')).isCharacterDevice()) forms.add('char 0:0');
    } catch {
      // not here
    }
    try {
      if (lstatSync(join(etc, '.wh.group')).isFile()) forms.add('.wh. file');
    } catch {
      // not here
    }
  }
  return forms;
}

const EXPECTED_LAYER = [
  'drwxr-xr-x 0/0 etc/',
  '---------- 0/0 etc/.wh.group',
  'drwxr-xr-x 0/0 usr/',
  'drwxr-xr-x 0/0 usr/sbin/',
  '---------- 0/0 usr/sbin/.wh..wh..opq',
  '-rw-r--r-- 1000/1000 usr/sbin/tool',
];

describe('fuse-overlayfs as the unprivileged user', () => {
  let user: TestUser;
  let env: UserEnv;
  useUserEnv((u, e) => {
    user = u;
    env = e;
  });
  // Runs before useUserEnv's cleanup (after-hooks run last-registered first).
  afterEach(async () => {
    expect(await noDaemonsLeft(user.uid, env.dir)).toEqual([]);
  });

  it('a RUN deleting a file and replacing a directory makes the layer overlay makes, from either whiteout form', async () => {
    await env.importBusybox();
    await env.file('Dockerfile', DOCKERFILE);
    const layers: Record<string, { id: string; entries: string[] }> = {};
    // (The third build has times of its own: a layer equal to the second's, diff id included,
    // would be found committed already and its upper dir dropped unread by the check below.)
    for (const [name, driver, extra] of [
      ['overlay', 'overlay', EPOCH],
      ['fuse-mknod', 'fuse-overlayfs', EPOCH],
      ['fuse-files', 'fuse-overlayfs', MKNOD_OFF],
    ] as const) {
      const b = await env.cli(['--storage-driver', driver, 'build', '--no-cache', '-q', '-t', name, env.dir], { env: extra });
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
      const id = (await env.cli(['inspect', '-f', '{{json .RootFS.Layers}}', name])).stdout.trim();
      const saved = join(env.dir, `${name}.tar`);
      expect((await env.cli(['save', '-o', saved, name])).code).toBe(0);
      layers[name] = { id, entries: lastLayer(saved, join(env.dir, `x-${name}`)) };
    }
    expect(layers.overlay!.entries).toEqual(EXPECTED_LAYER);
    expect(layers['fuse-mknod']).toEqual(layers.overlay);
    expect(layers['fuse-files']!.entries).toEqual(layers.overlay!.entries);
    // Both of fuse-overlayfs's forms were read, not one twice.
    expect(whiteoutForms(env.root)).toEqual(new Set(['char 0:0', '.wh. file']));
    const info = await env.cli(['--storage-driver', 'fuse-overlayfs', 'info', '--format', '{{.Driver}} {{.Snapshotter}}']);
    expect(info.stdout.trim()).toBe('fuse-overlayfs fuse-overlayfs');
    // Without a flag the chain picks the kernel's overlay, which mounts here in a user namespace.
    expect((await env.cli(['info', '--format', '{{.Driver}}'])).stdout.trim()).toBe('overlay');
  });

  it('run, exec, diff, cp, commit and inspect of containers on fuse-overlayfs; no daemon outlives them', async () => {
    await env.importBusybox();
    const fg = await env.cli(['run', '--rm', 'busybox', 'sh', '-c', 'grep " / " /proc/mounts | cut -d" " -f3; rm /etc/group; echo ok'], { env: { IMGBUILD_STORAGE_DRIVER: 'fuse-overlayfs' } });
    expect(fg.stderr).toBe('');
    expect(fg.stdout).toBe('fuse.fuse-overlayfs\nok\n');

    const d = await env.cli(['--storage-driver', 'fuse-overlayfs', 'run', '-d', '--name', 'f1', 'busybox', 'sleep', '100']);
    expect(d.stderr).toBe('');
    expect((await env.cli(['inspect', '-f', '{{.GraphDriver.Name}} {{.Driver}}', 'f1'])).stdout.trim()).toBe('fuse-overlayfs fuse-overlayfs');
    const e = await env.cli(['exec', 'f1', 'sh', '-c', 'rm /etc/passwd && mkdir -p /srv/app && echo hi > /srv/app/f && chown -R 1000:1000 /srv/app']);
    expect(e.stderr).toBe('');
    expect((await env.cli(['diff', 'f1'])).stdout).toBe('C /etc\nD /etc/passwd\nA /srv\nA /srv/app\nA /srv/app/f\n');
    const out = join(env.dir, 'f.txt');
    expect((await env.cli(['cp', 'f1:/srv/app/f', out])).stderr).toBe('');
    expect(readFileSync(out, 'utf8')).toBe('hi\n');
    expect((await env.cli(['commit', 'f1', 'f1:img'])).code).toBe(0);
    expect((await env.cli(['rm', '-f', 'f1'])).code).toBe(0);
    // A new volume gets the image's content (Docker's copy-up) through fuse-overlayfs too.
    const vol = await env.cli(['--storage-driver', 'fuse-overlayfs', 'run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'sh', '-c', 'stat -c %u /etc/passwd; head -c 5 /etc/passwd']);
    expect(vol.stderr).toBe('');
    expect(vol.stdout).toBe('0\nroot:');
    expect((await env.cli(['volume', 'rm', 'etcvol'])).code).toBe(0);
    // The committed layer, run on the default driver (overlay): one store, both drivers.
    const r = await env.cli(['run', '--rm', 'f1:img', 'sh', '-c', 'stat -c %u:%g /srv/app/f; test -e /etc/passwd || echo gone']);
    expect(r.stdout).toBe('1000:1000\ngone\n');
  });
});

describe('fuse-overlayfs as root', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let root: string;
  beforeAll(async () => {
    tmp = await makeTmp('imgbuild-e2e-fuse-');
    root = join(tmp.dir, 'store');
    await ensureBusybox(root);
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('builds the same layer as overlay, runs detached and in the foreground, and leaves no mount and no daemon', async () => {
    const ctx = await writeContext(tmp.dir, 'ctx', { Dockerfile: DOCKERFILE });
    const ids: string[] = [];
    for (const driver of ['overlay', 'fuse-overlayfs']) {
      const b = await runCli(['build', '--storage-driver', driver, '--no-cache', '-q', '-t', `r-${driver}`, ctx], { root, env: EPOCH });
      expect(b.stderr).toBe('');
      ids.push((await runCli(['inspect', '-f', '{{json .RootFS.Layers}}', `r-${driver}`], { root })).stdout);
    }
    expect(ids[1]).toBe(ids[0]);
    const fg = await runCli(['--storage-driver', 'fuse-overlayfs', 'run', '--rm', 'r-fuse-overlayfs', 'cat', '/usr/sbin/tool'], { root });
    expect(fg.stdout).toBe('new\n');
    const runc = await runCli(['--storage-driver', 'fuse-overlayfs', 'run', '--rm', '--runtime', 'runc', 'busybox', 'sh', '-c', 'grep " / " /proc/mounts | cut -d" " -f3'], { root });
    expect(runc.stderr).toBe('');
    expect(runc.stdout).toBe('fuse.fuse-overlayfs\n');
    expect(fuseMounts()).toEqual([]);
    const d = await runCli(['--storage-driver', 'fuse-overlayfs', 'run', '-d', '--name', 'rf', 'busybox', 'sleep', '100'], { root });
    expect(d.stderr).toBe('');
    // The daemon serves the container's own copy of the mount: the host's was dropped at start.
    expect(fuseMounts()).toEqual([]);
    expect(fuseDaemons(0).length).toBeGreaterThan(0);
    expect((await runCli(['exec', 'rf', 'sh', '-c', 'echo x > /x'], { root })).code).toBe(0);
    expect((await runCli(['diff', 'rf'], { root })).stdout).toBe('A /x\n');
    expect((await runCli(['rm', '-f', 'rf'], { root })).code).toBe(0);
    expect(fuseMounts()).toEqual([]);
    expect(await noDaemonsLeft(0)).toEqual([]);
  });

  it('rm unmounts what a killed start left mounted in the snapshot before deleting it', async () => {
    const c = await runCli(['--storage-driver', 'fuse-overlayfs', 'create', '--name', 'left', 'busybox', 'true'], { root });
    expect(c.stderr).toBe('');
    const id = c.stdout.trim();
    // What a start killed between mounting and handing the mount over leaves: the daemon serving
    // the container's rootfs on <snapshot>/merged.
    const spec = JSON.parse(readFileSync(join(root, 'containers', id, 'spec.json'), 'utf8')) as { rootfs: { options: string[]; cwd: string }[] };
    const m = spec.rootfs[0]!;
    const upper = m.options.find((o) => o.startsWith('upperdir='))!.slice('upperdir='.length);
    const merged = join(m.cwd, upper, '..', 'merged');
    spawnSync('mkdir', ['-p', merged]);
    expect(spawnSync('fuse-overlayfs', ['-o', m.options.join(','), merged], { cwd: m.cwd }).status).toBe(0);
    expect(fuseMounts().length).toBe(1);
    expect((await runCli(['rm', 'left'], { root })).stderr).toBe('');
    expect(fuseMounts()).toEqual([]);
    expect(await noDaemonsLeft(0)).toEqual([]);
    // Nothing was deleted through the mount: the image's layers are whole.
    expect((await runCli(['--storage-driver', 'fuse-overlayfs', 'run', '--rm', 'busybox', 'cat', '/etc/passwd'], { root })).stdout).toMatch(/^root:/);
  });

  it('names a bad driver in one line; vfs is for builds only', async () => {
    const bad = await runCli(['--storage-driver', 'zfs', 'run', '--rm', 'busybox', 'true'], { root });
    expect(bad.code).toBe(125);
    expectOneLineError(bad, /^imgbuild: INVALID_ARGUMENT: invalid storage driver "zfs": overlay, fuse-overlayfs or vfs$/);
    const vfs = await runCli(['run', '--rm', 'busybox', 'true'], { root, env: { IMGBUILD_STORAGE_DRIVER: 'vfs' } });
    expect(vfs.code).toBe(125);
    expectOneLineError(vfs, /^imgbuild: NOT_IMPLEMENTED: the vfs storage driver serves builds only/);
    expect((await runCli(['--storage-driver', 'vfs', 'info', '--format', '{{.Driver}}'], { root })).stdout.trim()).toBe('vfs');
  });
});
