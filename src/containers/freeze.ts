/**
 * Freezing a running container (commit reads its upper dir at one moment), recorded so that a
 * freeze whose holder was killed is undone by the next reader.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSameProcess, procStartTime } from './proc.js';
import { containerDir, type ContainerRecord } from './record.js';
import { cgroupOf } from './resources.js';
import type { LifecycleOptions } from './types.js';

/** `<dir>/frozen-by`: `<pid> <start time>` of a process holding the container frozen (commit). */
function freezeMarker(root: string, id: string): string {
  return join(containerDir(root, id), 'frozen-by');
}

/**
 * Runs `fn` with the container's processes frozen (when it has a freezer), naming us as the
 * holder first, so that a reader finding the group frozen after we were killed knows to thaw it.
 */
export async function withFrozen<T>(root: string, rec: ContainerRecord, o: LifecycleOptions, fn: () => Promise<T>): Promise<T> {
  const cg = await cgroupOf(rec, o);
  await writeFile(freezeMarker(root, rec.id), `${process.pid} ${(await procStartTime(process.pid)) ?? '0'}\n`);
  let frozen = false;
  try {
    frozen = await cg.freeze(true).catch(() => false);
    return await fn();
  } finally {
    // A paused container stays frozen (`unpause` thaws it).
    if (frozen && !rec.state.paused) await cg.freeze(false).catch(() => {});
    await rm(freezeMarker(root, rec.id), { force: true });
  }
}

/** Thaws a running container left frozen by a process that is gone (a commit, a kill loop). */
export async function thawIfAbandoned(root: string, rec: ContainerRecord, o: LifecycleOptions): Promise<void> {
  const holder = await readFile(freezeMarker(root, rec.id), 'utf8').catch(() => undefined);
  const [pid, start] = (holder ?? '').trim().split(' ');
  if (holder !== undefined && (await isSameProcess(Number(pid), start))) return;
  // Read through the recorded paths: the common case (nothing frozen) costs one read.
  const v1 = rec.cgroup?.version === 1 ? rec.cgroup.paths.find((p) => p.includes('/freezer/')) : undefined;
  const probe = v1 ? join(v1, 'freezer.state') : rec.cgroup?.version === 2 ? join(rec.cgroup.paths[0] ?? '', 'cgroup.events') : undefined;
  const text = probe ? await readFile(probe, 'utf8').catch(() => '') : '';
  const frozen = v1 ? text.trim() === 'FROZEN' : /^frozen 1$/m.test(text);
  // Frozen by `pause`: that freeze is meant to last.
  if (frozen && rec.state.paused) {
    if (holder !== undefined) await rm(freezeMarker(root, rec.id), { force: true });
    return;
  }
  if (frozen || (!probe && holder !== undefined)) await (await cgroupOf(rec, o)).freeze(false).catch(() => {});
  if (holder !== undefined) await rm(freezeMarker(root, rec.id), { force: true });
}
