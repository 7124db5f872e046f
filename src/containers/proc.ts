/**
 * Process facts from /proc: start times (to tell a live pid from a recycled one), the container
 * init among a cgroup's processes, and a process's namespace ids.
 */
import { readFile, readlink } from 'node:fs/promises';

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined if gone. */
export async function procStartTime(pid: number): Promise<string | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parens; the fields after the last ')' are fixed.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and (when a start time is known) still the same process; zombies count as dead. */
export async function isSameProcess(pid: number | undefined, startTime: string | undefined): Promise<boolean> {
  if (!pid || pid <= 0) return false;
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return false;
    return startTime === undefined || rest[19] === startTime;
  } catch {
    return false;
  }
}

/** The pid whose innermost pid-namespace pid is 1 (the container's init), among `pids`. */
export async function findInitPid(pids: number[]): Promise<number | undefined> {
  for (const pid of pids.sort((a, b) => a - b)) {
    try {
      const st = await readFile(`/proc/${pid}/status`, 'utf8');
      const ns = /^NSpid:\s+(.*)$/m.exec(st)?.[1]?.trim().split(/\s+/);
      if (ns && ns.length >= 2 && ns[ns.length - 1] === '1') return pid;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

const NS_KINDS = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'] as const;

/** `{ mnt: 'mnt:[4026532…]', … }` for a running process. */
export async function namespacesOf(pid: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of NS_KINDS) {
    try {
      out[k] = await readlink(`/proc/${pid}/ns/${k}`);
    } catch {
      // kernel without that namespace kind, or the process is gone
    }
  }
  return out;
}

/** The parent of `pid` (PPid of /proc/<pid>/status), or undefined when it is gone. */
export async function parentPid(pid: number): Promise<number | undefined> {
  try {
    const m = /^PPid:\s+(\d+)$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
