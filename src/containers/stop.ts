/** Signalling containers: kill (a signal to pid 1, SIGKILL to the whole group), wait, and stop. */
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerStateError } from './errors.js';
import { readRecord, updateRecord, type ContainerRecord } from './record.js';
import { cgroupOf } from './resources.js';
import { signalNumber } from './signals.js';
import { containerPid, getContainer, refreshState } from './state.js';
import type { LifecycleOptions } from './types.js';
import { emitContainerEvent } from './events.js';

/**
 * Records that the user stopped the container, so that its keeper does not restart it (docker's
 * HasBeenManuallyStopped: stop, and kill with SIGKILL or the stop signal, cancel the restart
 * policy until the container is started again); a restart being waited for is called off.
 */
export async function markStopped(root: string, id: string): Promise<void> {
  await updateRecord(root, id, (r) => {
    r.state.manuallyStopped = true;
    delete r.state.restarting;
  });
}

/** Sends a signal to the container's pid 1 (SIGKILL: to every process of its cgroup). */
export async function killContainer(root: string, nameOrId: string, sig: string | number = 'SIGKILL', o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const rec = await getContainer(root, nameOrId, o);
  if (rec.state.status !== 'running') throw new ContainerStateError(rec.id, `container ${rec.name} is not running`);
  const n = signalNumber(sig);
  if (rec.hostConfig.restartPolicy && (n === 9 || n === signalNumber(rec.config.StopSignal || 'SIGTERM'))) await markStopped(root, rec.id);
  await emitContainerEvent(root, rec, 'kill', { signal: String(n) });
  if (n === 9) {
    await (await cgroupOf(rec, o)).kill('SIGKILL');
    return rec;
  }
  const pid = await containerPid(rec, o);
  if (!pid) throw new ContainerStateError(rec.id, `container ${rec.name} has no running process`);
  try {
    process.kill(pid, n);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  return rec;
}

/** Waits until the container is no longer running (polling the kernel and the status file). */
export async function waitContainer(root: string, id: string, o: LifecycleOptions & { timeoutMs?: number } = {}): Promise<ContainerRecord | undefined> {
  const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
  for (;;) {
    const r = await readRecord(root, id);
    if (!r) return undefined;
    const cur = await refreshState(root, r, o);
    if (cur.state.status !== 'running') return cur;
    if (Date.now() >= deadline) return cur;
    o.signal?.throwIfAborted();
    await sleep(25);
  }
}

/**
 * The container's stop signal (`--stop-signal`, else the image's STOPSIGNAL, else SIGTERM) to pid
 * 1, then SIGKILL to the group after `timeoutSec` (default `--stop-timeout`, else 10; -1 waits
 * forever). A paused container gets the signal queued and, as Docker's, is killed (and thawed)
 * once the time is up.
 */
export async function stopContainer(root: string, nameOrId: string, o: LifecycleOptions & { timeoutSec?: number; stopSignal?: string } = {}): Promise<ContainerRecord> {
  let rec = await getContainer(root, nameOrId, o);
  if (rec.hostConfig.restartPolicy || rec.state.restarting) {
    await markStopped(root, rec.id);
    // A restart its keeper had begun finishes first; then the container is stopped as usual.
    if (rec.state.status !== 'running') rec = await settleRestart(root, rec, o);
  }
  if (rec.state.status !== 'running') return rec;
  const sig = o.stopSignal ?? (rec.config.StopSignal || 'SIGTERM');
  const timeoutSec = o.timeoutSec ?? rec.config.StopTimeout ?? 10;
  await emitContainerEvent(root, rec, 'kill', { signal: String(signalNumber(sig)) });
  const pid = await containerPid(rec, o);
  if (pid) {
    try {
      process.kill(pid, signalNumber(sig));
    } catch {
      // already exiting
    }
  }
  let cur = await waitContainer(root, rec.id, { ...o, ...(timeoutSec >= 0 ? { timeoutMs: timeoutSec * 1000 } : {}) });
  if (cur && cur.state.status === 'running') {
    await emitContainerEvent(root, rec, 'kill', { signal: '9' });
    await (await cgroupOf(rec, o)).kill('SIGKILL').catch(() => {});
    cur = await waitContainer(root, rec.id, { ...o, timeoutMs: 10_000 });
  }
  await emitContainerEvent(root, rec, 'stop');
  return cur ?? rec;
}

/** Waits (up to 10 s) for a start the container's keeper has begun to end one way or the other. */
async function settleRestart(root: string, rec: ContainerRecord, o: LifecycleOptions): Promise<ContainerRecord> {
  let cur = rec;
  for (let i = 0; i < 400 && cur.state.status === 'created' && cur.state.keeperPid !== undefined && cur.state.monitorPid === cur.state.keeperPid; i++) {
    await sleep(25);
    const r = await readRecord(root, rec.id);
    if (!r) return cur;
    cur = await refreshState(root, r, o);
  }
  return cur;
}
