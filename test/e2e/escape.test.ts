/**
 * Attacks started from inside containers that `imgbuild run`, `run -d` and `exec` start with
 * default options, each of which must fail: the container's output as a host file, a working
 * directory naming a descriptor inherited from the caller, the exec helper seen (and traced)
 * from inside while it enters, device nodes shared with the host, setuid files left where other
 * users reach them, and the classic attempts (/proc/sys, mount, unshare, setns, keyrings,
 * /proc/1/root, chroot, mknod, modules, volume symlinks, `../` in ADD tars). COPY through
 * symlinks is covered in build-directives-and-confinement.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { mkdir, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setupEnv, waitFor, type Env } from './containers-env.js';
import { CLI_EXE, REPO_ROOT, type CliResult } from '../helpers/cli.js';
import { TarBuilder } from '../helpers/tar.js';

let env: Env;
let hostDir: string;
const MARKER = `host-marker-${process.pid}`;
const DEVS = ['null', 'zero', 'full', 'random', 'urandom', 'tty'].map((d) => `/dev/${d}`);
/** The host's device nodes before any container ran, to check against and to put back. */
const hostDevs = new Map<string, Stats>(DEVS.map((d) => [d, statSync(d)]));

// A build with an escape open must not leave the host's /dev changed for everything after it.
afterEach(() => {
  for (const [d, a] of hostDevs) {
    const b = statSync(d);
    if (b.mode !== a.mode) spawnSync('chmod', [(a.mode & 0o7777).toString(8), d]);
    if (b.uid !== a.uid || b.gid !== a.gid) spawnSync('chown', [`${a.uid}:${a.gid}`, d]);
  }
});

