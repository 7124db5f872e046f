/** Listing containers, and removing the ones that are done (`container prune`). */
import { isSameProcess } from './proc.js';
import { listRecords, type ContainerRecord } from './record.js';
import { removeContainer } from './remove.js';
import { refreshState } from './state.js';
import type { LifecycleOptions } from './types.js';

/** All containers, reconciled; detached `--rm` containers that have exited are removed here. */
export async function listContainers(root: string, o: LifecycleOptions = {}): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const r of await listRecords(root)) {
    const cur = await refreshState(root, r, o);
    // `--rm` containers whose runner is gone: exited ones, and created ones whose creator died.
    const orphan = cur.state.status === 'exited' || cur.state.status === 'created';
    if (orphan && cur.hostConfig?.autoRemove && cur.state.monitorPid !== process.pid) {
      if (!(await isSameProcess(cur.state.monitorPid, cur.state.monitorStartTime))) {
        await removeContainer(root, cur.id, { ...o, force: true, removeVolumes: true }).catch(() => {});
        continue;
      }
    }
    out.push(cur);
  }
  return out;
}

/**
 * Removes every container that is not running (Docker's `container prune`), which includes the
 * ones whose imgbuild process was killed. Returns the removed ids.
 */
export async function pruneContainers(root: string, o: LifecycleOptions = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const r of await listContainers(root, o)) {
    // A container waiting to be restarted counts as running (docker's prune spares it too).
    if (r.state.status === 'running' || r.state.restarting) continue;
    // A container being created right now by a live process is not garbage.
    if (r.state.status === 'created' && r.state.monitorPid !== process.pid && (await isSameProcess(r.state.monitorPid, r.state.monitorStartTime))) continue;
    removed.push(await removeContainer(root, r.id, { ...o, force: true }));
  }
  return removed;
}
