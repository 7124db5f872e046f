/**
 * Liveness of a process recorded in a lock, lease or scratch-dir name, so that what a killed
 * process left behind can be recognised and cleaned up. Depends on nothing internal, so every
 * area may use it (see the dependency rule in test/conformance/dependency-rule.test.ts).
 */

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
