/**
 * Nothing is left behind — no mounts, cgroups, netns/veths or processes — after `--rm`, after a
 * Ctrl-C (SIGINT) of the imgbuild process, and after `kill -9` of it followed by `rm -f`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { setupEnv, leftovers, NOTHING, waitFor, type Env } from './containers-env.js';
import { okOut } from '../helpers/cli.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

const exitOf = (c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));

/** Waits until the (only) container of the root runs a process, and returns its full id. */
async function runningId(): Promise<string> {
  return waitFor(async () => {
    const id = (await env.cli(['ps', '-q', '--no-trunc'])).stdout.trim();
    if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
    const c = (JSON.parse(okOut(await env.cli(['inspect', id]))) as { State: { Pid: number } }[])[0]!;
    return c.State.Pid > 0 ? id : undefined;
  }, 15_000);
}

function containerDirs(): string[] {
  try {
    return readdirSync(`${env.root}/containers`).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
}

describe('no leaks', () => {
  it('a detached container mounts nothing on the host; rm -f leaves nothing', async () => {
    const id = (await env.cli(['run', '-d', '--network', 'bridge', 'busybox', 'sleep', '300'])).stdout.trim();
    const c = (JSON.parse(okOut(await env.cli(['inspect', id]))) as { State: { Pid: number } }[])[0]!;
    // Its rootfs is mounted in its own mount namespace only: the host's table does not have it,
    // the container's does.
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`${env.root}/overlay`);
    expect(readFileSync(`/proc/${c.State.Pid}/mountinfo`, 'utf8')).toMatch(/ \/ .* overlay /);
    // Nor does the monitor that waits for it: it stays in the host's mount namespace.
    const state = JSON.parse(readFileSync(`${env.root}/containers/${id}/state.json`, 'utf8')) as { state: { monitorPid: number } };
    expect(state.state.monitorPid).toBeGreaterThan(0);
    expect(readFileSync(`/proc/${state.state.monitorPid}/mountinfo`, 'utf8')).not.toContain(`${env.root}/overlay`);
    const during = leftovers(id);
    expect(during.cgroups.length).toBeGreaterThan(0);
    expect(during.net.length).toBe(2);
    expect(during.processes).toContain(c.State.Pid);
    expect((await env.cli(['rm', '-f', id])).code).toBe(0);
    expect(leftovers(id, env.root)).toEqual(NOTHING);
    expect(containerDirs()).toEqual([]);
  });

  it('--rm cleans up after a normal exit', async () => {
    const child = env.spawnCli(['run', '--rm', '--network', 'bridge', 'busybox', 'sleep', '2']);
    const done = exitOf(child);
    const id = await runningId();
    expect((await done).code).toBe(0);
    expect(leftovers(id, env.root)).toEqual(NOTHING);
    expect(containerDirs()).toEqual([]);
  });

  it('--rm cleans up after Ctrl-C (SIGINT to imgbuild)', async () => {
    const child = env.spawnCli(['run', '--rm', '--network', 'bridge', '--memory', '64m', 'busybox', 'sleep', '300']);
    const done = exitOf(child);
    const id = await runningId();
    child.kill('SIGINT');
    const r = await done;
    expect(r.signal).toBeNull(); // it exits by itself after cleaning up, not killed by the signal
    expect(r.code).not.toBe(0);
    expect(leftovers(id, env.root)).toEqual(NOTHING);
    expect(containerDirs()).toEqual([]);
  });

  it('a reader that goes away (| head -1) ends the container and --rm still cleans up', async () => {
    const child = env.spawnCli(['run', '--rm', '--network', 'bridge', 'busybox', 'yes']);
    const done = exitOf(child);
    const id = await runningId();
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    child.stdout!.destroy(); // EPIPE for the CLI's next write
    const r = await done;
    // It ends by itself (no crash on EPIPE); the status cannot be flushed to a closed pipe's
    // owner anyway, so only the cleanup is asserted.
    expect(r.signal).toBeNull();
    expect(leftovers(id, env.root)).toEqual(NOTHING);
    expect(containerDirs()).toEqual([]);
  });

  it('kill -9 of imgbuild run, then rm -f, leaves nothing', async () => {
    const child = env.spawnCli(['run', '--name', 'orphan', '--network', 'bridge', '--pids-limit', '40', 'busybox', 'sh', '-c', 'sleep 300 & sleep 300']);
    const done = exitOf(child);
    const id = await runningId();
    child.kill('SIGKILL');
    await done;
    // The container's processes die with the helper; the record, cgroup and netns stay until rm.
    await waitFor(() => (leftovers(id).processes.length === 0 ? true : undefined), 10_000);
    expect(leftovers(id).net.length).toBe(2);
    expect((await env.cli(['ps', '-a'])).stdout).toMatch(/orphan/);
    expect((await env.cli(['rm', '-f', 'orphan'])).code).toBe(0);
    expect(leftovers(id, env.root)).toEqual(NOTHING);
    expect(containerDirs()).toEqual([]);
  });

  it('kill -9 of imgbuild run --rm: the next command cleans the orphan up', async () => {
    const child = env.spawnCli(['run', '--rm', '--network', 'bridge', 'busybox', 'sleep', '300']);
    const done = exitOf(child);
    const id = await runningId();
    child.kill('SIGKILL');
    await done;
    await waitFor(() => (leftovers(id).processes.length === 0 ? true : undefined), 10_000);
    await env.cli(['ps', '-a']);
    expect(leftovers(id, env.root)).toEqual(NOTHING);
    expect(containerDirs()).toEqual([]);
  });
});
