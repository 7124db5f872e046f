/**
 * What killed imgbuild processes (or earlier versions) leave in a root and on the host, made by
 * hand here, and how the commands deal with it: unreadable records give one line and can be
 * removed; half-made and half-removed container directories, orphaned cgroups, claims and
 * container snapshots go with `prune`, and what a live process or container still uses stays;
 * a container left frozen by a killed commit is thawed by the next look.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readlink, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expectOneLineError, okOut } from '../helpers/cli.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { setupEnv, waitFor, type Env } from './containers-env.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

const CLAIMS = '/run/imgbuild/containers';
const hex = (c: string): string => c.repeat(64);
const dir = (name: string): string => join(env.root, 'containers', name);
const startTime = (pid: number | 'self'): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;
/** A pid that no longer runs (a process that has exited). */
const deadPid = (): number => Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());

async function cgroupDir(id: string): Promise<string> {
  const d = `/sys/fs/cgroup/pids/imgbuild/${id}`;
  await mkdir(d, { recursive: true });
  return d;
}

async function claim(id: string, root: string): Promise<void> {
  await mkdir(CLAIMS, { recursive: true });
  await rm(join(CLAIMS, id), { force: true });
  await symlink(root, join(CLAIMS, id));
}

describe('records that cannot be read', () => {
  it('are left out of ps, give one line to inspect and logs, and go with rm -f or prune', async () => {
    // An earlier version's placeholder (the record before the container was made), its creator gone.
    const half = hex('a');
    await mkdir(dir(half), { recursive: true });
    await writeFile(
      join(dir(half), 'state.json'),
      JSON.stringify({ id: half, name: 'half', image: `sha256:${hex('0')}`, hostConfig: { autoRemove: false }, state: { status: 'created', monitorPid: deadPid(), monitorStartTime: '1' } }),
    );
    const junk = hex('b');
    await mkdir(dir(junk), { recursive: true });
    await writeFile(join(dir(junk), 'state.json'), '{"id": "bbbb');

    const ps = await env.cli(['ps', '-a']);
    expect(ps.code).toBe(0);
    expect(ps.stderr).toBe('');
    expect(ps.stdout).not.toMatch(/half|aaaaaaaaaaaa|bbbbbbbbbbbb/);

    for (const args of [['inspect', half], ['inspect', 'aaaa'], ['inspect', '--type', 'container', junk], ['logs', junk], ['exec', 'aaaa', 'true'], ['commit', junk]]) {
      const r = await env.cli(args);
      expectOneLineError(r, /^imgbuild: FAILED_PRECONDITION: container (a{12}|b{12}) has an unreadable record \(.+\); "imgbuild rm -f \1" or "imgbuild prune" removes it$/);
    }
    expect((await env.cli(['exec', 'aaaa', 'true'])).code).toBe(125);

    const rmr = await env.cli(['rm', '-f', 'aaaa']);
    expect(rmr.stderr).toBe('');
    expect(rmr.code).toBe(0);
    expect(existsSync(dir(half))).toBe(false);
    const prune = await env.cli(['prune']);
    expect(prune.code).toBe(0);
    expect(prune.stdout).toMatch(/Deleted leftovers of \d+ containers?\n/);
    expect(existsSync(dir(junk))).toBe(false);
  });
});