beforeAll(async () => {
  env = await setupEnv();
  const ctx = join(env.dir, 'probe-ctx');
  await mkdir(ctx);
  await copyFile(join(REPO_ROOT, 'native', 'build', 'test-init'), join(ctx, 'test-init'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY --chmod=755 test-init /usr/bin/test-init\n');
  const b = await env.cli(['build', '-q', '-t', 'probe', ctx]);
  expect(b.code, b.stderr).toBe(0);
  hostDir = join(env.dir, 'host-dir');
  await mkdir(hostDir);
  await writeFile(join(hostDir, MARKER), 'host secret\n');
}, 120_000);
afterAll(async () => {
  await env?.cleanup();
});

/** Runs the CLI with `fd` open at descriptor 64, as a caller that leaks a descriptor would. */
function cliWithFd(args: string[], fd: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const stdio: ('pipe' | 'ignore' | number)[] = ['pipe', 'pipe', 'pipe', ...Array<'ignore'>(61).fill('ignore'), fd];
    const child = spawn(CLI_EXE, ['--root', env.root, ...args], { cwd: hostDir, stdio });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.stdin!.end();
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

async function waitExited(name: string): Promise<void> {
  await waitFor(async () => {
    const r = await env.cli(['inspect', '-f', '{{.State.Status}}', name]);
    return r.stdout.trim() === 'exited' ? true : undefined;
  }, 60_000);
}

/** Every setuid or setgid file below `dir` (as root sees them). */
function setidFiles(dir: string): string[] {
  const r = spawnSync('find', [dir, '-xdev', '-type', 'f', '(', '-perm', '-4000', '-o', '-perm', '-2000', ')'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

describe('a container never gets a host file as its output', () => {
  it('run -d: stdout and stderr are a pipe; the log on the host stays a plain, private file', async () => {
    const attack = 'test-init fd-info 1 + fd-info 2; cat /bin/busybox > /proc/self/fd/1; chmod 4755 /proc/self/fd/1 /proc/self/fd/2; chmod 4755 /proc/self/fd/0';
    const r = await env.cli(['run', '-d', '--name', 'logsuid', 'probe', 'sh', '-c', attack]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    await waitExited('logsuid');
    const log = join(env.root, 'containers', id, 'log');
    const st = statSync(log);
    expect((st.mode & 0o7777).toString(8)).toBe('600');
    expect(st.size).toBeGreaterThan(1_000_000); // the binary went through the pipe into the log
    expect(readFileSync(log).subarray(0, 30).toString('latin1')).toContain('fd 1: fifo\nfd 2: fifo\n');
    // The host's /dev/null (once a detached container's stdin) kept its mode.
    expect(statSync('/dev/null').mode).toBe(hostDevs.get('/dev/null')!.mode);
  });

  it('the store is out of other users\' reach: setuid files made inside cannot be run from outside', async () => {
    // A setuid-root copy in the rootfs (upper dir on the host) and in the bind-mounted /etc/hosts.
    const attack = 'cp /bin/busybox /suid && chmod 4755 /suid && cat /bin/busybox > /etc/hosts && chmod 4755 /etc/hosts';
    const r = await env.cli(['run', '--name', 'suidmaker', 'probe', 'sh', '-c', attack]);
    expect(r.code, r.stderr).toBe(0);
    const found = setidFiles(env.root);
    expect(found.some((f) => f.endsWith('/suid'))).toBe(true);
    expect(found.some((f) => f.endsWith('/hosts'))).toBe(true);
    expect((statSync(env.root).mode & 0o077).toString(8)).toBe('0');
    for (const f of found) {
      const x = spawnSync(f, ['id', '-u'], { uid: 65534, gid: 65534, encoding: 'utf8' });
      expect(x.error && (x.error as NodeJS.ErrnoException).code, `${f} ran as nobody: ${x.stdout}`).toBe('EACCES');
    }
    await env.cli(['rm', '-f', 'suidmaker']);
  });
});

describe('the container cannot change host device nodes', () => {
  it('chmod and chown of /dev/* inside leave the host\'s nodes as they were', async () => {
    const r = await env.cli(['run', '--rm', 'probe', 'sh', '-c',
      'chmod 600 /dev/null /dev/zero /dev/full; chmod 4755 /dev/random; chown 1:1 /dev/urandom /dev/tty; echo x > /dev/null && head -c 3 /dev/zero | wc -c']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('3');
    for (const d of DEVS) {
      const a = hostDevs.get(d)!;
      const b = statSync(d);
      expect({ d, mode: b.mode, uid: b.uid, gid: b.gid }).toEqual({ d, mode: a.mode, uid: a.uid, gid: a.gid });
    }
  });
});

describe('a working directory never leads out of the container', () => {
  it('-w, WORKDIR and exec -w naming a descriptor the caller left open', async () => {
    const fd = openSync(hostDir, 'r');
    try {
      const wdCtx = join(env.dir, 'wd-ctx');
      await mkdir(wdCtx, { recursive: true });
      await writeFile(join(wdCtx, 'Dockerfile'), 'FROM probe\nWORKDIR /proc/self/fd/64\n');
      expect((await env.cli(['build', '-q', '-t', 'probe-wd', wdCtx])).code).toBe(0);
      const tries: CliResult[] = [
        await cliWithFd(['run', '--rm', '-w', '/proc/self/fd/64', 'probe', 'test-init', 'ls', '.'], fd),
        await cliWithFd(['run', '--rm', 'probe-wd', 'test-init', 'ls', '.'], fd),
        await cliWithFd(['run', '--rm', '-w', '/proc/self/fd/64/..', 'probe', 'test-init', 'ls', '.'], fd),
      ];
      const t = await env.cli(['run', '-d', '--name', 'wdtarget', 'probe', 'sleep', '60']);
      expect(t.code, t.stderr).toBe(0);
      tries.push(await cliWithFd(['exec', '-w', '/proc/self/fd/64', 'wdtarget', 'test-init', 'ls', '.'], fd));
      await env.cli(['rm', '-f', 'wdtarget']);
      for (const r of tries) {
        expect(r.stdout + r.stderr).not.toContain(MARKER);
        expect(r.code, r.stdout).not.toBe(0);
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(/working directory/);
      }
    } finally {
      closeSync(fd);
    }
  });
});

describe('exec enters without handing the container anything of the host', () => {
  it('a process watching /proc inside reaches no host descriptor or binary of 30 execs', async () => {
    const w = await env.cli(['run', '-d', '--name', 'watcher', 'probe', 'test-init', 'watch-procs', '20000', MARKER]);
    expect(w.code, w.stderr).toBe(0);
    await waitFor(async () => ((await env.cli(['logs', 'watcher'])).stdout.includes('watching') ? true : undefined));
    const fd = openSync(hostDir, 'r');
    try {
      for (let i = 0; i < 30; i++) {
        const r = await cliWithFd(['exec', 'watcher', 'test-init', 'echo', 'in'], fd);
        expect(r.code, `exec ${i}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toBe('in\n');
      }
    } finally {
      closeSync(fd);
    }
    expect((await env.cli(['exec', 'watcher', 'touch', '/tmp/stop-watching'])).code).toBe(0);
    await waitExited('watcher');
    const logs = (await env.cli(['logs', 'watcher'])).stdout;
    expect(logs.split('\n').filter((l) => /^(ESCAPE|EXE)/.test(l))).toEqual([]);
    // The watcher did see helpers before they exec'd (refused), so the race was really run.
    const denied = Number(/denied=(\d+)/.exec(logs)?.[1] ?? 0);
    expect(denied, logs).toBeGreaterThan(0);
    expect(readdirSync(hostDir)).toEqual([MARKER]);
    await env.cli(['rm', '-f', 'watcher']);
  });
});

describe('the classic attempts fail from a container run with default options', () => {
  const probes: [string, string[], RegExp][] = [
    ['/proc/sys is read-only', ['try-write', '/proc/sys/kernel/hostname', 'pwned', '+', 'try-write', '/proc/sys/kernel/core_pattern', '|/x'],
      /^\/proc\/sys\/kernel\/hostname: EROFS\n\/proc\/sys\/kernel\/core_pattern: EROFS\n$/],
    ['mount, remount and unmasking', ['try-mount'], /^mount tmpfs: EPERM\nremount \/ rw: EPERM\nremount \/proc\/sys rw: EPERM\numount \/proc\/keys: EPERM\n$/],
    ['keyrings, unshare, clone3, io_uring, the new mount API', ['try-seccomp'],
      /^keyctl: EPERM\nunshare user: EPERM\nunshare net: EPERM\nclone3: ENOSYS\nio_uring_setup: EPERM\nfsopen: EPERM\nfork: ok\n$/],
    ['setns into the namespaces /proc shows', ['try-setns'], /^(setns \w+: EPERM\n){7}$/],
    ['kernel modules', ['try-module'], /^init_module: (EPERM|ENOSYS)\nfinit_module: (EPERM|ENOSYS)\n$/],
    ['a disk made with mknod', ['try-disk', '/tmp/sda', '+', 'try-disk', '/dev/sda', '+', 'try-disk', '/dev/shm/sda'],
      /^(mknod b 8 0: (ok\nopen: (EACCES|EPERM)|EPERM|EACCES)\n){3}$/],
  ];
  it.each(probes)('%s', async (_name, args, expected) => {
    const r = await env.cli(['run', '--rm', 'probe', 'test-init', ...args]);
    expect(r.stdout).toMatch(expected);
    expect(r.code).toBe(0);
  });

  it('/proc/1/root and chroot lead back to the container\'s own root', async () => {
    const root = (await env.cli(['run', '--rm', 'probe', 'test-init', 'ls', '/'])).stdout;
    expect(root).toContain('usr\n');
    const r = await env.cli(['run', '--rm', 'probe', 'sh', '-c', 'readlink /proc/1/root; test-init ls /proc/1/root; test-init try-chroot']);
    expect(r.code, r.stderr).toBe(0);
    const [link, ...rest] = r.stdout.split('\n');
    expect(link).toBe('/');
    const out = rest.join('\n');
    expect(out.startsWith(root)).toBe(true);
    // after the chroot trick "/" is the container's root again (with the jail dir made for it)
    expect(out.slice(root.length)).toMatch(/^chroot: ok\nchroot \.: ok\n/);
    const after = out.slice(root.length).split('\n').slice(2).join('\n');
    expect(after.trim().split('\n')).toEqual(root.trim().split('\n'));
  });

  it('a volume whose destination is a symlink in the image stays inside the rootfs', async () => {
    const ctx = join(env.dir, 'vol-link-ctx');
    await mkdir(ctx, { recursive: true });
    const target = join(env.dir, 'vol-link-target');
    await writeFile(join(ctx, 'Dockerfile'), `FROM probe\nRUN ln -s /../../../../../..${target} /data && ln -s ../../../../..${target}/x /rel\n`);
    expect((await env.cli(['build', '-q', '-t', 'probe-vl', ctx])).code).toBe(0);
    // The mount point is made in the init layer (over the link) or at the link's target read
    // inside the rootfs, as Docker does; either way the host dir is seen inside, nothing outside.
    const r = await env.cli(['run', '--rm', '-v', `${hostDir}:/data`, '-v', `${hostDir}:/rel`, 'probe-vl', 'sh', '-c',
      `cat /data/${MARKER} 2>/dev/null || cat ${target}/${MARKER}; cat /rel/${MARKER} 2>/dev/null || cat ${target}/x/${MARKER}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('host secret\nhost secret\n');
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(hostDir)).toEqual([MARKER]);
  });

  it('ADD of a tar whose entries climb out is refused, naming the entry', async () => {
    const ctx = join(env.dir, 'add-dots-ctx');
    await mkdir(ctx, { recursive: true });
    const victim = join(env.dir, 'add-dots-victim');
    const evil = await new TarBuilder().file(`../../../../../../..${victim}`, 'x').file('ok', 'y').buffer();
    await writeFile(join(ctx, 'evil.tar'), evil);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM probe\nADD evil.tar /in/\n');
    const r = await env.cli(['build', '--progress=plain', '-t', 'probe-dots', ctx]);
    if (r.code === 0) {
      // confined instead of refused: the entry landed inside the image, never on the host
      const inside = await env.cli(['run', '--rm', 'probe-dots', 'cat', victim]);
      expect(inside.stdout).toBe('x');
    } else {
      expect(r.stderr).toMatch(/\.\.\//);
    }
    expect(existsSync(victim)).toBe(false);
  });
});
