/**
 * `update`: new resource limits (and restart policy) for a container, applied to its live cgroup when it runs and
 * recorded in its host config, so that every later start (start, restart) makes its cgroup with them.
 */
import type { CgroupLimits } from '../host/cgroups.js';
import { InvalidArgumentError } from '../errors.js';
import { ContainerStateError } from './errors.js';
import { emitContainerEvent } from './events.js';
import { updateRecord, type ContainerRecord } from './record.js';
import { cgroupOf } from './resources.js';
import { getContainer } from './state.js';
import { updateBundleLimits } from './bundle.js';
import type { LifecycleOptions } from './types.js';
import { ensureKeeper } from './keeper.js';
import type { RestartPolicy } from './restart-policy.js';

/** Docker's rules for `--memory-swap` against the memory limit it adds swap to. */
export function checkMemorySwap(memory: number | undefined, memorySwap: number | undefined): void {
  if (memorySwap === undefined) return;
  if (memory === undefined) throw new InvalidArgumentError('you should always set the memory limit when using the memory-swap limit (--memory-swap needs -m)');
  if (memorySwap >= 0 && memorySwap < memory) throw new InvalidArgumentError('the memory-swap limit must be at least the memory limit (-1 for unlimited swap)');
}

export async function updateContainer(root: string, nameOrId: string, limits: CgroupLimits, o: LifecycleOptions & { restartPolicy?: RestartPolicy } = {}): Promise<ContainerRecord> {
  const cur = await getContainer(root, nameOrId, o);
  // The swap limit goes with the memory limit (v1 writes them in order, v2 derives swap.max from both).
  if (limits.memorySwap !== undefined || (limits.memory !== undefined && cur.hostConfig.memorySwap !== undefined)) {
    const memory = limits.memory ?? cur.hostConfig.memory;
    const memorySwap = limits.memorySwap ?? cur.hostConfig.memorySwap;
    checkMemorySwap(memory, memorySwap);
    limits = { ...limits, memory, memorySwap };
  }
  if (o.restartPolicy && o.restartPolicy.name !== 'no' && cur.hostConfig.autoRemove) {
    throw new ContainerStateError(cur.id, 'Restart policy cannot be updated because AutoRemove is enabled for the container');
  }
  if (cur.state.status === 'running') {
    const cg = await cgroupOf(cur, o);
    if (await cg.exists()) await cg.setLimits(limits);
  }
  const rec = await updateRecord(root, cur.id, (r) => {
    const h = r.hostConfig;
    if (limits.memory !== undefined) h.memory = limits.memory;
    if (limits.cpus !== undefined) h.cpus = limits.cpus;
    if (limits.cpuShares !== undefined) h.cpuShares = limits.cpuShares;
    if (limits.memorySwap !== undefined) h.memorySwap = limits.memorySwap;
    // -1 lifts the limit: nothing is set at the next start.
    if (limits.pidsLimit !== undefined) h.pidsLimit = limits.pidsLimit < 0 ? undefined : limits.pidsLimit;
    if (o.restartPolicy) h.restartPolicy = o.restartPolicy.name === 'no' ? undefined : o.restartPolicy;
  });
  if (!rec) throw new ContainerStateError(cur.id, `container ${cur.name} was removed meanwhile`);
  await updateBundleLimits(root, rec.id, rec.hostConfig);
  // A running container's new policy is carried out by a keeper (its keeper reads the policy anew
  // each time the process ends).
  if (o.restartPolicy && rec.state.status === 'running') {
    await ensureKeeper(root, rec, { cgroupRoot: o.cgroupRoot, networkStateDir: o.networkStateDir, claimsDir: o.claimsDir });
  }
  await emitContainerEvent(root, rec, 'update');
  return rec;
}