describe('a created container whose creator was killed', () => {
  interface State { status: string; pid?: number; monitorPid?: number; monitorStartTime?: string; error?: string }
  const stateOf = (id: string): State => (JSON.parse(readFileSync(join(dir(id), 'state.json'), 'utf8')) as { state: State }).state;
  /** Rewrites the record as a killed `run` left it: `created`, naming a creator that is gone. */
  async function asLeftByKilledRun(id: string): Promise<void> {
    const p = join(dir(id), 'state.json');
    const rec = JSON.parse(readFileSync(p, 'utf8')) as { state: State; cgroup?: unknown; network?: unknown };
    rec.state = { status: 'created', monitorPid: deadPid(), monitorStartTime: '1' };
    delete rec.cgroup;
    delete rec.network;
    await writeFile(p, JSON.stringify(rec));
    await rm(join(dir(id), 'status.json'), { force: true });
  }

  it('is running when its process runs, watched by the monitor, which reports the exit', async () => {
    const id = (await env.cli(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    const before = stateOf(id);
    await asLeftByKilledRun(id);
    expect((await env.cli(['ps'])).stdout).toMatch(/Up /);
    const after = stateOf(id);
    expect([after.status, after.pid, after.monitorPid, after.monitorStartTime]).toEqual(['running', before.pid, before.monitorPid, before.monitorStartTime]);
    expect((await env.cli(['kill', id])).code).toBe(0);
    await waitFor(async () => (await env.cli(['ps', '-a'])).stdout.includes('Exited (137)') || undefined);
    expect((await env.cli(['rm', id])).code).toBe(0);
  });

  it('stays created when nothing runs, with its cgroup removed so that nothing can start later', async () => {
    const id = (await env.cli(['run', '-d', 'busybox', 'true'])).stdout.trim();
    await waitFor(async () => (await env.cli(['ps', '-a'])).stdout.includes('Exited (0)') || undefined);
    expect(existsSync(`/sys/fs/cgroup/pids/imgbuild/${id}`)).toBe(true);
    await asLeftByKilledRun(id);
    expect((await env.cli(['ps', '-a'])).stdout).toMatch(/Created/);
    expect(existsSync(`/sys/fs/cgroup/pids/imgbuild/${id}`)).toBe(false);
    const c = (JSON.parse(okOut(await env.cli(['inspect', id]))) as { State: { Status: string; Error: string } }[])[0]!;
    expect(c.State).toMatchObject({ Status: 'created', Error: 'the imgbuild process starting it was killed before the container started' });
    expect(stateOf(id).monitorPid).toBeUndefined(); // settled: the next look leaves it as it is
    expect((await env.cli(['rm', id])).code).toBe(0);
  });
});

describe('prune', () => {
  it('removes half-made and half-removed containers with their cgroup and claim, and keeps those of live processes', async () => {
    const dead = hex('c');
    const deadDir = dir(`.creating-${dead}-${deadPid()}-1`);
    await mkdir(deadDir, { recursive: true });
    await writeFile(join(deadDir, 'state.json'), JSON.stringify({ id: dead, name: 'never', image: `sha256:${hex('0')}` }));
    await claim(dead, env.root);
    const deadGroup = await cgroupDir(dead);

    // One a live process (this one) is making: nothing of it may go.
    const live = hex('d');
    const liveDir = dir(`.creating-${live}-${process.pid}-${startTime('self')}`);
    await mkdir(liveDir, { recursive: true });
    await claim(live, env.root);
    const liveGroup = await cgroupDir(live);

    const removing = hex('e');
    await mkdir(join(dir(`.removing-${removing}`), 'sub'), { recursive: true });
    const bare = hex('f');
    await mkdir(dir(bare), { recursive: true });
    await writeFile(join(dir(bare), 'hosts'), '');

    // A name held by a live creation is taken; one held by a dead creation is free.
    await writeFile(join(liveDir, 'state.json'), JSON.stringify({ id: live, name: 'reserved', image: `sha256:${hex('0')}` }));
    expectOneLineError(await env.cli(['run', '--rm', '--name', 'reserved', 'busybox', 'true']), /ALREADY_EXISTS: the container name "reserved" is already in use/);
    expect((await env.cli(['run', '--rm', '--name', 'never', 'busybox', 'true'])).code).toBe(0);

    try {
      const r = await env.cli(['prune']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(existsSync(deadDir)).toBe(false);
      expect(existsSync(deadGroup)).toBe(false);
      expect(existsSync(join(CLAIMS, dead))).toBe(false);
      expect(existsSync(dir(`.removing-${removing}`))).toBe(false);
      expect(existsSync(dir(bare))).toBe(false);
      expect(existsSync(liveDir)).toBe(true);
      expect(existsSync(liveGroup)).toBe(true);
      expect(await readlink(join(CLAIMS, live))).toBe(env.root);
    } finally {
      await rmdir(liveGroup).catch(() => {});
      await rm(join(CLAIMS, live), { force: true });
      await rm(liveDir, { recursive: true, force: true });
    }
  });

  it('removes cgroups claimed by this root or a root that is gone, and keeps those another root still has', async () => {
    const mine = hex('1');
    const gone = hex('2');
    const other = hex('3');
    const otherRoot = join(env.dir, 'other');
    await mkdir(join(otherRoot, 'containers', other), { recursive: true });
    await claim(mine, env.root);
    await claim(gone, join(env.dir, 'no-such-root'));
    await claim(other, otherRoot);
    const groups = await Promise.all([mine, gone, other].map(cgroupDir));
    try {
      const r = await env.cli(['prune']);
      expect(r.code).toBe(0);
      expect(groups.map((g) => existsSync(g))).toEqual([false, false, true]);
      expect([mine, gone, other].map((id) => existsSync(join(CLAIMS, id)))).toEqual([false, false, true]);
    } finally {
      for (const g of groups) await rmdir(g).catch(() => {});
      for (const id of [mine, gone, other]) await rm(join(CLAIMS, id), { force: true });
    }
  });

  it('removes a claim of this root that has no object and no container left (a removal killed at its end)', async () => {
    const bare = hex('4');
    const othersBare = hex('5');
    const otherRoot = join(env.dir, 'other-bare');
    await mkdir(join(otherRoot, 'containers', othersBare), { recursive: true });
    await claim(bare, env.root);
    await claim(othersBare, otherRoot);
    try {
      const r = await env.cli(['prune']);
      expect(r.code).toBe(0);
      expect([bare, othersBare].map((id) => existsSync(join(CLAIMS, id)))).toEqual([false, true]);
    } finally {
      for (const id of [bare, othersBare]) await rm(join(CLAIMS, id), { force: true });
    }
  });

  it('removes container snapshots that belong to no container, and keeps a container\'s', async () => {
    const id = (await env.cli(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    const sn = await OverlaySnapshotter.open(join(env.root, 'overlay'));
    await sn.prepare(`ctr-${hex('4')}`, undefined);
    const keys = async (): Promise<string[]> => {
      const out: string[] = [];
      await sn.walk((i) => void out.push(i.key));
      return out.filter((k) => k.startsWith('ctr-')).sort();
    };
    expect(await keys()).toEqual([`ctr-${hex('4')}`, `ctr-${id}`].sort());
    expect((await env.cli(['prune'])).code).toBe(0);
    expect(await keys()).toEqual([`ctr-${id}`]);
    expect((await env.cli(['exec', id, 'true'])).code).toBe(0);
    expect((await env.cli(['rm', '-f', id])).code).toBe(0);
    expect(await keys()).toEqual([]);
  });
});

describe('a freeze whose holder is gone', () => {
  it('is undone by the next look at the container; one whose holder runs is not', async () => {
    const id = (await env.cli(['run', '-d', 'busybox', 'sh', '-c', 'while true; do sleep 0.05; done'])).stdout.trim();
    const state = `/sys/fs/cgroup/freezer/imgbuild/${id}/freezer.state`;
    if (!existsSync(state)) return; // no v1 freezer on this host
    const marker = join(dir(id), 'frozen-by');
    const freeze = async (): Promise<void> => {
      await writeFile(state, 'FROZEN');
      await waitFor(() => readFileSync(state, 'utf8').trim() === 'FROZEN' || undefined);
    };
    try {
      await freeze();
      await writeFile(marker, `${process.pid} ${startTime('self')}\n`); // a commit that is still at work
      expect((await env.cli(['ps'])).code).toBe(0);
      expect(readFileSync(state, 'utf8').trim()).toBe('FROZEN');
      await writeFile(marker, `${deadPid()} 1\n`); // one that was killed
      expect((await env.cli(['ps'])).stdout).toMatch(/Up /);
      expect(readFileSync(state, 'utf8').trim()).toBe('THAWED');
      expect(existsSync(marker)).toBe(false);
      // A kill loop killed between its freeze and thaw leaves no marker at all.
      await freeze();
      expect((await env.cli(['exec', id, 'true'])).code).toBe(0);
      expect(readFileSync(state, 'utf8').trim()).toBe('THAWED');
    } finally {
      await writeFile(state, 'THAWED').catch(() => {});
      await env.cli(['rm', '-f', id]);
    }
  });
});
