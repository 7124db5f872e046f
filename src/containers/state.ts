/**
 * A container's state as the kernel has it. There is no daemon: state.json plus the kernel (is the
 * pid alive, is anything left in the cgroup) is the truth, and every reader reconciles the record
 * with it (refreshState). After a SIGKILL at any moment the next reader sees a true state: a
 * `created` record whose creator is gone is `running` if its process runs (the start got that
 * far), and otherwise has its kernel objects removed, which also stops a start still in flight
 * (settleCreated).
 */
import type { Cgroup } from '../host/cgroups.js';
import { hostVethName, leasedState, netnsName, netnsPathOf } from '../host/network.js';
import { exitedState, normaliseExit } from './exit.js';
import { thawIfAbandoned } from './freeze.js';
import { findInitPid, isSameProcess, parentPid, procStartTime } from './proc.js';
import { readExitStatus, readRecord, resolveContainer, updateRecord, withContainerLock, writeRecord, type ContainerRecord, type ExitStatus } from './record.js';
import { cgroupOf, findProxies, releaseResources } from './resources.js';
import { hostNetworkMode } from './network-options.js';
import type { LifecycleOptions } from './types.js';
import { emitContainerEnd } from './events.js';

/** The host pid of the container's pid 1, when it is running. */
export async function containerPid(rec: ContainerRecord, o: LifecycleOptions = {}): Promise<number | undefined> {
  if (rec.state.status !== 'running') return undefined;
  if (rec.state.pid && (await isSameProcess(rec.state.pid, rec.state.pidStartTime))) return rec.state.pid;
  const cg = await cgroupOf(rec, o);
  return findInitPid(await cg.pids());
}

/**
 * Reconciles a record with the kernel: for a running one, an exit status written by the monitor,
 * or a group that is empty with nobody left to write one, makes the container exited (and a
 * freeze whose holder is gone is undone); a created one whose creator is gone is settled
 * (settleCreated).
 */
export async function refreshState(root: string, rec: ContainerRecord, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  if (rec.state.status === 'created') return settleCreated(root, rec, o);
  if (rec.state.status !== 'running') return rec;
  await thawIfAbandoned(root, rec, o);
  let st = await readExitStatus(root, rec.id);
  let next: ExitStatus | undefined;
  let error: string | undefined;
  // The watcher writes the status and then exits: one found gone may have written it since the
  // first read (a container ending just then would otherwise read as killed, 137).
  const watcherAlive = st === undefined && (await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime));
  if (!st && !watcherAlive) st = await readExitStatus(root, rec.id);
  if (st) {
    const n = normaliseExit({ exitCode: st.exitCode, signal: st.signal });
    next = { ...st, ...n };
    if (!next.oomKilled) next.oomKilled = await (await cgroupOf(rec, o)).oomKilled().catch(() => false);
  } else {
    if (watcherAlive) return rec;
    const cg = await cgroupOf(rec, o);
    if ((await cg.pids()).length > 0) return rec; // orphaned but still running: rm -f / kill can reach it
    const oom = await cg.oomKilled().catch(() => false);
    next = { exitCode: 137, oomKilled: oom, finishedAt: new Date().toISOString() };
    error = 'the process waiting for the container went away before it exited';
  }
  const status = next;
  let ended = false;
  const updated = await updateRecord(root, rec.id, (r) => {
    if (r.state.status !== 'running') return;
    r.state = exitedState(r.state, status, error);
    ended = true;
  });
  // Whoever records the end tells it, once (the update is made under the container's lock).
  if (ended) await emitContainerEnd(root, rec, status);
  return updated ?? rec;
}

/**
 * A `created` container whose creator is gone: the start was cut short somewhere, and the kernel
 * says where. Processes in its cgroup mean the sandbox got the container going (the monitor of a
 * detached start outlives its caller): the record becomes `running`, with the container's pid 1
 * and, as its watcher, that pid's parent (the monitor, which writes the exit status). Otherwise
 * the cgroup and network are removed — which makes a sandbox helper still setting up fail to join
 * them, so nothing can start later — and the container stays `created`, or `exited` when an exit
 * status turned up meanwhile. Under the container's lock, so concurrent readers settle it once.
 */
async function settleCreated(root: string, rec: ContainerRecord, o: LifecycleOptions): Promise<ContainerRecord> {
  // No creator named: settled already (nothing can start it any more).
  if (rec.state.monitorPid === undefined || (await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime))) return rec;
  return withContainerLock(root, rec.id, async () => {
    const cur = await readRecord(root, rec.id);
    if (!cur) return rec;
    if (cur.state.status !== 'created' || cur.state.monitorPid === undefined || (await isSameProcess(cur.state.monitorPid, cur.state.monitorStartTime))) return cur;
    const cg = await cgroupOf(cur, o);
    let released = false;
    for (;;) {
      const pids = await cg.pids();
      if (pids.length > 0) {
        await adoptRunning(cur, cg, pids, o);
        break;
      }
      const st = await readExitStatus(root, cur.id);
      if (st) {
        cur.state = { ...exitedState(cur.state, { ...st, ...normaliseExit(st) }), pid: undefined };
        break;
      }
      if (released) {
        const { monitorPid: _p, monitorStartTime: _t, ...rest } = cur.state;
        cur.state = { ...rest, error: 'the imgbuild process starting it was killed before the container started' };
        break;
      }
      await releaseResources(cur, o).catch(() => {});
      released = true;
    }
    await writeRecord(root, cur);
    return cur;
  });
}

/** Records a container found running without its record saying so (see settleCreated). */
async function adoptRunning(rec: ContainerRecord, cg: Cgroup, pids: number[], o: LifecycleOptions): Promise<void> {
  const pid = await findInitPid(pids);
  const monitor = pid ? await parentPid(pid) : undefined;
  const [pidStartTime, monitorStartTime] = await Promise.all([pid ? procStartTime(pid) : undefined, monitor && monitor > 1 ? procStartTime(monitor) : undefined]);
  rec.cgroup ??= { version: cg.version, paths: cg.paths };
  if (!rec.network && rec.hostConfig.networkMode === 'bridge') {
    rec.network = (await leasedState(rec.id, { stateDir: o.networkStateDir })) ?? { mode: 'bridge', netnsName: netnsName(rec.id), netnsPath: netnsPathOf(rec.id), hostVeth: hostVethName(rec.id) };
  } else rec.network ??= { mode: hostNetworkMode(rec.hostConfig.networkMode) };
  const proxy = rec.hostConfig.portBindings.length > 0 ? (await findProxies(new Set([rec.id])))[0] : undefined;
  rec.state = {
    ...rec.state,
    status: 'running',
    pid,
    pidStartTime,
    monitorPid: monitorStartTime ? monitor : undefined,
    monitorStartTime,
    ...(proxy ? { proxyPid: proxy.pid, proxyStartTime: await procStartTime(proxy.pid) } : {}),
    startedAt: new Date().toISOString(),
  };
}

/** The container `nameOrId` names, reconciled with the kernel. */
export async function getContainer(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  return refreshState(root, await resolveContainer(root, nameOrId), o);
}
