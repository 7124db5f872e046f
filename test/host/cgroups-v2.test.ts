/**
 * The cgroup v2 code paths, against a fake cgroupfs tree in a tmp dir (this machine runs the v1
 * hierarchy; v1 is covered for real in test/e2e/cgroups.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { Cgroup, detectCgroupVersion } from '../../src/host/cgroups.js';
import { makeTmp } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeEach(async () => {
  tmp = await makeTmp();
  root = join(tmp.dir, 'cgroup');
  await mkdir(root);
  await writeFile(join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
  await writeFile(join(root, 'cgroup.subtree_control'), '');
});
afterEach(async () => tmp.cleanup());

const read = (p: string): Promise<string> => readFile(p, 'utf8');
const present = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

describe('cgroup v2 (fake tree)', () => {
  it('detects v2 from cgroup.controllers and v1 without it', async () => {
    expect(await detectCgroupVersion(root)).toBe(2);
    const v1 = join(tmp.dir, 'v1');
    await mkdir(join(v1, 'memory'), { recursive: true });
    expect(await detectCgroupVersion(v1)).toBe(1);
  });

  it('the real /sys/fs/cgroup of this machine is detected as a version', async () => {
    expect([1, 2]).toContain(await detectCgroupVersion());
  });

  it('creates one group, delegates controllers and writes the limits', async () => {
    const cg = await Cgroup.create('abc123', { memory: 20 * 1024 * 1024, cpus: 0.5, pidsLimit: 50 }, { cgroupRoot: root });
    expect(cg.version).toBe(2);
    const dir = join(root, 'imgbuild', 'abc123');
    expect(cg.paths).toEqual([dir]);
    expect((await read(join(root, 'cgroup.subtree_control'))).split(' ').sort()).toEqual(['+cpu', '+io', '+memory', '+pids']);
    expect((await read(join(root, 'imgbuild', 'cgroup.subtree_control'))).split(' ').sort()).toEqual(['+cpu', '+io', '+memory', '+pids']);
    expect(await read(join(dir, 'memory.max'))).toBe('20971520');
    expect(await read(join(dir, 'memory.swap.max'))).toBe('0');
    expect(await read(join(dir, 'cpu.max'))).toBe('50000 100000');
    expect(await read(join(dir, 'pids.max'))).toBe('50');
    expect(await present(join(dir, 'cpu.weight'))).toBe(false);
    await cg.setLimits({ cpuShares: 512 });
    expect(await read(join(dir, 'cpu.weight'))).toBe('20');
  });

  it('only enables controllers the parent offers, and leaves unset limits alone', async () => {
    await writeFile(join(root, 'cgroup.controllers'), 'cpu pids\n');
    const cg = await Cgroup.create('x1', { pidsLimit: 10 }, { cgroupRoot: root });
    expect((await read(join(root, 'cgroup.subtree_control'))).split(' ').sort()).toEqual(['+cpu', '+pids']);
    expect(await present(join(cg.paths[0]!, 'memory.max'))).toBe(false);
    expect(await present(join(cg.paths[0]!, 'cpu.max'))).toBe(false);
    await expect(Cgroup.create('x2', { memory: 64 * 1024 * 1024 }, { cgroupRoot: root })).rejects.toThrow(/memory controller is not available/);
  });

  it('refuses device rules in one line (v2 would need a BPF device program) and makes nothing', async () => {
    await expect(Cgroup.create('dev1', { devices: ['c 1:3 rwm'] }, { cgroupRoot: root })).rejects.toThrow(
      /^device rules need cgroup v1 \(v2 would need a BPF device program, which imgbuild does not make\)$/,
    );
    expect(await present(join(root, 'imgbuild', 'dev1'))).toBe(false);
  });

  it('reads the OOM kill counter from memory.events', async () => {
    const cg = await Cgroup.create('oom', { memory: 8 * 1024 * 1024 }, { cgroupRoot: root });
    const dir = cg.paths[0]!;
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\n');
    expect(await cg.oomKilled()).toBe(false);
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n');
    expect(await cg.oomKilled()).toBe(true);
  });

  it('lists processes, kills through cgroup.kill and removes the group', async () => {
    const cg = await Cgroup.create('k', {}, { cgroupRoot: root });
    const dir = cg.paths[0]!;
    await writeFile(join(dir, 'cgroup.procs'), '');
    expect(await cg.pids()).toEqual([]);
    await cg.kill('SIGKILL');
    expect(await read(join(dir, 'cgroup.kill'))).toBe('1');
    expect(await cg.exists()).toBe(true);
    await cg.remove();
    expect(await cg.exists()).toBe(false);
    expect(await present(join(root, 'imgbuild'))).toBe(true);
    await cg.remove(); // idempotent
  });

  it('freezes and thaws through cgroup.freeze, waiting for cgroup.events', async () => {
    const cg = await Cgroup.create('fz', {}, { cgroupRoot: root });
    const dir = cg.paths[0]!;
    await writeFile(join(dir, 'cgroup.freeze'), '0');
    await writeFile(join(dir, 'cgroup.events'), 'populated 1\nfrozen 1\n');
    expect(await cg.freeze(true)).toBe(true);
    expect(await read(join(dir, 'cgroup.freeze'))).toBe('1');
    expect(await cg.freeze(false)).toBe(true);
    expect(await read(join(dir, 'cgroup.freeze'))).toBe('0');
    await writeFile(join(dir, 'cgroup.events'), 'populated 1\nfrozen 0\n');
    await expect(cg.freeze(true, { timeoutMs: 50 })).rejects.toThrow(/did not freeze/);
  });

  it('refuses names that would escape the parent', async () => {
    await expect(Cgroup.create('../evil', {}, { cgroupRoot: root })).rejects.toThrow(/invalid cgroup name/);
  });
});
