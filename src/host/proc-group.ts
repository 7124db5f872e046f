/**
 * A container without a cgroup (rootless on cgroup v1, or without a delegated v2 subtree) as the
 * processes of its pid namespace, read from /proc, for `top` and `stats`: what the group's
 * `cgroup.procs` and counters would say, as far as /proc can say it.
 *
 * Members are the processes whose `/proc/<pid>/ns/pid` is the leader's; where that link may not
 * be read (a process of another of the container's uids, seen from outside its user namespace),
 * a process counts when it descends from the leader. Usage sums /proc/<pid>/stat: CPU time (user
 * and system, with that of reaped children, as cpuacct counts it), resident memory and threads;
 * block I/O is not counted (/proc/<pid>/io is its owner's alone).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** USER_HZ: the unit of /proc/<pid>/stat times (100 on every Linux ABI Node runs on). */
const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

interface ProcStat {
  ppid: number;
  ticks: number;
  rssPages: number;
  threads: number;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function parseStat(text: string): ProcStat | undefined {
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): field n is f[n - 3].
  const n = (i: number): number => Number(f[i - 3]);
  if (f.length < 22) return undefined;
  return { ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17), rssPages: n(24), threads: n(20) };
}

async function readStat(pid: number): Promise<ProcStat | undefined> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then(parseStat, () => undefined);
}

/** The host pids of the processes in `leader`'s pid namespace (leader first); empty when it is gone. */
export async function namespaceMembers(leader: number): Promise<number[]> {
  const ns = await readlink(`/proc/${leader}/ns/pid`).catch(() => undefined);
  const all = (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  const parent = new Map<number, number>();
  const members = new Set<number>();
  await Promise.all(
    all.map(async (pid) => {
      const st = await readStat(pid);
      if (!st) return;
      parent.set(pid, st.ppid);
      if (ns !== undefined && (await readlink(`/proc/${pid}/ns/pid`).catch(() => undefined)) === ns) members.add(pid);
    }),
  );
  if (!parent.has(leader)) return [];
  const descends = (pid: number): boolean => {
    for (let p: number | undefined = pid, i = 0; p !== undefined && p > 0 && i < 4096; p = parent.get(p), i++) if (p === leader || members.has(p)) return true;
    return false;
  };
  return [leader, ...all.filter((pid) => pid !== leader && parent.has(pid) && (members.has(pid) || descends(pid)))];
}

/** What processes use, in the shape of a cgroup's counters (cgroups.ts CgroupUsage). */
export interface ProcessesUsage {
  cpuNs: number;
  memory: number;
  pids: number;
  blockRead: number;
  blockWrite: number;
}

/** What the processes `pids` use. */
export async function processesUsage(pids: readonly number[]): Promise<ProcessesUsage> {
  let ticks = 0;
  let rss = 0;
  let threads = 0;
  for (const st of await Promise.all(pids.map(readStat))) {
    if (!st) continue;
    ticks += st.ticks;
    rss += st.rssPages;
    threads += st.threads;
  }
  return { cpuNs: (ticks * 1e9) / CLOCK_TICKS, memory: rss * PAGE_SIZE, pids: threads, blockRead: 0, blockWrite: 0 };
}
