/**
 * A start by the container's user (`start`, `restart`): detached, on the same writable layer, with
 * the keeper its restart policy or health check needs (keeper.ts) when none is running.
 */
import type { OciStore } from '../store/store.js';
import { emitContainerEvent } from './events.js';
import type { ContainerRecord } from './record.js';
import { ensureKeeper } from './keeper.js';
import { startContainer } from './start.js';
import { stopContainer } from './stop.js';
import type { LifecycleOptions } from './types.js';

export async function startKept(store: OciStore, nameOrId: string, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const rec = await startContainer(store, nameOrId, o);
  await ensureKeeper(store.root, rec, { cgroupRoot: o.cgroupRoot, networkStateDir: o.networkStateDir, claimsDir: o.claimsDir });
  return rec;
}

/** `restart`: stop (as `stop` does) a running container, then start it again as `start` does. */
export async function restartContainer(store: OciStore, nameOrId: string, o: LifecycleOptions & { timeoutSec?: number } = {}): Promise<ContainerRecord> {
  const stopped = await stopContainer(store.root, nameOrId, o);
  const rec = await startKept(store, stopped.id, o);
  await emitContainerEvent(store.root, rec, 'restart');
  return rec;
}
