/**
 * cgroups for real on this machine's hierarchy (v1 here; the v2 code paths are covered against a
 * fake tree in test/host/cgroups-v2.test.ts): limits land in the kernel files, OOM kills are
 * reported, a fork bomb is contained and the group is removed with the container.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Cgroup, detectCgroupVersion } from '../../src/host/cgroups.js';
import { setupEnv, leftovers, NOTHING, waitFor, type Env } from './containers-env.js';
import { okOut } from '../helpers/cli.js';

let env: Env;
let version: 1 | 2;
beforeAll(async () => {
  env = await setupEnv();
  version = await detectCgroupVersion();
});
afterAll(async () => env?.cleanup());

interface Inspected { Id: string; State: { OOMKilled: boolean; ExitCode: number; Pid: number }; Cgroup: { paths: string[] } }
const inspect = async (name: string): Promise<Inspected> => (JSON.parse(okOut(await env.cli(['inspect', name]))) as Inspected[])[0]!;

describe('cgroups (this host)', () => {
  it('creates a group per controller with the limits and removes it', async () => {
    const id = `test-${process.pid}-${Date.now()}`;
    const cg = await Cgroup.create(id, { memory: 32 * 1024 * 1024, cpus: 0.5, pidsLimit: 20 });
    try {
      expect(cg.version).toBe(version);
      for (const p of cg.paths) expect(existsSync(p)).toBe(true);
      const file = (ctrl: string, f: string): string => readFileSync(join(cg.dirs.get(ctrl)!, f), 'utf8').trim();
      if (version === 1) {
        expect(file('memory', 'memory.limit_in_bytes')).toBe(String(32 * 1024 * 1024));
        expect(file('cpu', 'cpu.cfs_quota_us')).toBe('50000');
        expect(file('cpu', 'cpu.cfs_period_us')).toBe('100000');
        expect(file('pids', 'pids.max')).toBe('20');
      } else {
        expect(file('unified', 'memory.max')).toBe(String(32 * 1024 * 1024));
        expect(file('unified', 'cpu.max')).toBe('50000 100000');
        expect(file('unified', 'pids.max')).toBe('20');
      }
      // A process placed in the group is seen, killed with the group, and the group goes away.
      const child = spawn('sh', ['-c', 'sleep 60 & sleep 60 & wait'], { stdio: 'ignore' });
      for (const p of cg.paths) writeFileSync(join(p, 'cgroup.procs'), String(child.pid));
      expect(await cg.pids()).toContain(child.pid);
      const exited = new Promise((r) => child.once('exit', r));
      await cg.kill('SIGKILL');
      await exited;
      expect(await cg.pids()).toEqual([]);
      expect(await cg.oomKilled()).toBe(false);
    } finally {
      await cg.kill('SIGKILL').catch(() => {});
      await cg.remove();
    }
    expect(await cg.exists()).toBe(false);
  });

  it('applies --memory/--cpus/--pids-limit to a running container and removes the group with it', async () => {
    await env.cli(['run', '-d', '--name', 'limited', '--memory', '64m', '--cpus', '0.25', '--pids-limit', '30', 'busybox', 'sleep', '300']);
    const c = await inspect('limited');
    const own = readFileSync(`/proc/${c.State.Pid}/cgroup`, 'utf8');
    expect(own).toContain(`/imgbuild/${c.Id}`);
    const dir = (ctrl: string): string => c.Cgroup.paths.find((p) => p.includes(`/${ctrl}/`))!;
    if (version === 1) {
      expect(readFileSync(join(dir('memory'), 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(64 * 1024 * 1024));
      expect(readFileSync(join(dir('cpu'), 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('25000');
      expect(readFileSync(join(dir('pids'), 'pids.max'), 'utf8').trim()).toBe('30');
    }
    await env.cli(['rm', '-f', 'limited']);
    expect(leftovers(c.Id)).toEqual(NOTHING);
  });

  it('--cpu-shares (-c) sets the relative CPU weight, shown by inspect and changed by update', async () => {
    const r = await env.cli(['run', '-d', '--name', 'weighted', '-c', '512', 'busybox', 'sleep', '300']);
    expect(r.stderr).toBe('');
    const c = await inspect('weighted');
    const shares = (): string => {
      if (version === 2) return readFileSync(join(c.Cgroup.paths[0]!, 'cpu.weight'), 'utf8').trim();
      return readFileSync(join(c.Cgroup.paths.find((p) => p.includes('/cpu'))!, 'cpu.shares'), 'utf8').trim();
    };
    expect(shares()).toBe(version === 1 ? '512' : '20');
    expect((await env.cli(['inspect', '-f', '{{.HostConfig.CpuShares}}', 'weighted'])).stdout).toBe('512\n');
    expect((await env.cli(['update', '--cpu-shares', '2048', 'weighted'])).code).toBe(0);
    expect(shares()).toBe(version === 1 ? '2048' : '79');
    expect((await env.cli(['inspect', '-f', '{{.HostConfig.CpuShares}}', 'weighted'])).stdout).toBe('2048\n');
    // Docker's range: 1 is raised to the kernel's minimum, 2.
    const low = await env.cli(['run', '--rm', '--cpu-shares', '1', 'busybox', 'true']);
    expect(low.code).toBe(0);
    expect((await env.cli(['run', '--rm', '--cpu-shares', 'x', 'busybox', 'true'])).stderr).toMatch(/^imgbuild: INVALID_ARGUMENT: invalid --cpu-shares "x": expected a whole number/);
    await env.cli(['rm', '-f', 'weighted']);
    expect(leftovers(c.Id)).toEqual(NOTHING);
  });

  it('reports an OOM kill: exit 137 and OOMKilled', async () => {
    const r = await env.cli(['run', '--name', 'hog', '--memory', '20m', 'busybox', 'tail', '/dev/zero']);
    expect(r.code).toBe(137);
    const c = await inspect('hog');
    expect(c.State).toMatchObject({ OOMKilled: true, ExitCode: 137 });
    expect((await env.cli(['ps', '-a'])).stdout).toMatch(/Exited \(137\) OOMKilled/);
    await env.cli(['rm', 'hog']);
    expect(leftovers(c.Id)).toEqual(NOTHING);
  });

  it('reports an OOM kill of a detached container too', async () => {
    await env.cli(['run', '-d', '--name', 'dhog', '--memory', '20m', 'busybox', 'tail', '/dev/zero']);
    const c = await waitFor(async () => {
      const x = await inspect('dhog');
      return x.State.ExitCode !== 0 ? x : undefined;
    }, 20_000);
    expect(c.State).toMatchObject({ OOMKilled: true, ExitCode: 137 });
    await env.cli(['rm', 'dhog']);
  });

  it('contains a fork bomb under --pids-limit and kills it cleanly', async () => {
    await env.cli(['run', '-d', '--name', 'bomb', '--pids-limit', '50', 'busybox', 'sh', '-c', 'b() { b | b & }; b; sleep 300']);
    const c = await inspect('bomb');
    const pidsDir = c.Cgroup.paths.find((p) => p.includes('/pids/')) ?? c.Cgroup.paths[0]!;
    // The group fills up to the limit and no further.
    await waitFor(() => (Number(readFileSync(join(pidsDir, version === 1 ? 'pids.current' : 'pids.current'), 'utf8')) >= 45 ? true : undefined), 10_000);
    expect(Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8'))).toBeLessThanOrEqual(50);
    // The host can still fork.
    const echo = spawn('true');
    expect(await new Promise((r) => echo.once('exit', r))).toBe(0);
    const t0 = Date.now();
    expect((await env.cli(['rm', '-f', 'bomb'])).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(leftovers(c.Id)).toEqual(NOTHING);
  });
});
