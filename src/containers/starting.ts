/**
 * The way into a start: a created or exited container is claimed by the process starting it, and
 * a start that fails gives it back as it was. A container can start again and again on the same
 * writable snapshot (its upper dir, so data written before survives); each start gets a fresh
 * cgroup, network namespace and port proxy, because the ones of the previous run are released
 * here first (an exited container may still hold them until it is started or removed).
 */
import { rm } from 'node:fs/promises';
import { ContainerStateError, ContainerStartError } from './errors.js';
import { procStartTime } from './proc.js';
import { pathOf, readRecord, resolveContainer, updateRecord, withContainerLock, writeRecord, type ContainerRecord, type ContainerState } from './record.js';
import { releaseResources } from './resources.js';
import { refreshState } from './state.js';
import type { LifecycleOptions } from './types.js';

/** What a failed start restores: the container's state before the claim. */
export interface StartClaim {
  rec: ContainerRecord;
  prior: ContainerState;
}

/**
 * Claims container `nameOrId` for a start by this process: it must be created or exited (a
 * running one is refused with ContainerStateError). The record turns `created` naming us as its
 * starter, so that readers meanwhile see a start in flight (and, if we are killed, settle it as
 * state.ts does for a killed `run`); the previous run's status file and kernel objects go first.
 * A container this process has just created is taken as it is (nothing to undo: `run`'s path).
 */
export async function claimStart(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<StartClaim> {
  const found = /^[0-9a-f]{64}$/.test(nameOrId) ? ((await readRecord(root, nameOrId)) ?? (await resolveContainer(root, nameOrId))) : await resolveContainer(root, nameOrId);
  if (found.state.status === 'created' && found.state.monitorPid === process.pid) return { rec: found, prior: { ...found.state } };
  const cur = await refreshState(root, found, o);
  if (cur.state.status === 'running') throw new ContainerStateError(cur.id, `container ${cur.name} is already running`);
  if (cur.state.status === 'dead') throw new ContainerStateError(cur.id, `container ${cur.name} is marked for removal and cannot be started`);
  const ownStart = (await procStartTime(process.pid)) ?? '0';
  return withContainerLock(root, cur.id, async () => {
    const rec = await readRecord(root, cur.id);
    if (!rec) throw new ContainerStateError(cur.id, `container ${cur.name} was removed meanwhile`);
    const prior = { ...rec.state };
    // Another start won the race (it named itself the starter, or the container runs).
    if (rec.state.status === 'running' || (rec.state.status === 'created' && rec.state.monitorPid !== undefined)) {
      throw new ContainerStateError(rec.id, `container ${rec.name} is already running or being started`);
    }
    // What the previous run left: its kernel objects (an exited container keeps them until now)
    // and its exit status, which would otherwise read as this run's end.
    await releaseResources(rec, o);
    await rm(pathOf(root, rec.id, 'status'), { force: true });
    // Started by its user: a restart policy applies again (docker's manual stop is over), with its
    // count and back-off from zero, as docker's start resets them.
    const { pid: _p, pidStartTime: _s, proxyPid: _x, proxyStartTime: _y, error: _e, manuallyStopped: _m, restarting: _r, restartCount: _c, restartDelayMs: _d, ...kept } = rec.state;
    rec.state = { ...kept, status: 'created', monitorPid: process.pid, monitorStartTime: ownStart };
    rec.cgroup = undefined;
    rec.network = undefined;
    await writeRecord(root, rec);
    return { rec, prior };
  });
}

/**
 * Gives a container whose start failed back its state from before the claim (created or exited),
 * with the failure as its error and exit code, as Docker keeps it; the caller has released every
 * kernel object the attempt made.
 */
export async function abandonStart(root: string, claim: StartClaim, err: ContainerStartError | Error): Promise<void> {
  const exitCode = err instanceof ContainerStartError ? err.exitCode : 125;
  await updateRecord(root, claim.rec.id, (r) => {
    const { monitorPid: _m, monitorStartTime: _t, pid: _p, pidStartTime: _s, proxyPid: _x, proxyStartTime: _y, ...prior } = claim.prior;
    // A container that has run before is exited again; one that never ran stays created.
    const ranBefore = claim.prior.status === 'exited' || claim.prior.finishedAt !== undefined;
    r.state = { ...prior, status: ranBefore ? 'exited' : 'created', exitCode, error: err.message };
    r.cgroup = undefined;
    r.network = undefined;
  }).catch(() => {});
}
