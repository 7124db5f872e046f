/**
 * `run --runtime runc`: the container's OCI bundle (config.json over its rootfs) run by runc gives
 * what the built-in sandbox gives, and leaves nothing behind (privileged; needs runc).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { leftovers, NOTHING, setupEnv, type Env } from './containers-env.js';
import { okOut } from '../helpers/cli.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

/** Runs the same `run` arguments with both runtimes. */
async function both(args: string[], o: { input?: string } = {}) {
  const ours = await env.cli(['run', '--rm', ...args], o);
  const runc = await env.cli(['run', '--rm', '--runtime', 'runc', ...args], o);
  return { ours, runc };
}

/** Host objects left for a container whose short id (its hostname) is `short`. */
function leftForShortId(short: string): string[] {
  const left: string[] = [];
  for (const c of readdirSync('/sys/fs/cgroup')) {
    const dir = `/sys/fs/cgroup/${c}/imgbuild`;
    if (existsSync(dir)) left.push(...readdirSync(dir).filter((d) => d.startsWith(short)).map((d) => `${dir}/${d}`));
  }
  if (existsSync('/run/netns')) left.push(...readdirSync('/run/netns').filter((n) => n.startsWith(`imgbuild-${short}`)));
  left.push(...readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(env.root)));
  return left;
}

describe('run --runtime runc', () => {
  it('gives the same output as the built-in runtime: echo, env, cwd, user, hostname', async () => {
    const args = ['-e', 'FOO=bar baz', '-w', '/srv', '-u', 'daemon', '--hostname', 'same-host', 'busybox', 'sh', '-c',
      'echo hello; env | grep -v "^PWD=\\|^SHLVL=" | sort; pwd; id; hostname; cat /etc/hostname'];
    const { ours, runc } = await both(args);
    expect(ours.code).toBe(0);
    expect(ours.stdout).toContain('hello\n');
    expect(ours.stdout).toContain('FOO=bar baz\n');
    expect(ours.stdout).toContain('/srv\nuid=1(daemon)');
    expect(ours.stdout).toContain('same-host\nsame-host\n');
    expect(runc).toEqual(ours);
  });

  it('has only loopback, up, with --network none (as the built-in runtime)', async () => {
    const { ours, runc } = await both(['--network', 'none', 'busybox', 'sh', '-c', 'ls /sys/class/net; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo-ok']);
    expect(ours.stdout).toBe('lo\nlo-ok\n');
    expect(runc.stdout).toBe(ours.stdout);
  });

  it('passes stdin with -i', async () => {
    const { ours, runc } = await both(['-i', 'busybox', 'sh', '-c', 'tr a-z A-Z'], { input: 'piped\n' });
    expect(ours.stdout).toBe('PIPED\n');
    expect(runc.stdout).toBe('PIPED\n');
  });

  it('maps exit statuses like the built-in runtime: the app\'s, 127 not found, 126 not executable', async () => {
    for (const [cmd, code] of [[['sh', '-c', 'exit 7'], 7], [['no-such-command'], 127], [['/etc/passwd'], 126]] as const) {
      const { ours, runc } = await both(['busybox', ...cmd]);
      expect(ours.code, cmd.join(' ')).toBe(code);
      expect(runc.code, cmd.join(' ')).toBe(code);
    }
  });

  it('refuses -d and --init clearly (exit 125, NOT_IMPLEMENTED)', async () => {
    for (const flag of ['-d', '--init']) {
      const r = await env.cli(['run', '--runtime', 'runc', flag, 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain('NOT_IMPLEMENTED');
    }
    const bad = await env.cli(['run', '--runtime', 'crun', 'busybox', 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/unknown --runtime crun/);
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');
  });

  it('leaves nothing behind: no mounts, runc state, cgroups or netns, with --rm or after rm', async () => {
    const r = await env.cli(['run', '--rm', '--runtime', 'runc', 'busybox', 'hostname']);
    expect(r.code).toBe(0);
    const short = r.stdout.trim();
    expect(short).toMatch(/^[0-9a-f]{12}$/);
    expect(leftForShortId(short)).toEqual([]);
    expect(readdirSync(join(env.root, 'runc'))).toEqual([]);
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');

    const kept = await env.cli(['run', '--name', 'kept-runc', '--runtime', 'runc', 'busybox', 'sh', '-c', 'exit 3']);
    expect(kept.code).toBe(3);
    const [info] = JSON.parse(okOut(await env.cli(['inspect', 'kept-runc']))) as { Id: string; State: { Status: string; ExitCode: number } }[];
    expect(info!.State).toMatchObject({ Status: 'exited', ExitCode: 3 });
    expect((await env.cli(['rm', 'kept-runc'])).code).toBe(0);
    expect(leftovers(info!.Id, env.root)).toEqual(NOTHING);
    expect(readdirSync(join(env.root, 'runc'))).toEqual([]);
  });
});
