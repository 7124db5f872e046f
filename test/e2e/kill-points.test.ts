/**
 * SIGKILL of the imgbuild process at any moment of `run -d`, `run`, `run --rm`, `exec`,
 * `commit` and `rm -f` leaves a state the next commands read truly, and `rm -f` plus `prune` remove all of it.
 *
 * Each command is killed at many points: after delays spread over 0–400 ms from its spawn, and at
 * moments found by polling what it does (its container directory appearing, the name reserved,
 * the cgroup made, the record complete, the port proxy listening, the record running, an exec'd
 * process in the container, the container frozen by a commit, the removal begun). Where a kill lands varies from run
 * to run; what is asserted holds wherever it lands:
 * - `ps -a` and `inspect` of every listed container succeed, with nothing on stderr; every
 *   complete container directory is listed; a container with a live process in its cgroup is
 *   `running`, one that is not `running` has no process in its cgroup, and one said to be
 *   `running` whose process is gone is no longer so at the next look;
 * - `logs` of every listed container succeeds; no running container stays frozen;
 * - after `rm -f` of everything listed and `prune`: no mounts under the root, no cgroup dirs,
 *   netns, veths, claims or `ctr-` snapshots of any id the root ever held, no container dirs,
 *   and no process of the root (in such a cgroup, naming such an id or the root, holding a file
 *   under it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_EXE, REPO_ROOT } from '../helpers/cli.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { freePort, setupEnv, type Env } from './containers-env.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => {
  const summary = [...stats].map(([k, s]) => `${k}: ${s.points} kill points, ${s.landed} while it ran`).join('; ');
  if (summary) console.info(`SIGKILL ${summary}`);
  await env?.cleanup();
});

const CLAIMS = '/run/imgbuild/containers';
const ID = /^[0-9a-f]{64}$/;
const CONTROLLERS = ['memory', 'cpu', 'pids', 'freezer'];

const containersDir = (): string => join(env.root, 'containers');
const ls = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};
const read = (p: string): string | undefined => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

/** Every container id the root has a trace of now: directories of any kind, and claims. */
function traceIds(): string[] {
  const ids = new Set<string>();
  for (const n of ls(containersDir())) {
    const m = /^(?:\.creating-|\.removing-)?([0-9a-f]{64})/.exec(n);
    if (m) ids.add(m[1]!);
  }
  for (const n of ls(CLAIMS)) {
    try {
      if (ID.test(n) && readlinkSync(join(CLAIMS, n)) === env.root) ids.add(n);
    } catch {
      // removed meanwhile
    }
  }
  return [...ids];
}

const completeDirs = (): string[] => ls(containersDir()).filter((n) => ID.test(n) && existsSync(join(containersDir(), n, 'state.json')));

