/** `imgbuild exec` into a running container (privileged; real sandbox). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readlinkSync } from 'node:fs';
import { setupEnv, type Env } from './containers-env.js';
import { onPty } from './pty.js';
import { okOut } from '../helpers/cli.js';

let env: Env;
let id: string;
beforeAll(async () => {
  env = await setupEnv();
  const r = await env.cli(['run', '-d', '--name', 'target', '-e', 'FROM_RUN=1', '-w', '/srv', '--hostname', 'exec-box', 'busybox', 'sleep', '300']);
  expect(r.code).toBe(0);
  id = r.stdout.trim();
});
afterAll(async () => {
  await env?.cli(['rm', '-f', 'target']);
  await env?.cleanup();
});

describe('exec', () => {
  it('runs in the container\'s namespaces with its env, cwd and hostname', async () => {
    const r = await env.cli(['exec', 'target', 'sh', '-c', 'echo $FROM_RUN; pwd; hostname; cat /proc/1/cmdline | tr "\\0" " "; echo']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('1\n/srv\nexec-box\nsleep 300 \n');
    const inspect = JSON.parse(okOut(await env.cli(['inspect', 'target']))) as { State: { Pid: number } }[];
    const pid = inspect[0]!.State.Pid;
    for (const ns of ['mnt', 'pid', 'net', 'uts', 'ipc', 'cgroup']) {
      const inside = (await env.cli(['exec', 'target', 'readlink', `/proc/self/ns/${ns}`])).stdout.trim();
      expect(inside).toBe(readlinkSync(`/proc/${pid}/ns/${ns}`));
      expect(inside).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    }
  });

  it('is placed in the container\'s cgroup', async () => {
    // Inside, the cgroup namespace is rooted at the container's cgroups.
    const r = await env.cli(['exec', 'target', 'cat', '/proc/self/cgroup']);
    expect(r.stdout).toMatch(/^\d+:pids:\/$/m);
    expect(r.stdout).toMatch(/^\d+:memory:\/$/m);
    // Seen from the host, an exec'd process is a member of each of the container's cgroups.
    const running = env.cli(['exec', 'target', 'sleep', '3']);
    const inspect = JSON.parse(okOut(await env.cli(['inspect', 'target']))) as { State: { Pid: number } }[];
    const pidNs = readlinkSync(`/proc/${inspect[0]!.State.Pid}/ns/pid`);
    const execd = (ctl: string): number | undefined => readFileSync(`/sys/fs/cgroup/${ctl}/imgbuild/${id}/cgroup.procs`, 'utf8')
      .trim().split('\n').map(Number)
      .find((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u00003\u0000' && readlinkSync(`/proc/${p}/ns/pid`) === pidNs;
        } catch {
          return false; // exited meanwhile
        }
      });
    let found: number | undefined;
    for (let i = 0; i < 100 && found === undefined; i++) {
      found = execd('pids');
      if (found === undefined) await new Promise((res) => setTimeout(res, 20));
    }
    expect(found).toBeDefined();
    for (const ctl of ['memory', 'cpu', 'freezer']) expect(execd(ctl)).toBe(found);
    expect((await running).code).toBe(0);
  });

  it('passes -e, -w and -u, and the exit status', async () => {
    expect((await env.cli(['exec', '-e', 'X=y', '-w', '/tmp', '-u', 'nobody', 'target', 'sh', '-c', 'echo $X $(pwd) $(id -u)'])).stdout).toBe('y /tmp 65534\n');
    expect((await env.cli(['exec', 'target', 'sh', '-c', 'exit 7'])).code).toBe(7);
    expect((await env.cli(['exec', 'target', 'nope'])).code).toBe(127);
  });

  it('-i passes stdin and -t allocates a terminal', async () => {
    expect((await env.cli(['exec', '-i', 'target', 'cat'], { input: 'hello exec\n' })).stdout).toBe('hello exec\n');
    const t = await env.cli(['exec', '-t', 'target', 'sh', '-c', 'test -t 0 && echo tty']);
    expect(t.stdout.replace(/\r/g, '')).toBe('tty\n');
  });

  it('-t on a terminal: the process starts with its size and follows a resize (SIGWINCH)', async () => {
    const out = await onPty(['--root', env.root, 'exec', '-t', 'target', 'sh', '-c',
      'stty size; trap "stty size; exit 3" WINCH; echo ready; while :; do sleep 0.05; done']);
    expect(out).toBe('30 100\nready\n42 132\nEXIT 3');
  });

  it('finds the container by short id and refuses a stopped one', async () => {
    expect((await env.cli(['exec', id.slice(0, 12), 'true'])).code).toBe(0);
    await env.cli(['run', '--name', 'done', 'busybox', 'true']);
    const r = await env.cli(['exec', 'done', 'true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not running/);
    expect((await env.cli(['exec', 'missing', 'true'])).stderr).toMatch(/no such container: missing/);
    await env.cli(['rm', 'done']);
  });
});
