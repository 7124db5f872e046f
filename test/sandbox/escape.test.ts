/**
 * Attempts to break out from inside the sandbox. Every one must be refused by the kernel.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeBox, type Box, sh } from './fixture.js';

let box: Box;
beforeEach(async () => {
  box = await makeBox();
});
afterEach(async () => {
  await box.cleanup();
});

describe('escape attempts fail', () => {
  it('writing /proc/sys/kernel/*', async () => {
    const r = await box.run(box.spec(sh('try-write', '/proc/sys/kernel/hostname', 'pwned', '+', 'try-write', '/proc/sys/kernel/core_pattern', '|/x')));
    expect(r.stdout).toBe('/proc/sys/kernel/hostname: EROFS\n/proc/sys/kernel/core_pattern: EROFS\n');
    expect(r.exitCode).toBe(0);
  });

  it('mount(2), remounts and unmasking', async () => {
    const r = await box.run(box.spec(sh('try-mount')));
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      'mount tmpfs: EPERM',
      'remount / rw: EPERM',
      'remount /proc/sys rw: EPERM',
      'umount /proc/keys: EPERM',
    ]);
    expect(r.exitCode).toBe(0);
  });

  it('regaining capabilities through a new user namespace', async () => {
    const r = await box.run(box.spec(sh('try-userns')));
    // unshare itself is allowed (no seccomp filter); what it grants must not reach the container's mounts
    // or the namespaces owned by the outer user namespace.
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^unshare: (ok|EPERM)$/);
    for (const l of lines.slice(1)) expect(l, l).not.toMatch(/: ok$/);
    expect(r.exitCode).toBe(0);
  });

  it('reaching the host through /proc/1/root (pid 1 is the container)', async () => {
    const r = await box.run(box.spec(sh('readlink', '/proc/1/root', '+', 'ls', '/proc/1/root', '+', 'pid')));
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toBe('/');
    expect(lines.slice(1, -1)).toEqual(readdirSync(box.rootfs).sort());
    expect(lines.at(-1)).toBe('pid=1 ppid=0');
  });

  it('the default syscall filter refuses keyrings, new namespaces, io_uring and the mount API', async () => {
    const r = await box.run(box.spec(sh('try-seccomp')));
    expect(r.stdout).toBe(
      'keyctl: EPERM\nunshare user: EPERM\nunshare net: EPERM\nclone3: ENOSYS\nio_uring_setup: EPERM\nfsopen: EPERM\nfork: ok\n',
    );
    const x = await box.run(box.spec(sh('status', 'Seccomp')));
    expect(x.stdout).toBe('Seccomp:\t2\n');
    // the same probes without the filter: keyrings and user namespaces answer
    const off = await box.run(box.spec(sh('try-seccomp'), { seccomp: false }));
    expect(off.stdout).toMatch(/^keyctl: ok\nunshare user: ok\n/);
  });

  it('loading kernel modules', async () => {
    const r = await box.run(box.spec(sh('try-module', '+', 'status', 'CapBnd')));
    // ENOSYS where the kernel is built without module support; EPERM otherwise
    expect(r.stdout).toMatch(/^init_module: (EPERM|ENOSYS)\nfinit_module: (EPERM|ENOSYS)\nCapBnd:/);
    const bnd = BigInt(`0x${r.stdout.split('CapBnd:\t')[1]!.trim()}`);
    expect((bnd >> 16n) & 1n).toBe(0n); // CAP_SYS_MODULE not even in the bounding set
    expect(r.exitCode).toBe(0);
  });

  it('opening a disk made with mknod (b 8 0)', async () => {
    for (const where of ['/tmp/sda', '/dev/shm/sda', '/dev/sda']) {
      const r = await box.run(box.spec(sh('try-disk', where)));
      // CAP_MKNOD is in the default set, so the node may be created; it must never open
      expect(r.stdout, where).toMatch(/^mknod b 8 0: (ok\nopen: (EACCES|EPERM)|EPERM|EACCES)\n$/);
      expect(r.exitCode, where).toBe(0);
    }
    const u = await box.run(
      box.spec(sh('try-disk', '/tmp/sda'), {
        namespaces: ['user', 'mount', 'pid', 'uts', 'ipc', 'net'],
        uidMappings: [{ containerID: 0, hostID: 300000, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: 300000, size: 65536 }],
      }),
    );
    expect(u.exitCode).toBe(0);
  });

  it('device nodes in a volume are inert; a bound device file or `dev` works', async () => {
    const vol = join(box.dir, 'vol');
    mkdirSync(vol);
    expect(spawnSync('mknod', [join(vol, 'null'), 'c', '1', '3']).status).toBe(0);
    const r = await box.run(
      box.spec(sh('cat', '/vol/null', '+', 'cat', '/devvol/null', '+', 'cat', '/mynull', '+', 'echo', 'end'), {
        mounts: [
          { destination: '/vol', type: 'bind', source: vol, options: ['rbind'] },
          { destination: '/devvol', type: 'bind', source: vol, options: ['rbind', 'dev'] },
          { destination: '/mynull', type: 'bind', source: '/dev/null', options: ['bind'] },
        ],
      }),
    );
    // the first cat fails (nodev); the next two read the null device (empty output), then "end"
    expect(r.stdout).toBe('cat /vol/null: EACCES\nend\n');
  });

  it('no host mounts are visible and the old root is gone', async () => {
    const r = await box.run(box.spec(sh('mounts')));
    const points = r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
    for (const p of points) expect(p === '/' || /^\/(proc|dev|sys)(\/|$)/.test(p!), p).toBe(true);
    expect(r.stdout).not.toContain(join(box.dir));
  });
});
