/**
 * The sandbox with the host pieces the containers layer hands it: cgroup dirs, a prepared
 * network namespace, a busybox rootfs with a shell, user-namespaced exec.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execIn, runSandbox, startDetached } from '../../src/sandbox/sandbox.js';
import { killIfAlive, makeBox, repo, waitGone, type Box, sh } from './fixture.js';

let box: Box;
const cleanups: (() => void)[] = [];
const started: number[] = [];
beforeEach(async () => {
  box = await makeBox();
});
afterEach(async () => {
  for (const p of started.splice(0)) {
    killIfAlive(p);
    expect(await waitGone(p)).toBe(true);
  }
  for (const c of cleanups.splice(0).reverse()) c();
  await box.cleanup();
});

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const parts: Buffer[] = [];
  stream.on('data', (c: Buffer) => parts.push(c));
  return { stream, text: () => Buffer.concat(parts).toString() };
}

async function waitFile(path: string): Promise<string> {
  for (let i = 0; i < 400; i++) {
    if (existsSync(path)) return readFileSync(path, 'utf8');
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${path} did not appear`);
}

describe('host integration', () => {
  it('places the process in cgroupPaths before it runs, and a cgroup namespace hides the path', async () => {
    const root = existsSync('/sys/fs/cgroup/pids/cgroup.procs') ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup';
    const name = `imgbuild-test-${basename(box.dir)}`;
    const cg = join(root, name);
    mkdirSync(cg);
    cleanups.push(() => rmdirSync(cg));
    const r = await box.run(box.spec(sh('cat', '/proc/self/cgroup'), { cgroupPaths: [cg] }));
    const line = root.endsWith('pids') ? /^\d+:pids:(.*)$/m : /^0::(.*)$/m;
    expect(r.stdout.match(line)?.[1]).toBe(`/${name}`);
    const r2 = await box.run(
      box.spec(sh('cat', '/proc/self/cgroup'), { cgroupPaths: [cg], namespaces: ['mount', 'pid', 'uts', 'ipc', 'net', 'cgroup'] }),
    );
    expect(r2.stdout.match(line)?.[1]).toBe('/');
  });

  it('a detached container killed by the OOM killer is reported as oomKilled', async () => {
    const mem = '/sys/fs/cgroup/memory';
    const useV1 = existsSync(join(mem, 'memory.oom_control'));
    const cg = join(useV1 ? mem : '/sys/fs/cgroup', `imgbuild-test-${basename(box.dir)}`);
    mkdirSync(cg);
    cleanups.push(() => rmdirSync(cg));
    if (useV1) writeFileSync(join(cg, 'memory.limit_in_bytes'), `${16 << 20}`);
    else writeFileSync(join(cg, 'memory.max'), `${16 << 20}`);
    const statusPath = join(box.dir, 's.json');
    const d = await startDetached(box.spec(sh('alloc', '256'), { cgroupPaths: [cg] }), { logPath: join(box.dir, 'log'), statusPath });
    started.push(d.pid, d.monitorPid);
    expect(JSON.parse(await waitFile(statusPath))).toMatchObject({ exitCode: 137, signal: 'SIGKILL', oomKilled: true });
    // and a normal exit in the same kind of cgroup is not
    const cg2 = `${cg}-ok`;
    mkdirSync(cg2);
    cleanups.push(() => rmdirSync(cg2));
    const s2 = join(box.dir, 's2.json');
    const d2 = await startDetached(box.spec(sh('alloc', '1'), { cgroupPaths: [cg2] }), { logPath: join(box.dir, 'log2'), statusPath: s2 });
    started.push(d2.pid, d2.monitorPid);
    expect(JSON.parse(await waitFile(s2))).toMatchObject({ exitCode: 0, oomKilled: false });
  });

  it('joins a prepared network namespace (netnsPath)', async () => {
    const ns = `imgbuild-test-${basename(box.dir)}`;
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    cleanups.push(() => spawnSync('ip', ['netns', 'del', ns]));
    expect(spawnSync('ip', ['-n', ns, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']).status).toBe(0);
    const r = await box.run(box.spec(sh('cat', '/proc/net/dev'), { netnsPath: `/run/netns/${ns}` }));
    const devs = r.stdout.split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim()).sort();
    expect(devs).toEqual(['lo', 'probe0', 'probe1']);
  });

  it('refuses a hostname without a uts namespace (it would rename the host)', async () => {
    await expect(box.run(box.spec(sh('exit'), { namespaces: ['mount', 'pid'], hostname: 'x' }))).rejects.toMatchObject({
      errnoCode: 'EINVAL',
      syscall: 'sethostname',
    });
  });

  it('execs into a user-namespaced container as its mapped root', async () => {
    const d = await startDetached(
      box.spec(sh('sleep', '30'), {
        namespaces: ['user', 'mount', 'pid', 'uts', 'ipc', 'net'],
        uidMappings: [{ containerID: 0, hostID: 400000, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: 400000, size: 65536 }],
      }),
      { logPath: join(box.dir, 'log'), statusPath: join(box.dir, 's.json') },
    );
    started.push(d.pid, d.monitorPid);
    const out = collect();
    const r = await execIn(d.pid, { args: sh('id', '+', 'cat', '/proc/self/uid_map'), env: [], cwd: '/', user: { uid: 0, gid: 0 } }, { stdout: out.stream });
    expect(r.exitCode).toBe(0);
    expect(out.text()).toMatch(/^uid=0 gid=0 euid=0 groups=\n\s+0\s+400000\s+65536\n$/);
    expect(readFileSync(`/proc/${d.pid}/status`, 'utf8')).toMatch(/^Uid:\s+400000\s/m);
  });

  it('a detached terminal goes to the log', async () => {
    const statusPath = join(box.dir, 's.json');
    const d = await startDetached(box.spec(sh('tty'), { proc: { terminal: true } }), { logPath: join(box.dir, 'log'), statusPath });
    started.push(d.pid, d.monitorPid);
    expect(JSON.parse(await waitFile(statusPath))).toMatchObject({ exitCode: 0 });
    expect(readFileSync(join(box.dir, 'log'), 'utf8')).toMatch(/^\/dev\/pts\/0\r?\n$/);
  });

  it('runs rootless: a non-root caller gets a user namespace mapping it to the container root', () => {
    // The caller runs as nobody; the overlay upper dir is its own, the lower dir is root's.
    chmodSync(box.dir, 0o755);
    const ov = join(box.dir, 'ov');
    for (const d of ['', 'up', 'work', 'tmp']) {
      mkdirSync(join(ov, d), { recursive: true });
      chownSync(join(ov, d), 65534, 65534);
    }
    const script = join(box.dir, 'rootless.mts');
    const spec = box.spec(sh('id', '+', 'cat', '/proc/self/uid_map', '+', 'status', 'CapEff', '+', 'pid', '+', 'touch', '/new'), {
      rootfs: [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${box.rootfs}`, 'upperdir=up', 'workdir=work', 'userxattr'], cwd: ov }],
    });
    writeFileSync(
      script,
      `import { runSandbox } from ${JSON.stringify(join(repo, 'src', 'sandbox', 'sandbox.ts'))};\n` +
        `const r = await runSandbox(${JSON.stringify(spec)}, { stdout: process.stdout, stderr: process.stderr });\n` +
        'process.exitCode = r.exitCode;\n',
    );
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', script],
      { cwd: repo, encoding: 'utf8', env: { ...process.env, HOME: join(ov, 'tmp'), TMPDIR: join(ov, 'tmp') }, timeout: 30_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^uid=0 gid=0 euid=0 groups=\n\s+0\s+65534\s+1\nCapEff:\t00000000a80425fb\npid=1 ppid=0\n\/new: ok\n$/);
    expect(existsSync(join(ov, 'up', 'new'))).toBe(true);
  });

  it('a busybox shell gets a real terminal with -t', async () => {
    const rootfs = join(box.dir, 'busybox');
    const mk = spawnSync('sh', [join(repo, 'scripts', 'busybox-rootfs.sh'), rootfs], { encoding: 'utf8' });
    expect(mk.status, mk.stderr).toBe(0);
    const out = collect();
    const spec = box.spec(['sh', '-c', 'tty; test -t 0 && test -t 1 && echo is-a-tty; stty size; ls /proc/self/fd | wc -l'], {
      rootfs: [{ type: 'bind', source: rootfs, options: ['rbind'] }],
      proc: { terminal: true },
    });
    const r = await runSandbox(spec, { stdout: out.stream, terminalSize: { rows: 33, cols: 101 }, onStart: ({ pid }) => box.pids.push(pid) });
    expect(r.exitCode).toBe(0);
    const lines = out.text().replace(/\r/g, '').split('\n');
    expect(lines[0]).toMatch(/^\/dev\/pts\/0$/);
    expect(lines[1]).toBe('is-a-tty');
    expect(lines[2]).toBe('33 101');
    expect(lines[3]?.trim()).toBe('4'); // 0, 1, 2 and the fd ls itself opened: nothing leaked into the container
  });
});
