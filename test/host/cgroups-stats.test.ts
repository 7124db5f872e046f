/**
 * What `stats` reads and computes: the counters of a v2 group (a fake cgroupfs tree: this machine
 * runs v1, which test/e2e/container-stats.test.ts covers for real) and of v1 per-controller trees,
 * Docker's CPU % and memory-without-cache arithmetic, the netns counters and Docker's units.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cgroup } from '../../src/host/cgroups.js';
import { computeStats, parseNetDev, type StatsSample } from '../../src/containers/stats.js';
import { bytesSize } from '../../src/cli/commands/stats.js';
import { makeTmp } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp();
});
afterEach(async () => tmp.cleanup());

async function files(dir: string, f: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [k, v] of Object.entries(f)) await writeFile(join(dir, k), v);
}

describe('Cgroup.usage', () => {
  it('reads a v2 group: cpu.stat, memory.current/max/stat, pids.current, io.stat', async () => {
    const root = join(tmp.dir, 'v2');
    await files(root, { 'cgroup.controllers': 'cpu io memory pids\n' });
    await files(join(root, 'imgbuild', 'c1'), {
      'cpu.stat': 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n',
      'memory.current': '10485760\n',
      'memory.max': '67108864\n',
      'memory.stat': 'anon 4096\nfile 8192\nactive_file 4096\ninactive_file 2097152\n',
      'pids.current': '3\n',
      'io.stat': '8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=24 wbytes=48 rios=1 wios=1\n',
    });
    const cg = await Cgroup.open('c1', { cgroupRoot: root, version: 2 });
    expect(await cg.usage()).toEqual({ cpuNs: 2_500_000_000, memory: 10485760, memoryLimit: 67108864, inactiveFile: 2097152, pids: 3, blockRead: 1024, blockWrite: 2048 });
  });

  it('reads v2 `max` as no limit', async () => {
    const root = join(tmp.dir, 'v2');
    await files(root, { 'cgroup.controllers': 'memory\n' });
    await files(join(root, 'imgbuild', 'c2'), { 'memory.current': '4096\n', 'memory.max': 'max\n' });
    const u = await (await Cgroup.open('c2', { cgroupRoot: root, version: 2 })).usage();
    expect(u.memoryLimit).toBeUndefined();
    expect(u.memory).toBe(4096);
  });

  it('reads v1 trees: cpuacct.usage, memory.*, pids.current, blkio service bytes', async () => {
    const root = join(tmp.dir, 'v1');
    const g = (c: string): string => join(root, c, 'imgbuild', 'c3');
    await files(g('cpuacct'), { 'cpuacct.usage': '123456789\n' });
    await files(g('memory'), { 'memory.usage_in_bytes': '8388608\n', 'memory.limit_in_bytes': '9223372036854771712\n', 'memory.stat': 'cache 1\ntotal_inactive_file 1048576\n' });
    await files(g('pids'), { 'pids.current': '2\n' });
    await files(g('blkio'), { 'blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n8:16 Read 4\nTotal 12292\n' });
    await files(g('cpu'), {});
    await files(g('freezer'), {});
    const u = await (await Cgroup.open('c3', { cgroupRoot: root, version: 1 })).usage();
    expect(u).toEqual({ cpuNs: 123456789, memory: 8388608, memoryLimit: 9223372036854771712, inactiveFile: 1048576, pids: 2, blockRead: 4100, blockWrite: 8192 });
  });
});

describe('Docker\'s arithmetic', () => {
  const base: StatsSample = { systemNs: 0, cpuNs: 0, memory: 0, memoryLimit: 100, inactiveFile: 0, pids: 1, netRx: 0, netTx: 0, blockRead: 0, blockWrite: 0 };

  it('CPU % is the container\'s share of the host\'s CPU time times the CPUs; 0 without a previous sample', () => {
    const prev = { ...base, systemNs: 1_000_000_000, cpuNs: 100 };
    const cur = { ...base, systemNs: 3_000_000_000, cpuNs: 100 + 500_000_000 };
    expect(computeStats(cur, prev, 2).cpuPercent).toBeCloseTo(50, 6);
    expect(computeStats(cur, undefined, 2).cpuPercent).toBe(0);
    expect(computeStats(prev, cur, 2).cpuPercent).toBe(0);
  });

  it('memory use leaves out the inactive file cache (unless it is larger), MEM % of the limit', () => {
    expect(computeStats({ ...base, memory: 60, inactiveFile: 10 }, undefined).memUsage).toBe(50);
    expect(computeStats({ ...base, memory: 60, inactiveFile: 10 }, undefined).memPercent).toBe(50);
    expect(computeStats({ ...base, memory: 5, inactiveFile: 10 }, undefined).memUsage).toBe(5);
  });

  it('sums every interface but lo of /proc/<pid>/net/dev', () => {
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     999       9    0    0    0     0          0         0      999       9    0    0    0     0       0          0
  eth0:    1500      10    0    0    0     0          0         0      700       5    0    0    0     0       0          0
  eth1:      20       1    0    0    0     0          0         0        3       1    0    0    0     0       0          0
`;
    expect(parseNetDev(text)).toEqual({ rx: 1520, tx: 703 });
  });

  it('prints sizes in Docker\'s binary units', () => {
    expect(bytesSize(0)).toBe('0B');
    expect(bytesSize(1023)).toBe('1023B');
    expect(bytesSize(1536)).toBe('1.5KiB');
    expect(bytesSize(64 * 1024 * 1024)).toBe('64MiB');
    expect(bytesSize(1503238)).toBe('1.434MiB');
    expect(bytesSize(25_278_902_272)).toBe('23.54GiB');
  });
});