function isLive(pid: number): boolean {
  const st = read(`/proc/${pid}/stat`);
  if (!st) return false;
  const state = st.slice(st.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

/** Live (non-zombie) processes in any of container `id`'s cgroup dirs. */
function cgroupProcs(id: string): number[] {
  const out = new Set<number>();
  for (const c of CONTROLLERS) {
    for (const l of (read(`/sys/fs/cgroup/${c}/imgbuild/${id}/cgroup.procs`) ?? '').split('\n')) if (/^\d+$/.test(l) && isLive(Number(l))) out.add(Number(l));
  }
  return [...out];
}

/** Everything the host still holds for the ids; all empty when nothing is left. */
function leftovers(ids: string[]): Record<string, string[]> {
  const has = (s: string): boolean => ids.some((id) => s.includes(id));
  const mounts = (read('/proc/self/mountinfo') ?? '').split('\n').filter((l) => {
    const m = l.split(' ')[4];
    return m !== undefined && (m === env.root || m.startsWith(`${env.root}/`) || has(m));
  });
  const cgroups = ids.flatMap((id) => CONTROLLERS.map((c) => `/sys/fs/cgroup/${c}/imgbuild/${id}`)).filter((p) => existsSync(p));
  const net = ids.flatMap((id) => [`/run/netns/imgbuild-${id}`, `/sys/class/net/ib${id.slice(0, 12)}`, join(CLAIMS, id)]).filter((p) => existsSync(p));
  const dirs = ls(containersDir()).filter((n) => /[0-9a-f]{64}/.test(n));
  const processes: string[] = [];
  for (const p of ls('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const cmdline = (read(`/proc/${p}/cmdline`) ?? '').replace(/\0/g, ' ');
    const inCgroup = has(read(`/proc/${p}/cgroup`) ?? '');
    const files = ls(`/proc/${p}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    if (!isLive(Number(p))) continue;
    if (inCgroup || has(cmdline) || cmdline.includes(env.root) || files.some((f) => f.startsWith(`${env.root}/`))) processes.push(`${p}: ${cmdline}`);
  }
  return { mounts, cgroups, net, dirs, processes };
}

const nothing = { mounts: [], cgroups: [], net: [], dirs: [], processes: [] };

async function snapshotKeys(): Promise<string[]> {
  const sn = await OverlaySnapshotter.open(join(env.root, 'overlay'));
  const keys: string[] = [];
  await sn.walk((i) => void keys.push(i.key));
  return keys.filter((k) => k.startsWith('ctr-'));
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const t of ls(`/proc/${pid}/task`)) {
    for (const c of (read(`/proc/${pid}/task/${t}/children`) ?? '').split(' ').filter(Boolean).map(Number)) out.push(c, ...descendants(c));
  }
  return out;
}

interface Stats {
  points: number;
  /** Kills that landed while the command was still running. */
  landed: number;
}
const stats = new Map<string, Stats>();

/**
 * Spawns the CLI and kills it with SIGKILL after `at` ms, or as soon as `at()` is true (polled
 * every millisecond, for at most 10 s). Returns the ids the root had a trace of right after.
 */
async function killAt(kind: string, args: string[], at: number | (() => boolean)): Promise<string[]> {
  const child = spawn(CLI_EXE, ['--root', env.root, ...args], { cwd: REPO_ROOT, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
  let done = false;
  void exited.then(() => (done = true));
  if (typeof at === 'number') await sleep(at);
  else for (const end = Date.now() + 10_000; !done && !at() && Date.now() < end; ) await sleep(1);
  // The `ip` and `iptables` commands it started run on for a moment after it: wait for them, so
  // that what they make is there before anything is checked.
  const helpers = descendants(child.pid!).filter((p) => /^(ip|iptables.*|xtables.*)$/.test(read(`/proc/${p}/comm`)?.trim() ?? ''));
  child.kill('SIGKILL');
  const sig = await exited;
  for (const end = Date.now() + 10_000; helpers.some(isLive) && Date.now() < end; ) await sleep(5);
  const s = stats.get(kind) ?? { points: 0, landed: 0 };
  s.points++;
  if (sig === 'SIGKILL') s.landed++;
  stats.set(kind, s);
  return traceIds();
}

/** A trigger: true once `f` holds for a container the root did not have before it was made. */
function newContainer(f: (id: string, entry: string) => boolean): () => boolean {
  const before = new Set(traceIds());
  return () => {
    for (const n of ls(containersDir())) {
      const id = /^(?:\.creating-)?([0-9a-f]{64})/.exec(n)?.[1];
      if (id && !before.has(id) && f(id, n)) return true;
    }
    return false;
  };
}

const triggers = {
  begun: () => newContainer((_id, n) => n.startsWith('.creating-')),
  named: () => newContainer((_id, n) => n.startsWith('.creating-') && existsSync(join(containersDir(), n, 'state.json'))),
  cgroup: () => newContainer((id) => existsSync(`/sys/fs/cgroup/pids/imgbuild/${id}`)),
  record: () => newContainer((id, n) => n === id && existsSync(join(containersDir(), n, 'state.json'))),
  // The container's process exists (it is in its cgroup); the record may not say so yet.
  started: () => newContainer((id, n) => n === id && /^\d/.test(read(`/sys/fs/cgroup/pids/imgbuild/${id}/cgroup.procs`) ?? '')),
  running: () => newContainer((id, n) => n === id && /"status": "running"/.test(read(join(containersDir(), n, 'state.json')) ?? '')),
  listening: (port: number) => newContainer(() => {
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
    return (read('/proc/net/tcp') ?? '').split('\n').some((l) => l.includes(hex) && / 0A /.test(l));
  }),
};

/**
 * The state as the CLI reports it, checked against the kernel. A container said to be running
 * whose process is gone (it was dying as it was looked at) must be reported otherwise by a later
 * look. Returns the listed ids.
 */
async function checkConsistent(seen: Set<string>): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    const ps = await env.cli(['ps', '-a', '-q', '--no-trunc']);
    expect(ps.stderr).toBe('');
    expect(ps.code).toBe(0);
    const ids = ps.stdout.split('\n').filter(Boolean);
    expect(completeDirs().sort()).toEqual([...ids].sort());
    let stale = false;
    if (ids.length > 0) {
      const ins = await env.cli(['inspect', '--type', 'container', ...ids]);
      expect(ins.stderr).toBe('');
      expect(ins.code).toBe(0);
      const states = JSON.parse(ins.stdout) as { Id: string; State: { Status: string; Pid: number } }[];
      expect(states.map((c) => c.Id)).toEqual(ids);
      for (const c of states) {
        const procs = cgroupProcs(c.Id);
        if (c.State.Status === 'running') {
          if (!(c.State.Pid > 0 && isLive(c.State.Pid) && procs.includes(c.State.Pid))) stale = true;
          // Left frozen by a killed commit or kill loop: thawed by the look just taken.
          expect(read(`/sys/fs/cgroup/freezer/imgbuild/${c.Id}/freezer.state`)?.trim() ?? 'THAWED').not.toBe('FROZEN');
        } else {
          expect({ id: c.Id, status: c.State.Status, procs }).toEqual({ id: c.Id, status: c.State.Status, procs: [] });
        }
      }
      // Nothing runs that the CLI does not show as running.
      for (const id of seen) {
        if (cgroupProcs(id).length > 0) expect({ id, status: states.find((c) => c.Id === id)?.State.Status }).toEqual({ id, status: 'running' });
      }
      for (const id of ids) {
        const logs = await env.cli(['logs', id]);
        expect(logs.stderr).toBe('');
        expect(logs.code).toBe(0);
      }
    }
    if (!stale) return ids;
    expect(attempt).toBeLessThan(50);
    await sleep(100);
  }
}

/** rm -f of everything listed, then prune; afterwards nothing of any id seen may be left. */
async function cleanUp(seen: Set<string>): Promise<void> {
  const ids = (await env.cli(['ps', '-a', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) {
    const rm = await env.cli(['rm', '-f', ...ids]);
    expect(rm.stderr).toBe('');
    expect(rm.code).toBe(0);
  }
  const prune = await env.cli(['prune']);
  expect(prune.stderr).toBe('');
  expect(prune.code).toBe(0);
  expect((await env.cli(['ps', '-a', '-q'])).stdout).toBe('');
  for (const id of traceIds()) seen.add(id);
  // Processes that were already on their way out (a sandbox helper whose start was stopped) may
  // take a moment to go; anything else would stay.
  let left = leftovers([...seen]);
  for (let i = 0; i < 50 && JSON.stringify(left) !== JSON.stringify(nothing); i++) {
    await sleep(100);
    left = leftovers([...seen]);
  }
  expect(left).toEqual(nothing);
  expect(await snapshotKeys()).toEqual([]);
}

/** Kills `args()` at every delay and at every trigger point, checking the state after each batch. */
async function sweep(
  kind: string,
  args: () => Promise<string[]> | string[],
  delays: number[],
  points: (() => () => boolean)[],
  around: { before?: () => Promise<void>; after?: () => Promise<void> } = {},
): Promise<void> {
  const seen = new Set<string>();
  const batches: (number | (() => () => boolean))[][] = [];
  const all = [...delays, ...points];
  for (let i = 0; i < all.length; i += BATCH) batches.push(all.slice(i, i + BATCH));
  for (const batch of batches) {
    await around.before?.();
    for (const id of traceIds()) seen.add(id);
    for (const at of batch) {
      const a = await args();
      for (const id of await killAt(kind, a, typeof at === 'number' ? at : at())) seen.add(id);
    }
    await checkConsistent(seen);
    await around.after?.();
    await cleanUp(seen);
  }
}

/** Kill points per check of the state and clean-up. */
const BATCH = 8;

const spread = (n: number, max: number): number[] => Array.from({ length: n }, (_, i) => Math.round((i * max) / (n - 1)));

describe('SIGKILL of imgbuild at any moment', () => {
  it('run -d with a published port (bridge, netns, veth, port proxy)', async () => {
    let port = 0;
    await sweep(
      'run -d -p',
      async () => {
        port = await freePort();
        return ['run', '-d', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '300'];
      },
      spread(9, 400),
      [triggers.begun, triggers.named, triggers.cgroup, triggers.record, () => triggers.listening(port), triggers.started, triggers.started, triggers.running],
    );
  });

  it('run -d, run and run --rm', async () => {
    await sweep('run -d', () => ['run', '-d', 'busybox', 'sleep', '300'], spread(7, 200), [
      triggers.begun,
      triggers.named,
      triggers.cgroup,
      triggers.record,
      triggers.started,
      triggers.started,
      triggers.started,
      triggers.running,
    ]);
    await sweep('run', () => ['run', 'busybox', 'sleep', '300'], spread(6, 400), [triggers.record, triggers.started, triggers.running]);
    await sweep('run --rm', () => ['run', '--rm', 'busybox', 'sleep', '300'], spread(6, 400), [triggers.named, triggers.record, triggers.running]);
  });

  it('exec and commit into a running container', async () => {
    let target = '';
    const start = async (): Promise<void> => {
      const r = await env.cli(['run', '-d', 'busybox', 'sh', '-c', 'while true; do date > /now; sleep 0.05; done']);
      expect(r.code).toBe(0);
      target = r.stdout.trim();
    };
    const execd = () => {
      const before = cgroupProcs(target).length;
      return () => cgroupProcs(target).length > before;
    };
    // The target keeps running, and takes a new exec, wherever an exec or a commit was killed.
    const usable = async (): Promise<void> => {
      expect((await env.cli(['exec', target, 'true'])).code).toBe(0);
    };
    await sweep('exec', () => ['exec', target, 'sleep', '300'], spread(8, 300), [execd, execd], { before: start, after: usable });
    const frozen = () => () => existsSync(join(containersDir(), target, 'frozen-by')) || read(`/sys/fs/cgroup/freezer/imgbuild/${target}/freezer.state`)?.trim() === 'FROZEN';
    let n = 0;
    await sweep('commit', () => ['commit', target, `killed:${++n}`], spread(8, 200), [frozen, frozen], { before: start, after: usable });
  });

  it('rm -f of a running container with a published port', async () => {
    // Every kill finds a container of its own to remove: each batch starts one per kill point,
    // half of them with a published port.
    let victims: string[] = [];
    let victim = '';
    const start = async (): Promise<void> => {
      victims = [];
      for (let i = 0; i < BATCH; i++) {
        const r = await env.cli(['run', '-d', ...(i % 2 === 0 ? ['-p', `127.0.0.1:${await freePort()}:80`] : []), 'busybox', 'sleep', '300']);
        expect(r.code).toBe(0);
        victims.push(r.stdout.trim());
      }
    };
    const removing = () => {
      const v = victim;
      return () => existsSync(join(containersDir(), `.removing-${v}`)) || !existsSync(`/sys/fs/cgroup/pids/imgbuild/${v}`);
    };
    await sweep('rm -f', () => ['rm', '-f', (victim = victims.shift()!)], spread(8, 300), [removing, removing, removing, removing], { before: start });
  });
});
