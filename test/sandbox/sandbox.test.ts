import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandboxError } from '../../src/sandbox/errors.js';
import { capabilitiesFromMask } from '../../src/sandbox/capabilities.js';
import { AbortedError } from '../../src/errors.js';
import { makeBox, waitGone, type Box, sh } from './fixture.js';

let box: Box;
beforeEach(async () => {
  box = await makeBox();
});
afterEach(async () => {
  await box.cleanup();
});

describe('runSandbox: process', () => {
  it('passes the exit code and separates stdout from stderr', async () => {
    const r = await box.run(box.spec(sh('echo', 'out', '+', 'err', 'oops', '+', 'exit', '7')));
    expect(r).toEqual({ exitCode: 7, stdout: 'out\n', stderr: 'oops\n' });
  });

  it('feeds stdin', async () => {
    const r = await box.run(box.spec(sh('cat')), { input: 'from stdin\n' });
    expect(r.stdout).toBe('from stdin\n');
  });

  it('reports death by signal as 128+n with the signal name', async () => {
    // without a pid namespace: as pid 1 the process could not kill itself
    const r = await box.run(box.spec(sh('kill-self', '9'), { namespaces: ['mount', 'uts', 'ipc', 'net'] }));
    expect(r).toMatchObject({ exitCode: 137, signal: 'SIGKILL' });
  });

  it('sets env, cwd, user and supplementary groups', async () => {
    const r = await box.run(
      box.spec(sh('env', '+', 'pwd', '+', 'id'), {
        proc: { env: ['PATH=/bin', 'FOO=bar baz'], cwd: '/work', user: { uid: 1000, gid: 1001, additionalGids: [5, 20] } },
      }),
    );
    expect(r.stdout).toBe('PATH=/bin\nFOO=bar baz\n/work\nuid=1000 gid=1001 euid=1000 groups=5,20\n');
  });

  it('looks the program up in the container PATH', async () => {
    const r = await box.run(box.spec(['test-init', 'echo', 'found'], { proc: { env: ['PATH=/nope:/bin'] } }));
    expect(r.stdout).toBe('found\n');
  });

  it('runs as pid 1 with its own hostname and only lo in a new network namespace', async () => {
    const r = await box.run(box.spec(sh('pid', '+', 'hostname', '+', 'status', 'SigBlk', '+', 'cat', '/proc/net/dev'), { hostname: 'box1' }));
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('pid=1 ppid=0');
    expect(lines[1]).toBe('box1');
    expect(lines[2]).toBe('SigBlk:\t0000000000000000'); // nothing of the helper's signal mask leaks
    const devs = lines.slice(5).filter(Boolean).map((l) => l.split(':')[0]!.trim());
    expect(devs).toEqual(['lo']);
  });

  it('applies rlimits, clamping to the hard limit it cannot raise', async () => {
    const r = await box.run(
      box.spec(sh('rlimit'), { proc: { rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1234, hard: 4321 }] } }),
    );
    expect(r.stdout).toBe('nofile=1234:4321\n');
    const hard = Number(readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+\d+\s+(\d+)/)![1]);
    const r2 = await box.run(
      box.spec(sh('rlimit'), { proc: { rlimits: [{ type: 'RLIMIT_NOFILE', soft: hard * 10, hard: hard * 10 }] } }),
    );
    expect(r2.stdout).toBe(`nofile=${hard}:${hard}\n`);
  });

  it("keeps only Docker's default capabilities, or the ones asked for", async () => {
    const r = await box.run(box.spec(sh('status', 'CapEff', '+', 'status', 'CapBnd', '+', 'nnp')));
    const [eff, bnd, nnp] = r.stdout.trim().split('\n');
    expect(eff).toBe('CapEff:\t00000000a80425fb');
    expect(bnd).toBe('CapBnd:\t00000000a80425fb');
    expect(nnp).toBe('no_new_privs=0');
    const r2 = await box.run(
      box.spec(sh('status', 'CapEff', '+', 'nnp'), { proc: { capabilities: ['CAP_NET_ADMIN', 'CAP_KILL'], noNewPrivileges: true } }),
    );
    const [eff2, nnp2] = r2.stdout.trim().split('\n');
    expect(capabilitiesFromMask(eff2!.split('\t')[1]!).sort()).toEqual(['CAP_KILL', 'CAP_NET_ADMIN']);
    expect(nnp2).toBe('no_new_privs=1');
  });

  it('a non-root user has no effective capabilities', async () => {
    const r = await box.run(box.spec(sh('status', 'CapEff'), { proc: { user: { uid: 1000, gid: 1000 } } }));
    expect(r.stdout).toBe('CapEff:\t0000000000000000\n');
  });

  it('runs a minimal init as pid 1 with init: true', async () => {
    const r = await box.run(box.spec(sh('pid', '+', 'status', 'SigBlk', '+', 'status', 'SigIgn', '+', 'orphans', '+', 'exit', '3'), { init: true }));
    expect(r.stdout).toBe('pid=2 ppid=1\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
    expect(r.exitCode).toBe(3);
  });

  it('is killed when the signal aborts', async () => {
    const ac = new AbortController();
    const started = new Promise<number>((resolve) => {
      void box.run(box.spec(sh('sleep', '30')), { signal: ac.signal, onStart: ({ pid }) => resolve(pid) }).catch(() => {});
    });
    const pid = await started;
    const p = box.run(box.spec(sh('sleep', '30')), { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(await waitGone(pid)).toBe(true);
  });
});

describe('runSandbox: filesystem', () => {
  it('has a minimal /dev with a private devpts', async () => {
    const r = await box.run(box.spec(sh('ls', '/dev', '+', 'readlink', '/dev/ptmx', '+', 'cat', '/dev/null')));
    expect(r.stdout).toBe(
      ['core', 'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero', 'pts/ptmx', ''].join('\n'),
    );
    const m = await box.run(box.spec(sh('mounts')));
    expect(m.stdout).toMatch(/^\/dev\/pts /m);
    expect(m.stdout).toMatch(/^\/sys ro,/m);
    expect(m.stdout).toMatch(/^\/proc\/sys ro,/m);
  });

  it('masks and write-protects kernel paths', async () => {
    const r = await box.run(
      box.spec(sh('cat', '/proc/keys', '+', 'ls', '/sys/firmware', '+', 'try-write', '/proc/sys/kernel/hostname', 'x', '+', 'try-write', '/proc/sys/vm/drop_caches', '3')),
    );
    expect(r.stdout).toBe('/proc/sys/kernel/hostname: EROFS\n/proc/sys/vm/drop_caches: EROFS\n');
  });

  it('custom masked and read-only paths', async () => {
    mkdirSync(join(box.rootfs, 'etc', 'secret'));
    writeFileSync(join(box.rootfs, 'etc', 'secret', 'key'), 'k');
    writeFileSync(join(box.rootfs, 'etc', 'conf'), 'c');
    const r = await box.run(
      box.spec(sh('ls', '/etc/secret', '+', 'try-write', '/etc/conf', 'x'), { maskedPaths: ['/etc/secret'], readonlyPaths: ['/etc/conf'] }),
    );
    expect(r.stdout).toBe('/etc/conf: EROFS\n');
  });

  it('mounts binds and tmpfs, read-only when asked', async () => {
    const vol = join(box.dir, 'vol');
    mkdirSync(vol);
    writeFileSync(join(vol, 'f'), 'volume file\n');
    const r = await box.run(
      box.spec(sh('cat', '/data/f', '+', 'touch', '/data/new', '+', 'touch', '/scratch/x', '+', 'touch', '/ro/y'), {
        mounts: [
          { destination: '/data', type: 'bind', source: vol, options: ['rbind'] },
          { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m'] },
          { destination: '/ro', type: 'bind', source: vol, options: ['rbind', 'ro'] },
        ],
      }),
    );
    expect(r.stdout).toBe('volume file\n/data/new: ok\n/scratch/x: ok\n/ro/y: EROFS\n');
    expect(existsSync(join(vol, 'new'))).toBe(true);
  });

  it('creates mount targets inside the rootfs even through symlinks that point out', async () => {
    const outside = join(box.dir, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, join(box.rootfs, 'escape'));
    symlinkSync('../../../../../../..' + outside, join(box.rootfs, 'escape2'));
    const r = await box.run(
      box.spec(sh('ls', '/'), {
        mounts: [
          { destination: '/escape/sub', type: 'tmpfs', source: 'tmpfs', options: [] },
          { destination: '/escape2/sub2', type: 'tmpfs', source: 'tmpfs', options: [] },
        ],
      }),
    );
    expect(r.exitCode).toBe(0);
    expect(readdirSync(outside)).toEqual([]);
    // the targets were made as if the rootfs were /: <rootfs><outside>/sub
    expect(existsSync(join(box.rootfs, outside, 'sub'))).toBe(true);
  });

  it('makes the rootfs read-only with readonlyRootfs', async () => {
    const r = await box.run(box.spec(sh('touch', '/etc/x', '+', 'touch', '/dev/shm/y'), { readonlyRootfs: true }));
    expect(r.stdout).toBe('/etc/x: EROFS\n/dev/shm/y: ok\n');
  });

  it('mounts an overlay rootfs with relative lowerdirs from its cwd', async () => {
    const sn = join(box.dir, 'snapshots');
    for (const d of ['1/fs', '2/fs', '2/work']) mkdirSync(join(sn, d), { recursive: true });
    // layer 1 = the test rootfs contents; layer 2 = upper
    const r0 = await box.run(box.spec(sh('exit', '0')));
    expect(r0.exitCode).toBe(0);
    const lower = box.rootfs;
    writeFileSync(join(sn, '1', 'fs', 'layer1'), 'one\n');
    const spec = box.spec(sh('cat', '/layer1', '+', 'touch', '/upper-file'), {
      rootfs: [{ type: 'overlay', source: 'overlay', options: [`lowerdir=1/fs:${lower}`, 'upperdir=2/fs', 'workdir=2/work'], cwd: sn }],
    });
    const r = await box.run(spec);
    expect(r.stdout).toBe('one\n/upper-file: ok\n');
    expect(existsSync(join(sn, '2', 'fs', 'upper-file'))).toBe(true);
  });

  it('runs in a user namespace with id mappings', async () => {
    const r = await box.run(
      box.spec(sh('id', '+', 'cat', '/proc/self/uid_map', '+', 'status', 'CapEff', '+', 'touch', '/tmp/x'), {
        namespaces: ['user', 'mount', 'pid', 'uts', 'ipc', 'net'],
        uidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
      }),
    );
    expect(r.stdout.split('\n')[0]).toBe('uid=0 gid=0 euid=0 groups=');
    expect(r.stdout).toMatch(/^\s+0\s+200000\s+65536$/m);
    expect(r.stdout).toContain('CapEff:\t00000000a80425fb');
    // host root's /tmp dir is not writable by the mapped root (it is "nobody" owned from inside)
    expect(r.stdout).toMatch(/\/tmp\/x: (EACCES|EPERM|EOVERFLOW)/);
  });

  it('idmaps the rootfs: its root-owned dirs are the mapped root\'s, and what it writes is stored with in-container owners', async () => {
    const r = await box.run(
      box.spec(sh('touch', '/tmp/x', '+', 'id'), {
        namespaces: ['user', 'mount', 'pid', 'uts', 'ipc', 'net'],
        uidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
        rootfsIdmap: true,
      }),
    );
    expect(r.stdout).toBe('/tmp/x: ok\nuid=0 gid=0 euid=0 groups=\n');
    // Through the idmapped bind, the mapped root's write lands on the disk as uid 0 again.
    expect(statSync(join(box.rootfs, 'tmp', 'x'))).toMatchObject({ uid: 0, gid: 0 });
  });
});

describe('runSandbox: errors are typed records', () => {
  it('missing rootfs → init stage, ENOENT', async () => {
    const spec = box.spec(sh('exit'), { rootfs: [{ type: 'bind', source: join(box.dir, 'nope'), options: ['rbind'] }] });
    const e = await box.run(spec).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SandboxError);
    expect(e).toMatchObject({ stage: 'init', errnoCode: 'ENOENT', syscall: 'mount', code: 'NOT_FOUND' });
  });

  it('bad cwd → chdir ENOTDIR; a missing one is created inside the rootfs', async () => {
    const e = await box.run(box.spec(sh('exit'), { proc: { cwd: '/bin/test-init/sub' } })).catch((x: unknown) => x);
    expect(e).toMatchObject({ stage: 'init', errnoCode: 'ENOTDIR', syscall: 'chdir' });
    const outside = join(box.dir, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, join(box.rootfs, 'link'));
    const r = await box.run(box.spec(sh('pwd'), { proc: { cwd: '/link/new/dir' } }));
    expect(r.stdout).toBe(`${outside}/new/dir\n`);
    expect(readdirSync(outside)).toEqual([]);
  });

  it('bad program → execve ENOENT / EACCES', async () => {
    const e = await box.run(box.spec(['/bin/nope'])).catch((x: unknown) => x);
    expect(e).toMatchObject({ stage: 'init', errnoCode: 'ENOENT', syscall: 'execve' });
    const e2 = await box.run(box.spec(['nope'])).catch((x: unknown) => x);
    expect((e2 as SandboxError).message).toContain('not found in $PATH');
    writeFileSync(join(box.rootfs, 'bin', 'noexec'), 'x', { mode: 0o644 });
    const e3 = await box.run(box.spec(['/bin/noexec'])).catch((x: unknown) => x);
    expect(e3).toMatchObject({ stage: 'init', errnoCode: 'EACCES', syscall: 'execve' });
  });

  it('user namespace without mappings is refused before start', async () => {
    await expect(box.run(box.spec(sh('exit'), { namespaces: ['user', 'mount'] }))).rejects.toThrow(/uidMappings/);
  });

  it('a bad netns path → parent stage', async () => {
    const e = await box.run(box.spec(sh('exit'), { netnsPath: '/run/netns/does-not-exist' })).catch((x: unknown) => x);
    expect(e).toMatchObject({ stage: 'parent', errnoCode: 'ENOENT', syscall: 'open' });
  });
});
