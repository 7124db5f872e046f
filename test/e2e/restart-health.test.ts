/**
 * Restart policies and HEALTHCHECK without a daemon, on real containers: what moby's restart and
 * health integration tests expect of docker, reproduced through the CLI. Intervals are short and
 * every state is polled for with generous limits; no timing is asserted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { leftovers, setupEnv, waitFor, type Env } from './containers-env.js';
import { readEvents } from '../../src/store/events.js';

/** The actions the store's event journal holds for container `id`. */
async function actions(id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of readEvents(env.root)) if (e.Actor.ID === id) out.push(e.Action);
  return out;
}

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());
// A failed test's containers (and their keepers) would otherwise count as the next test's leftovers.
afterEach(async () => {
  const ids = (await env.cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await env.cli(['rm', '-f', ...ids]);
});

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}
interface Inspect {
  Id: string;
  RestartCount: number;
  State: { Status: string; Running: boolean; Restarting: boolean; ExitCode: number; Health?: Health };
  HostConfig: { RestartPolicy: { Name: string; MaximumRetryCount: number } };
  Config: { Healthcheck?: { Test: string[] } };
}

async function inspect(name: string): Promise<Inspect> {
  const r = await env.cli(['inspect', name]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Inspect[])[0]!;
}

/** The keeper processes of container `id` (their command line names it). */
function keepers(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (st.slice(st.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (argv.some((a) => a.endsWith('keeper-main.js') || a.endsWith('keeper-main.ts')) && argv.includes(id)) out.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function runD(args: string[]): Promise<string> {
  const r = await env.cli(['run', '-d', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

/** rm -f, then nothing of the container may be left: no keeper, monitor, mount, cgroup or netns. */
async function removeAndCheck(id: string): Promise<void> {
  expect((await env.cli(['rm', '-f', id])).code).toBe(0);
  expect(keepers(id)).toEqual([]);
  expect(leftovers(id, env.root)).toEqual({ mounts: [], cgroups: [], net: [], processes: [] });
}

describe('restart policies', () => {
  it('on-failure:N restarts a failing container N times, then leaves it exited; a success is not restarted', async () => {
    const id = await runD(['--restart', 'on-failure:3', 'busybox', 'sh', '-c', 'echo run; exit 3']);
    const done = await waitFor(async () => {
      const i = await inspect(id);
      return i.State.Status === 'exited' && i.RestartCount === 3 && keepers(id).length === 0 ? i : undefined;
    }, 30_000);
    expect(done.State.ExitCode).toBe(3);
    expect(done.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 3 });
    expect((await env.cli(['logs', id])).stdout).toBe('run\nrun\nrun\nrun\n');
    expect((await actions(id)).filter((a) => a === 'restart')).toHaveLength(3);
    await removeAndCheck(id);

    const ok = await runD(['--restart', 'on-failure:3', 'busybox', 'true']);
    const exited = await waitFor(async () => {
      const i = await inspect(ok);
      return i.State.Status === 'exited' && keepers(ok).length === 0 ? i : undefined;
    }, 20_000);
    expect(exited.RestartCount).toBe(0);
    await removeAndCheck(ok);
  });

  it('always restarts whatever the exit status, ps shows it restarting or up, and stop ends it for good', async () => {
    const id = await runD(['--name', 'again', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.2; exit 0']);
    const seen = new Set<string>();
    await waitFor(async () => {
      const line = (await env.cli(['ps'])).stdout.split('\n').find((l) => l.includes('again')) ?? '';
      if (/Restarting \(0\) /.test(line)) seen.add('restarting');
      if (/ Up /.test(line)) seen.add('up');
      if ((await env.cli(['ps', '-q', '--filter', 'status=restarting'])).stdout.includes(id.slice(0, 12))) seen.add('filtered');
      return seen.size === 3 && (await inspect(id)).RestartCount >= 3 ? true : undefined;
    }, 30_000);
    expect((await env.cli(['stop', 'again'])).code).toBe(0);
    const stopped = await waitFor(async () => {
      const i = await inspect(id);
      return i.State.Status === 'exited' && keepers(id).length === 0 ? i : undefined;
    }, 20_000);
    expect(stopped.State.Restarting).toBe(false);
    // Stopped by its user: nothing starts it again.
    await new Promise((r) => setTimeout(r, 1_000));
    const later = await inspect(id);
    expect(later.State.Status).toBe('exited');
    expect(later.RestartCount).toBe(stopped.RestartCount);
    expect((await env.cli(['ps', '-q'])).stdout).toBe('');
    await removeAndCheck(id);
  });

  it('kill with SIGKILL is a user stop (no restart); a death by another signal is restarted', async () => {
    const id = await runD(['--restart', 'unless-stopped', 'busybox', 'sh', '-c', 'trap "exit 5" USR1; while true; do sleep 0.1; done']);
    await waitFor(async () => ((await inspect(id)).State.Status === 'running' && keepers(id).length === 1) || undefined, 20_000);
    // It keeps no directory of its caller busy.
    expect(readlinkSync(`/proc/${keepers(id)[0]}/cwd`)).toBe('/');
    expect((await env.cli(['kill', '-s', 'USR1', id])).code).toBe(0);
    await waitFor(async () => {
      const i = await inspect(id);
      return (i.RestartCount === 1 && i.State.Status === 'running') || undefined;
    }, 20_000);
    expect((await env.cli(['kill', id])).code).toBe(0);
    const killed = await waitFor(async () => {
      const i = await inspect(id);
      return i.State.Status === 'exited' && keepers(id).length === 0 ? i : undefined;
    }, 20_000);
    expect(killed.State.ExitCode).toBe(137);
    expect(killed.RestartCount).toBe(1);
    await removeAndCheck(id);
  });

  it('rm -f of a container that keeps failing leaves nothing; --restart is refused with --rm and when malformed', async () => {
    const id = await runD(['--restart', 'always', 'busybox', 'false']);
    await waitFor(async () => ((await inspect(id)).RestartCount >= 2) || undefined, 20_000);
    await removeAndCheck(id);
    for (const [args, msg] of [
      [['--rm', '--restart', 'always'], /Conflicting options: --restart and --rm/],
      [['--restart', 'sometimes'], /invalid restart policy 'sometimes'/],
      [['--restart', 'always:3'], /maximum retry count cannot be used with restart policy 'always'/],
      [['--restart', 'on-failure:-1'], /maximum retry count cannot be negative/],
    ] as const) {
      const r = await env.cli(['run', '-d', ...args, 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(msg);
    }
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');
  });

  it('a restart that cannot start leaves the container exited with the error, and the keeper gone', async () => {
    const id = await runD(['--restart', 'always', 'busybox', 'sh', '-c', 'rm /bin/sh; exit 1']);
    const end = await waitFor(async () => {
      const i = await inspect(id);
      return i.State.Status === 'exited' && keepers(id).length === 0 ? i : undefined;
    }, 20_000);
    expect(end.RestartCount).toBe(1);
    expect(end.State.Restarting).toBe(false);
    expect(end.State.ExitCode).toBe(127);
    expect((end.State as { Error?: string }).Error).toMatch(/not found/);
    await removeAndCheck(id);
  });

  it('create --restart keeps its policy for start; a user start after stop restarts again from a count of 0', async () => {
    const c = await env.cli(['create', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 2']);
    expect(c.code, c.stderr).toBe(0);
    const id = c.stdout.trim();
    expect(keepers(id)).toEqual([]);
    expect((await env.cli(['start', id])).code).toBe(0);
    const done = await waitFor(async () => {
      const i = await inspect(id);
      return i.State.Status === 'exited' && i.RestartCount === 2 && keepers(id).length === 0 ? i : undefined;
    }, 30_000);
    expect(done.State.ExitCode).toBe(2);
    await removeAndCheck(id);

    const a = await runD(['--restart', 'always', 'busybox', 'sh', '-c', 'sleep 2; exit 1']);
    await waitFor(async () => ((await inspect(a)).RestartCount >= 1) || undefined, 20_000);
    expect((await env.cli(['stop', a])).code).toBe(0);
    await waitFor(async () => ((await inspect(a)).State.Status === 'exited' && keepers(a).length === 0) || undefined, 20_000);
    expect((await env.cli(['start', a])).code).toBe(0);
    const again = await inspect(a);
    expect(again.State.Status).toBe('running');
    expect(again.RestartCount).toBe(0);
    await waitFor(async () => ((await inspect(a)).RestartCount >= 1) || undefined, 20_000);
    await removeAndCheck(a);
  });

  it('after a reboot (every process and kernel object of the container gone) the generate systemd unit brings it back', async () => {
    const id = await runD(['--name', 'boot', '--restart', 'always', '--health-cmd', 'true', '--health-interval', '100ms', 'busybox', 'sleep', '600']);
    await waitFor(async () => ((await inspect(id)).State.Health?.Status === 'healthy') || undefined, 20_000);
    const unit = (await env.cli(['generate', 'systemd', '--name', 'boot', '-t', '1'])).stdout;
    const line = (key: string): string[] => unit.split('\n').find((l) => l.startsWith(`${key}=`))!.slice(key.length + 1).split(' ');
    expect(line('ExecStart').slice(-2)).toEqual(['start', 'boot']);
    expect(line('ExecStop').slice(-4)).toEqual(['stop', '-t', '1', 'boot']);
    // What a reboot does: the keeper, the monitor and the container die, /run is emptied.
    const st = JSON.parse(readFileSync(join(env.root, 'containers', id, 'state.json'), 'utf8')) as { state: { keeperPid: number; monitorPid: number; pid: number } };
    for (const p of [st.state.keeperPid, st.state.monitorPid, st.state.pid]) process.kill(p, 'SIGKILL');
    await waitFor(() => keepers(id).length === 0 || undefined);
    await waitFor(async () => ((await inspect(id)).State.Status === 'exited') || undefined, 20_000);
    const [exe, ...args] = line('ExecStart');
    const { spawnSync } = await import('node:child_process');
    expect(spawnSync(exe!, args, { encoding: 'utf8' }).status).toBe(0);
    const back = await inspect(id);
    expect(back.State.Status).toBe('running');
    await waitFor(async () => ((await inspect(id)).State.Health?.Status === 'healthy' && keepers(id).length === 1) || undefined, 20_000);
    const [sexe, ...sargs] = line('ExecStop');
    expect(spawnSync(sexe!, sargs, { encoding: 'utf8' }).status).toBe(0);
    await waitFor(async () => ((await inspect(id)).State.Status === 'exited' && keepers(id).length === 0) || undefined, 20_000);
    await removeAndCheck(id);
  });

  it('update --restart gives a running container a policy (and a keeper), and takes it away', async () => {
    const id = await runD(['busybox', 'sh', '-c', 'sleep 1; exit 4']);
    expect(keepers(id)).toEqual([]);
    expect((await env.cli(['update', '--restart', 'on-failure:1', id])).code).toBe(0);
    expect((await inspect(id)).HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 1 });
    const end = await waitFor(async () => {
      const i = await inspect(id);
      return i.State.Status === 'exited' && i.RestartCount === 1 && keepers(id).length === 0 ? i : undefined;
    }, 30_000);
    expect(end.State.ExitCode).toBe(4);
    expect((await env.cli(['update', '--restart', 'no', id])).code).toBe(0);
    expect((await inspect(id)).HostConfig.RestartPolicy.Name).toBe('no');
    await removeAndCheck(id);
    const rm = await runD(['--rm', 'busybox', 'sleep', '30']);
    const r = await env.cli(['update', '--restart', 'always', rm]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/AutoRemove is enabled/);
    await removeAndCheck(rm);
  });

  it('a container without a policy or a check gets no keeper', async () => {
    const id = await runD(['busybox', 'sleep', '30']);
    expect(keepers(id)).toEqual([]);
    expect((await inspect(id)).HostConfig.RestartPolicy).toEqual({ Name: 'no', MaximumRetryCount: 0 });
    await removeAndCheck(id);
  });
});

describe('HEALTHCHECK', () => {
  it('goes starting → healthy → unhealthy → healthy as the check passes and fails, ps says so, the log keeps 5', async () => {
    // As moby's TestHealthKillContainer: a signal flips what the check reads.
    const cmd = 'echo 1 > /health; trap \'if [ "$(cat /health)" = 1 ]; then echo 0 > /health; else echo 1 > /health; fi\' USR1; while true; do sleep 0.1; done';
    const id = await runD(['--name', 'doc', '--health-cmd', 'echo probing; [ "$(cat /health)" = 1 ]', '--health-interval', '100ms', '--health-retries', '2', '--health-start-period', '1ms', 'busybox', 'sh', '-c', cmd]);
    await waitFor(async () => ((await inspect(id)).State.Health?.Status === 'healthy') || undefined, 20_000);
    expect((await env.cli(['ps'])).stdout).toMatch(/Up .* \(healthy\)\s+doc/);
    expect((await env.cli(['ps', '-q', '--filter', 'health=healthy'])).stdout).toBe(`${id.slice(0, 12)}\n`);
    expect((await env.cli(['ps', '-q', '--filter', 'health=unhealthy'])).stdout).toBe('');
    expect((await env.cli(['kill', '-s', 'USR1', id])).code).toBe(0);
    const bad = await waitFor(async () => {
      const h = (await inspect(id)).State.Health!;
      return h.Status === 'unhealthy' ? h : undefined;
    }, 20_000);
    expect(bad.FailingStreak).toBeGreaterThanOrEqual(2);
    expect((await env.cli(['ps'])).stdout).toMatch(/Up .* \(unhealthy\)\s+doc/);
    expect((await env.cli(['ps', '-q', '--filter', 'health=unhealthy'])).stdout).toBe(`${id.slice(0, 12)}\n`);
    await waitFor(async () => ((await inspect(id)).State.Health!.Log.length === 5) || undefined, 20_000);
    const last = (await inspect(id)).State.Health!.Log.at(-1)!;
    expect(last).toMatchObject({ ExitCode: 1, Output: 'probing\n' });
    expect(Date.parse(last.End)).toBeGreaterThanOrEqual(Date.parse(last.Start));
    expect((await env.cli(['kill', '-s', 'USR1', id])).code).toBe(0);
    const good = await waitFor(async () => {
      const h = (await inspect(id)).State.Health!;
      return h.Status === 'healthy' ? h : undefined;
    }, 20_000);
    expect(good.FailingStreak).toBe(0);
    const changes = (await actions(id)).filter((a) => a.startsWith('health_status'));
    expect(changes).toEqual(['health_status: healthy', 'health_status: unhealthy', 'health_status: healthy']);
    await removeAndCheck(id);
  });

  it('stays starting through the start period, failures uncounted', async () => {
    const id = await runD(['--name', 'slow', '--health-cmd', 'false', '--health-interval', '100ms', '--health-retries', '1', '--health-start-period', '1h', 'busybox', 'sleep', '60']);
    await waitFor(async () => ((await inspect(id)).State.Health!.Log.length >= 3) || undefined, 20_000);
    const h = (await inspect(id)).State.Health!;
    expect(h).toMatchObject({ Status: 'starting', FailingStreak: 0 });
    expect((await env.cli(['ps'])).stdout).toMatch(/Up .* \(health: starting\)\s+slow/);
    await removeAndCheck(id);
  });

  it('kills a check that hangs at its timeout (moby TestHealthCheckProcessKilled), leaving no process behind', async () => {
    const id = await runD(['--health-cmd', 'sleep 61', '--health-interval', '100ms', '--health-timeout', '200ms', '--health-retries', '1', 'busybox', 'sleep', '60']);
    const h = await waitFor(async () => {
      const x = (await inspect(id)).State.Health!;
      return x.Status === 'unhealthy' ? x : undefined;
    }, 20_000);
    expect(h.Log[0]).toMatchObject({ ExitCode: -1, Output: 'Health check exceeded timeout (200ms)' });
    // Between probes, no check (nor its shell's child) is still running in the container.
    await waitFor(async () => {
      const ps = await env.cli(['exec', id, 'ps', '-o', 'args']);
      return !ps.stdout.includes('sleep 61') || undefined;
    }, 20_000);
    await removeAndCheck(id);
  });

  it('does not probe a paused container, and probes again once it is unpaused', async () => {
    const id = await runD(['--health-cmd', 'true', '--health-interval', '100ms', 'busybox', 'sleep', '60']);
    await waitFor(async () => ((await inspect(id)).State.Health?.Status === 'healthy') || undefined, 20_000);
    expect((await env.cli(['pause', id])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 500)); // a probe under way when it froze ends meanwhile
    const frozen = (await inspect(id)).State.Health!.Log.at(-1)!.End;
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await inspect(id)).State.Health!.Log.at(-1)!.End).toBe(frozen);
    expect((await env.cli(['unpause', id])).code).toBe(0);
    await waitFor(async () => ((await inspect(id)).State.Health!.Log.at(-1)!.End !== frozen) || undefined, 20_000);
    await removeAndCheck(id);
  });

  it('runs the check as the container\'s user in its working directory (moby TestHealthCheckWorkdir)', async () => {
    const id = await runD(['-w', '/foo', '-u', 'nobody', '--health-cmd', '[ "$PWD" = /foo ] && [ "$(id -u)" = 65534 ]', '--health-interval', '100ms', 'busybox', 'sleep', '60']);
    await waitFor(async () => ((await inspect(id)).State.Health?.Status === 'healthy') || undefined, 20_000);
    await removeAndCheck(id);
  });

  it('takes the image\'s HEALTHCHECK, the run flags over it, and --no-healthcheck turns it off', async () => {
    const ctx = join(env.dir, 'hc');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nHEALTHCHECK --interval=100ms --retries=1 CMD ["sh", "-c", "exit 1"]\n');
    expect((await env.cli(['build', '-q', '-t', 'hc:1', ctx])).code).toBe(0);
    const fromImage = await runD(['hc:1', 'sleep', '60']);
    const h = await waitFor(async () => {
      const x = (await inspect(fromImage)).State.Health;
      return x?.Status === 'unhealthy' ? x : undefined;
    }, 20_000);
    expect(h.Log[0]!.ExitCode).toBe(1);
    await removeAndCheck(fromImage);
    // The run's command replaces the image's; its interval and retries stay.
    const over = await runD(['--health-cmd', 'true', 'hc:1', 'sleep', '60']);
    await waitFor(async () => ((await inspect(over)).State.Health?.Status === 'healthy') || undefined, 20_000);
    expect((await inspect(over)).Config.Healthcheck?.Test).toEqual(['CMD-SHELL', 'true']);
    await removeAndCheck(over);
    const off = await runD(['--no-healthcheck', 'hc:1', 'sleep', '60']);
    const i = await inspect(off);
    expect(i.State.Health).toBeUndefined();
    expect((await env.cli(['ps', '-q', '--filter', 'health=none'])).stdout).toBe(`${off.slice(0, 12)}\n`);
    expect(i.Config.Healthcheck?.Test).toEqual(['NONE']);
    expect(keepers(off)).toEqual([]);
    await removeAndCheck(off);
    const bad = await env.cli(['run', '-d', '--no-healthcheck', '--health-cmd', 'true', 'busybox', 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/--no-healthcheck conflicts with --health-\* options/);
    await env.cli(['rmi', 'hc:1']);
  });

  it('a restarted container\'s check starts over; the keeper leaves with the container', async () => {
    const id = await runD(['--restart', 'on-failure:1', '--health-cmd', 'true', '--health-interval', '100ms', 'busybox', 'sh', '-c', 'sleep 1; exit 1']);
    await waitFor(async () => ((await inspect(id)).State.Health?.Status === 'healthy') || undefined, 20_000);
    const end = await waitFor(async () => {
      const i = await inspect(id);
      return i.State.Status === 'exited' && i.RestartCount === 1 && keepers(id).length === 0 ? i : undefined;
    }, 30_000);
    expect(end.State.Health!.Log.length).toBeGreaterThan(0);
    await removeAndCheck(id);
  });
});
