/**
 * Removing containers. Nothing is mounted on the host for a container (the sandbox mounts in its
 * own mount namespace; a `--runtime runc` run's rootfs mount is undone with its runc state), so
 * removal is: kill what is left, tear down network and cgroup, remove the snapshot and the
 * directory, then the claim on the id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { containerSnapshotter, driverOf, existingContainerSnapshotters, type ContainerDriver } from './snapshotter.js';
import { unmount } from '../snapshots/mount.js';
import { unclaimId } from './claims.js';
import { releaseContainerIds } from './userns.js';
import { BrokenContainerError, ContainerStateError } from './errors.js';
import { needsKeeper, stopKeeper } from './keeper.js';
import { isSameProcess } from './proc.js';
import { containerDir, deleteContainerDir, resolveContainer, snapshotKey, type ContainerRecord } from './record.js';
import { groupPids, releaseKernelById, releaseResources } from './resources.js';
import { cleanupRuncBundle, hasRuncLeftovers } from './runc.js';
import { refreshState } from './state.js';
import { detachVolumes, volumesOf } from './volumes.js';
import type { LifecycleOptions } from './types.js';
import { emitContainerEvent } from './events.js';

/**
 * Removes a container: kills what is left (force), tears down network and cgroup, removes the
 * snapshot and the directory, then its claim. Nothing is mounted on the host for a container (the
 * sandbox mounts in its own mount namespace), so there is nothing to unmount here. Each step can
 * be repeated, so a removal cut short is finished by the next `rm` (or prune, once the directory
 * was renamed away). A container with an unreadable record is removed by id all the same.
 */
export async function removeContainer(
  root: string,
  nameOrId: string,
  o: LifecycleOptions & { force?: boolean; /** `rm -v`, `run --rm`: its anonymous volumes go too. */ removeVolumes?: boolean } = {},
): Promise<string> {
  let found: ContainerRecord;
  try {
    found = await resolveContainer(root, nameOrId);
  } catch (e) {
    if (e instanceof BrokenContainerError) return removeBroken(root, e, o);
    throw e;
  }
  let rec = await refreshState(root, found, o);
  if (rec.state.status === 'running' && !o.force) {
    throw new ContainerStateError(rec.id, `container ${rec.name} is running: stop it first or use rm -f`);
  }
  if (rec.state.restarting && !o.force) {
    throw new ContainerStateError(rec.id, `you cannot remove a restarting container ${rec.name}: stop it first or use rm -f`);
  }
  // Its keeper goes first, so that it cannot start the container again once its kernel objects
  // are released; the record is read again, for what the keeper did meanwhile.
  if (rec.state.keeperPid !== undefined || needsKeeper(rec)) {
    await stopKeeper(rec.id, rec.state);
    const again = await resolveContainer(root, rec.id).catch(() => undefined);
    if (again) rec = await refreshState(root, again, o);
  }
  // The writable snapshot is only mounted inside the container's own mount namespace, so it can
  // go at the same time as the kernel objects.
  // A `--runtime runc` run that was killed midway leaves runc state and a host mount of the rootfs.
  if (hasRuncLeftovers(root, rec.id)) await cleanupRuncBundle(root, rec.id);
  const releasing = releaseResources(rec, o);
  const removeSnapshot = (async () => {
    if (rec.state.status === 'running') await releasing; // never pull a layer from under live processes
    await removeSnapshotOf(root, rec.id, o, rec.snapshotKey, driverOf(rec));
  })();
  await Promise.all([releasing, removeSnapshot]);
  // The watcher (monitor or a foreground run) goes once the container has; give it a moment.
  for (let i = 0; i < 100 && rec.state.monitorPid !== process.pid && (await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime)); i++) {
    await sleep(20);
  }
  await deleteContainerDir(root, rec.id);
  // Its files are gone with its snapshot: its id range may serve another container.
  if (rec.hostConfig.idMapping) await releaseContainerIds(root, rec.id);
  // Once the container is gone (a removal cut short before this leaves user files of a container
  // that no longer exists, which count for nothing).
  await detachVolumes(root, rec.id, volumesOf(rec), { removeAnonymous: o.removeVolumes ?? false });
  await unclaimId(rec.id, o.claimsDir);
  await emitContainerEvent(root, rec, 'destroy');
  return rec.id;
}

/** Removes the container's snapshot from its driver, or from every driver when its record is unreadable. */
async function removeSnapshotOf(root: string, id: string, o: LifecycleOptions, key = snapshotKey(id), driver?: ContainerDriver): Promise<void> {
  const sns = driver ? [await containerSnapshotter(root, driver, o)] : await existingContainerSnapshotters(root, o);
  for (const sn of sns) {
    await sn.remove(key).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'NOT_FOUND') throw e;
    });
  }
}

/** rm of a container whose record cannot be read: by id, with -f when anything still runs in it. */
async function removeBroken(root: string, err: BrokenContainerError, o: LifecycleOptions & { force?: boolean }): Promise<string> {
  const { id } = err;
  if (!o.force) {
    const busy = err.process && (await isSameProcess(err.process.pid, err.process.startTime));
    const pids = await groupPids(id, o);
    if (busy || pids.length > 0) throw new ContainerStateError(id, `container ${id.slice(0, 12)} (unreadable record) may still be running: use rm -f`);
  }
  await releaseById(root, id, o);
  await deleteContainerDir(root, id);
  await releaseContainerIds(root, id);
  await unclaimId(id, o.claimsDir);
  return id;
}

/**
 * Removes every kernel object, runtime leftover and the snapshot that container `id` may have,
 * knowing nothing but the id (a record that was never completed or cannot be read). Idempotent.
 */
export async function releaseById(root: string, id: string, o: LifecycleOptions, dir = containerDir(root, id)): Promise<void> {
  if (hasRuncLeftovers(root, id, dir)) await cleanupRuncBundle(root, id).catch(() => {});
  await stopKeeper(id);
  await unmount(dir); // nothing is ever mounted in a container dir but the runc rootfs, handled above
  await releaseKernelById(id, o);
  await removeSnapshotOf(root, id, o);
}
