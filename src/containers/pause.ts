/**
 * `pause` / `unpause`: every process of a running container frozen by its cgroup's freezer (v1
 * freezer.state, v2 cgroup.freeze) and thawed again. The record says `paused` before the group is
 * frozen, so that a reader finding it frozen never takes it for a freeze left by a killed commit
 * (freeze.ts) and thaws it.
 */
import { ContainerStateError } from './errors.js';
import { emitContainerEvent } from './events.js';
import { updateRecord, withContainerLock, readRecord, writeRecord, type ContainerRecord } from './record.js';
import { cgroupOf } from './resources.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

export async function pauseContainer(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const cur = await getContainer(root, nameOrId, o);
  return withContainerLock(root, cur.id, async () => {
    const rec = await readRecord(root, cur.id);
    if (!rec || rec.state.status !== 'running') throw new ContainerStateError(cur.id, `container ${cur.name} is not running`);
    if (rec.state.paused) throw new ContainerStateError(rec.id, `container ${rec.name} is already paused`);
    rec.state.paused = true;
    await writeRecord(root, rec);
    let frozen = false;
    try {
      frozen = await (await cgroupOf(rec, o)).freeze(true);
    } finally {
      if (!frozen) {
        rec.state.paused = undefined;
        await writeRecord(root, rec);
      }
    }
    if (!frozen) throw new ContainerStateError(rec.id, `container ${rec.name} cannot be paused: its cgroup has no freezer`);
    await emitContainerEvent(root, rec, 'pause');
    return rec;
  });
}

export async function unpauseContainer(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const cur = await getContainer(root, nameOrId, o);
  if (cur.state.status !== 'running' || !cur.state.paused) throw new ContainerStateError(cur.id, `container ${cur.name} is not paused`);
  await (await cgroupOf(cur, o)).freeze(false);
  const rec = await updateRecord(root, cur.id, (r) => {
    r.state.paused = undefined;
  });
  await emitContainerEvent(root, cur, 'unpause');
  return rec ?? cur;
}
