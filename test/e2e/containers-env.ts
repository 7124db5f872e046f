/**
 * Shared setup for the container e2e tests: a tmp store root with busybox imported, a CLI bound
 * to it, and the host-side leak checks (mounts, cgroups, netns/veth, processes) for a container id.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { makeTmp } from '../helpers/tmp.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { CLI_EXE, REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js';

export interface Env {
  root: string;
  dir: string;
  cli: (args: string[], o?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }) => Promise<CliResult>;
  /** Starts the CLI without waiting (for signal tests). */
  spawnCli: (args: string[]) => ChildProcess;
  cleanup: () => Promise<void>;
}

export async function setupEnv(): Promise<Env> {
  const tmp = await makeTmp('imgbuild-ctr-');
  const root = `${tmp.dir}/root`;
  await ensureBusybox(root);
  const env: Env = {
    root,
    dir: tmp.dir,
    cli: (args, o = {}) => runCli(args, { root, ...o }),
    spawnCli: (args) => spawn(CLI_EXE, ['--root', root, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
    cleanup: async () => {
      // Remove whatever a failed test left running, then the tree.
      const ids = (await runCli(['ps', '-aq', '--no-trunc'], { root })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await runCli(['rm', '-f', ...ids], { root });
      await tmp.cleanup();
    },
  };
  return env;
}

/** Everything the host still holds for a container id; all empty when nothing leaked. */
export function leftovers(id: string, root?: string): { mounts: string[]; cgroups: string[]; net: string[]; processes: number[] } {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const mounts = mountinfo.filter((l) => l.includes(id) || (root !== undefined && l.split(' ')[4]?.startsWith(root)));
  const cgroups: string[] = [];
  for (const c of readdirSync('/sys/fs/cgroup')) {
    const p = `/sys/fs/cgroup/${c}/imgbuild/${id}`;
    if (existsSync(p)) cgroups.push(p);
  }
  const net: string[] = [];
  if (existsSync(`/run/netns/imgbuild-${id}`)) net.push(`/run/netns/imgbuild-${id}`);
  if (existsSync(`/sys/class/net/ib${id.slice(0, 12)}`)) net.push(`ib${id.slice(0, 12)}`);
  const processes: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(id)) processes.push(Number(p));
      else if (root && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(root)) processes.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return { mounts, cgroups, net, processes };
}

export const NOTHING = { mounts: [], cgroups: [], net: [], processes: [] };

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
