/**
 * `update`: new resource limits for a container, applied to its live cgroup when it runs and
 * recorded in its host config, so that every later start (start, restart) makes its cgroup with them.
 */
import type { CgroupLimits } from '../host/cgroups.js';
import { ContainerStateError } from './errors.js';
import { emitContainerEvent } from './events.js';
import { updateRecord, type ContainerRecord } from './record.js';
import { cgroupOf } from './resources.js';
import { getContainer } from './state.js';
import { updateBundleLimits } from './bundle.js';
import type { LifecycleOptions } from './types.js';

export async function updateContainer(root: string, nameOrId: string, limits: CgroupLimits, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const cur = await getContainer(root, nameOrId, o);
  if (cur.state.status === 'running') {
    const cg = await cgroupOf(cur, o);
    if (await cg.exists()) await cg.setLimits(limits);
  }
  const rec = await updateRecord(root, cur.id, (r) => {
    const h = r.hostConfig;
    if (limits.memory !== undefined) h.memory = limits.memory;
    if (limits.cpus !== undefined) h.cpus = limits.cpus;
    // -1 lifts the limit: nothing is set at the next start.
    if (limits.pidsLimit !== undefined) h.pidsLimit = limits.pidsLimit < 0 ? undefined : limits.pidsLimit;
  });
  if (!rec) throw new ContainerStateError(cur.id, `container ${cur.name} was removed meanwhile`);
  await updateBundleLimits(root, rec.id, rec.hostConfig);
  await emitContainerEvent(root, rec, 'update');
  return rec;
}
