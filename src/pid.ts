/**
 * Liveness of a process recorded in a lock, lease or scratch-dir name, so that what a killed
 * process left behind can be recognised and cleaned up. Depends on nothing internal, so every
 * area may use it (see the dependency rule in test/conformance/dependency-rule.test.ts).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** True when `pid` names a running process (EPERM: it exists but belongs to someone else). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 (start time in clock ticks since boot) of a /proc/<pid>/stat text. */
function startTimeField(stat: string): string | undefined {
  // comm (field 2) is in parentheses and may hold spaces or ')': fields resume after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]; // field 22 = index 19 counting from field 3
}

/**
 * Start time of a process, which together with the pid names one process for the life of the
 * system: a recycled pid has a later start time. Undefined when the process does not exist.
 */
export async function processStartTime(pid: number | 'self'): Promise<string | undefined> {
  try {
    return startTimeField(await readFile(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/** This process's start time, once read (it never changes). */
let selfStart: string | undefined;

/** This process's start time, read synchronously the first time; '0' without /proc. */
export function selfStartTime(): string {
  if (selfStart === undefined) {
    try {
      selfStart = startTimeField(readFileSync('/proc/self/stat', 'latin1')) ?? '0';
    } catch {
      selfStart = '0';
    }
  }
  return selfStart;
}

/**
 * Whether the process `pid` started at `start` is still running. A pid that is alive with another
 * start time was reused by a later process: the recorded one is gone.
 */
export async function isOwnerAlive(pid: number, start: string | undefined): Promise<boolean> {
  if (!start || !isProcessAlive(pid)) return false;
  return (await processStartTime(pid)) === start;
}
