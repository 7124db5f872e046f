/**
 * imgbuild as an unprivileged user (`imgbuild-ci`, see test/helpers/rootless.ts): the store lands
 * in the user's $XDG_DATA_HOME, image commands work there, and what needs privileges it does not
 * have fails with one line naming the problem. Each test checks that the user has no process and
 * nothing mounted left.
 */
import { describe, expect, it } from 'vitest';
import { chmod, mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { ensureTestUser, makeUserEnv, useUserEnv, TEST_USER_NOSUB, type TestUser, type UserEnv } from '../helpers/rootless.js';

let user: TestUser;
let env: UserEnv;
useUserEnv((u, e) => {
  user = u;
  env = e;
});

describe('rootless', () => {
  it('the test user is unprivileged and has subordinate id ranges', () => {
    expect(user.uid).toBeGreaterThan(0);
    const sub = (f: string) => spawnSync('grep', ['-c', `^${user.name}:`, f], { encoding: 'utf8' }).stdout.trim();
    expect(sub('/etc/subuid')).toBe('1');
    expect(sub('/etc/subgid')).toBe('1');
  });

  it('import, images, save and info work, with the store under $XDG_DATA_HOME owned by the user', async () => {
    await env.importBusybox();
    const images = await env.cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stderr).toBe('');
    expect(images.stdout.trim()).toBe('busybox:latest');
    // Every file of the store belongs to the user: nothing a later command could not rewrite.
    const walk = async (d: string): Promise<string[]> => {
      const out: string[] = [];
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        out.push(p);
        if (e.isDirectory()) out.push(...(await walk(p)));
      }
      return out;
    };
    const files = await walk(env.root);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect({ f, uid: (await stat(f)).uid }).toEqual({ f, uid: user.uid });

    const out = join(env.dir, 'busybox-saved.tar');
    const saved = await env.cli(['save', '-o', out, 'busybox:latest']);
    expect(saved.stderr).toBe('');
    expect(saved.code).toBe(0);
    const list = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    expect(list.stdout).toContain('index.json');
    expect((await stat(out)).uid).toBe(user.uid);

    const info = await env.cli(['info', '--format', '{{.Rootless}} {{.RootDir}} {{.CgroupDriver}} {{.Snapshotter}} {{.Isolation}} {{.SecurityOptions}}']);
    expect(info.stderr).toBe('');
    expect(info.stdout.trim()).toBe(`true ${env.root} none overlayfs rootless [name=seccomp,profile=default name=rootless]`);
  });

  it('run: the container runs as root of a user namespace mapped from /etc/subuid; image owners stay the image\'s', async () => {
    // A layer with a file of uid/gid 1000, which a single-id mapping could not represent.
    const tarDir = join(env.dir, 'own');
    spawnSync('mkdir', ['-p', join(tarDir, 'home/app')]);
    spawnSync('sh', ['-c', `echo hello > ${tarDir}/home/app/f`]);
    const layer = join(env.dir, 'owned.tar');
    const t = spawnSync('tar', ['-C', tarDir, '--owner=1000', '--group=1000', '-cf', layer, 'home'], { encoding: 'utf8' });
    expect(t.status).toBe(0);
    spawnSync('chown', [`${user.uid}:${user.gid}`, layer]);
    await env.importBusybox();
    expect((await env.cli(['import', layer, 'owned:1'])).code).toBe(0);
    await env.file('Dockerfile', 'FROM owned:1\nCOPY --from=busybox / /\nRUN stat -c "%u:%g" /home/app/f > /owner && echo built > /home/app/g && chown 1000:1000 /home/app/g\n');
    const b = await env.cli(['build', '-q', '-t', 'built:1', env.dir]);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);

    const r = await env.cli(['run', '--rm', 'built:1', 'sh', '-c', 'id -u; cat /owner; stat -c "%u:%g" /bin/busybox /home/app/f; cat /proc/self/uid_map']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [uid, owner, bb, f, ...map] = r.stdout.trim().split('\n');
    expect({ uid, owner, bb, f }).toEqual({ uid: '0', owner: '1000:1000', bb: '0:0', f: '1000:1000' });
    // Container root is the user; 1..N its subordinate range.
    expect(map.map((l) => l.trim().split(/\s+/).map(Number))).toEqual([
      [0, user.uid, 1],
      [1, expect.any(Number), 65536],
    ]);
    // The layer RUN made records the image's owners (root, 1000), not the user's uid.
    const out = join(env.dir, 'built.tar');
    expect((await env.cli(['save', '-o', out, 'built:1'])).code).toBe(0);
    const x = join(env.dir, 'x');
    spawnSync('mkdir', [x]);
    spawnSync('tar', ['-C', x, '-xf', out]);
    const owners = new Map<string, string>();
    for (const blob of await readdir(join(x, 'blobs', 'sha256'))) {
      const l = spawnSync('tar', ['--numeric-owner', '-tvf', join(x, 'blobs', 'sha256', blob)], { encoding: 'utf8' });
      for (const line of l.stdout.split('\n')) {
        const m = /^\S+\s+(\d+\/\d+)\s.*\s(\S+)$/.exec(line);
        if (m) owners.set(m[2]!.replace(/^\.\//, ''), m[1]!);
      }
    }
    expect(owners.get('owner')).toBe('0/0');
    expect(owners.get('home/app/g')).toBe('1000/1000');
    expect(owners.get('bin/busybox')).toBe('0/0');
    expect([...owners.values()].filter((o) => o.startsWith(`${user.uid}/`))).toEqual([]);
  });

  it('detached: exec, logs, stop, commit, start, kill and rm as the user, nothing left', async () => {
    await env.importBusybox();
    const d = await env.cli(['run', '-d', '--name', 'c1', 'busybox', 'sh', '-c', 'echo started; exec sleep 100']);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    const e = await env.cli(['exec', 'c1', 'sh', '-c', 'id -u; echo x > /made']);
    expect(e.stderr).toBe('');
    expect(e.stdout.trim()).toBe('0');
    expect((await env.cli(['ps', '--format', '{{.Names}}'])).stdout.trim()).toBe('c1');
    expect((await env.cli(['inspect', '-f', '{{.GraphDriver.Name}} {{.HostConfig.Isolation}} {{.HostConfig.NetworkMode}}', 'c1'])).stdout).toBe('overlay rootless slirp4netns\n');
    expect((await env.cli(['logs', 'c1'])).stdout).toBe('started\n');
    // Another container's namespaces cannot be entered from a command's own user namespace: said
    // in one line, whatever the network (the default here is a user-mode one), never run unjoined.
    for (const flags of [['--pid', 'container:c1'], ['--ipc', 'container:c1'], ['--network', 'container:c1']]) {
      const j = await env.cli(['run', '--rm', ...flags, 'busybox', 'true']);
      expect(j.code).toBe(125);
      expectOneLineError(j, new RegExp(`^imgbuild: FAILED_PRECONDITION: ${flags[0]} container:[0-9a-f]{12} is not available rootless: each imgbuild command runs in a user namespace of its own`));
    }
    expect((await env.cli(['stop', '-t', '1', 'c1'])).code).toBe(0);
    expect((await env.cli(['ps', '-a', '--format', '{{.Status}}'])).stdout).toMatch(/^Exited \(137\)/);
    expect((await env.cli(['commit', 'c1', 'made:1'])).code).toBe(0);
    expect((await env.cli(['run', '--rm', 'made:1', 'cat', '/made'])).stdout).toBe('x\n');
    expect((await env.cli(['start', 'c1'])).code).toBe(0);
    expect((await env.cli(['kill', 'c1'])).code).toBe(0);
    expect((await env.cli(['start', 'c1'])).code).toBe(0);
    expectOneLineError(await env.cli(['update', '-m', '64m', 'c1']), /^imgbuild: FAILED_PRECONDITION: container [0-9a-f]{12} has no cgroup of its own \(rootless on this host\)/);
    const rm = await env.cli(['rm', '-f', 'c1']);
    expect(rm.stderr).toBe('');
    expect((await env.cli(['ps', '-a', '-q'])).stdout).toBe('');
  });

  it('limits fail with one line; --network none has only lo, host runs', async () => {
    await env.importBusybox();
    // This machine is cgroup v1, which delegates nothing to a user (v2: test/host/rootless-cgroup.test.ts).
    for (const flags of [['-m', '64m'], ['--cpus', '1'], ['--pids-limit', '10'], ['--cpu-shares', '512'], ['-m', '64m', '--memory-swap', '128m']]) {
      const r = await env.cli(['run', '--rm', ...flags, 'busybox', 'true']);
      expect(r.code).toBe(125);
      expectOneLineError(r, /^imgbuild: FAILED_PRECONDITION: --\S+(, --\S+)* cannot be applied to a rootless container: cgroup v1 does not support rootless limits \(they need cgroup v2 with a subtree delegated to the user, such as systemd's user@\d+\.service\)$/);
    }
    expect((await env.cli(['ps', '-a', '-q'])).stdout).toBe('');
    // The default network and `bridge` are a user-mode helper's (rootless-network.test.ts).
    const n = await env.cli(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']);
    expect(n.stdout).toBe('lo\n');
    expect((await env.cli(['run', '--rm', '--network', 'host', 'busybox', 'true'])).code).toBe(0);
  });

  it('a user without a subordinate range gets one warning line and the single-id mapping', async () => {
    const plain = await makeUserEnv(ensureTestUser(TEST_USER_NOSUB));
    try {
      await plain.importBusybox();
      const r = await plain.cli(['run', '--rm', 'busybox', 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe(
        `imgbuild: warning: no subordinate uid range for user ${TEST_USER_NOSUB} in /etc/subuid and no subordinate gid range for user ${TEST_USER_NOSUB} in /etc/subgid: add them with usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${TEST_USER_NOSUB} (meanwhile only ${TEST_USER_NOSUB}'s own id is mapped: files of an image's other users become root's)\n`,
      );
      const [uid, ...map] = r.stdout.trim().split('\n');
      expect(uid).toBe('0');
      expect(map.map((l) => l.trim().split(/\s+/).map(Number))).toEqual([[0, plain.user.uid, 1]]);
    } finally {
      await plain.cleanup();
    }
  });

  it('what is missing is named in one line: newuidmap, a working newuidmap, unshare, a writable store', async () => {
    await env.importBusybox();
    // A PATH holding only what starting the CLI as the user needs, plus the tools each case keeps.
    const bin = async (name: string, tools: string[]): Promise<string> => {
      const d = join(env.dir, name);
      await mkdir(d);
      for (const t of ['node', 'setpriv', 'env', ...tools]) await symlink(t === 'node' ? process.execPath : `/usr/bin/${t}`, join(d, t));
      return d;
    };
    const noUidmap = await env.cli(['run', '--rm', 'busybox', 'true'], { env: { PATH: await bin('no-uidmap', ['unshare']) } });
    expect(noUidmap.code).toBe(125);
    expectOneLineError(noUidmap, new RegExp(`^imgbuild: FAILED_PRECONDITION: newuidmap is not installed \\(not found in PATH\\): install the uidmap package, which maps user ${user.name}'s subordinate uids from /etc/subuid`));

    const noUnshare = await env.cli(['run', '--rm', 'busybox', 'true'], { env: { PATH: await bin('no-unshare', ['newuidmap', 'newgidmap']) } });
    expect(noUnshare.code).toBe(125);
    expectOneLineError(noUnshare, /^imgbuild: FAILED_PRECONDITION: unshare is not installed \(not found in PATH\): install the util-linux package/);

    // A newuidmap that is there but fails: unshare's own words, then imgbuild's line with them.
    const broken = await bin('broken', ['unshare', 'newgidmap']);
    await writeFile(join(broken, 'newuidmap'), '#!/bin/sh\necho "newuidmap: write to uid_map failed: Operation not permitted" >&2\nexit 1\n');
    await chmod(join(broken, 'newuidmap'), 0o4755);
    const failed = await env.cli(['run', '--rm', 'busybox', 'true'], { env: { PATH: broken } });
    expect(failed.code).toBe(125);
    expect(failed.stderr.trim().split('\n').at(-1)).toBe('imgbuild: FAILED_PRECONDITION: cannot make a user namespace: newuidmap: write to uid_map failed: Operation not permitted');
    expect(failed.stderr).not.toMatch(/at .*\.js:\d+/);

    // A store root ($XDG_DATA_HOME/imgbuild) in a directory the user may not write (root's).
    const locked = join(env.dir, 'locked');
    await mkdir(locked, { mode: 0o755 });
    const images = await runCli(['images'], { root: join(locked, 'imgbuild'), wrap: ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups'] });
    expectOneLineError(images, new RegExp(`^imgbuild: PERMISSION_DENIED: the store directory ${locked}/imgbuild is not writable: ${locked} is not writable by this user \\(hint: choose a directory this user may write with --root or XDG_DATA_HOME, or give it to the user \\(chown\\)\\)$`));
    const run = await runCli(['run', '--rm', 'busybox', 'true'], { root: join(locked, 'imgbuild'), env: { HOME: env.dir }, wrap: ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups'] });
    expectOneLineError(run, /^imgbuild: PERMISSION_DENIED: the store directory \S+ is not writable/);
  });
});
