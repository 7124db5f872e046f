/**
 * `stats`: a container's resource use as Docker computes it, from its cgroup (host/cgroups.ts
 * `usage`) and its network namespace's interface counters (`/proc/<pid>/net/dev`, every interface
 * but `lo`). CPU % is the container's CPU time over the host's between two samples, times the
 * number of CPUs (docker/cli calculateCPUPercentUnix); memory use leaves out the inactive file
 * cache (calculateMemUsageUnixNoCache); an unlimited container's limit is the host's memory.
 */
import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import type { ContainerRecord } from './record.js';
import { cgroupOf } from './resources.js';
import { containerPid } from './state.js';
import type { LifecycleOptions } from './types.js';

/** One reading of a container's counters. */
export interface StatsSample {
  /** Host CPU time of all CPUs (ns, from /proc/stat), the base of CPU %. */
  systemNs: number;
  cpuNs: number;
  memory: number;
  memoryLimit: number;
  inactiveFile: number;
  pids: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
}

/** What `stats` prints for a container. */
export interface StatsFigures {
  cpuPercent: number;
  memUsage: number;
  memLimit: number;
  memPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
}

/** USER_HZ, the unit of /proc/stat on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/** The host's total CPU time (user … steal of the `cpu` line) in ns. */
export async function systemCpuNs(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith('cpu '));
  const ticks = (line ?? '').trim().split(/\s+/).slice(1, 9).reduce((a, v) => a + (Number(v) || 0), 0);
  return (ticks * 1e9) / CLOCK_TICKS;
}

/** Bytes received and sent on every interface but `lo` of /proc/<pid>/net/dev. */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0 || line.slice(0, i).trim() === 'lo') continue;
    const f = line.slice(i + 1).trim().split(/\s+/).map(Number);
    rx += f[0] || 0;
    tx += f[8] || 0;
  }
  return { rx, tx };
}

export async function sampleStats(rec: ContainerRecord, o: LifecycleOptions = {}): Promise<StatsSample | undefined> {
  if (rec.state.status !== 'running') return undefined;
  const [u, systemNs, pid] = await Promise.all([(await cgroupOf(rec, o)).usage(), systemCpuNs(), containerPid(rec, o)]);
  // A container on the host's network has no counters of its own: Docker shows 0B as well.
  const net = pid && rec.hostConfig.networkMode !== 'host' ? parseNetDev(await readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '')) : { rx: 0, tx: 0 };
  const host = totalmem();
  const limit = u.memoryLimit === undefined || u.memoryLimit <= 0 || u.memoryLimit > host ? host : u.memoryLimit;
  return {
    systemNs,
    cpuNs: u.cpuNs ?? 0,
    memory: u.memory ?? 0,
    memoryLimit: limit,
    inactiveFile: u.inactiveFile ?? 0,
    pids: u.pids ?? 0,
    netRx: net.rx,
    netTx: net.tx,
    blockRead: u.blockRead,
    blockWrite: u.blockWrite,
  };
}

/** Docker's figures from a sample and the one before it (none: CPU % is 0). */
export function computeStats(cur: StatsSample, prev: StatsSample | undefined, onlineCpus = cpus().length): StatsFigures {
  let cpuPercent = 0;
  if (prev) {
    const cpuDelta = cur.cpuNs - prev.cpuNs;
    const systemDelta = cur.systemNs - prev.systemNs;
    if (cpuDelta > 0 && systemDelta > 0) cpuPercent = (cpuDelta / systemDelta) * onlineCpus * 100;
  }
  const memUsage = cur.inactiveFile < cur.memory ? cur.memory - cur.inactiveFile : cur.memory;
  return {
    cpuPercent,
    memUsage,
    memLimit: cur.memoryLimit,
    memPercent: cur.memoryLimit > 0 ? (memUsage / cur.memoryLimit) * 100 : 0,
    netRx: cur.netRx,
    netTx: cur.netTx,
    blockRead: cur.blockRead,
    blockWrite: cur.blockWrite,
    pids: cur.pids,
  };
}
