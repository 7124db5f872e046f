/**
 * A container's volumes: which mounts of `-v`/`--mount` and of the image's VOLUMEs are volumes,
 * getting them from the volume store (made on first use, the container named as their user under
 * the store's lock), Docker's copy-up into new empty ones, and letting them go when the
 * container is removed (its anonymous ones with it for `rm -v` and `run --rm`). Nothing here
 * runs for a container without volumes.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mount } from '../sandbox/spec.js';
import { releaseVolumes, useVolumes, volumeUsage, type VolumeRequest, type VolumeUsage } from '../volumes/store.js';
import { volumeMountOf, type VolumeMount } from '../volumes/local-driver.js';
import { copyUp } from './copy-up.js';
import { shiftOwners, type IdRangeMapping } from './userns.js';
import { cleanPath, type MountRequest } from './mounts.js';
import { isSameProcess } from './proc.js';
import { scanContainerDirs, type ContainerRecord, type VolumeSpec } from './record.js';

/** The ids of the containers that exist (complete, or being made by a live process). */
export async function liveContainerIds(root: string): Promise<Set<string>> {
  const d = await scanContainerDirs(root);
  const live = new Set(d.ids);
  for (const c of d.creating) if (await isSameProcess(c.pid, c.startTime)) live.add(c.id);
  return live;
}

/** The image's VOLUMEs no mount covers: each becomes an anonymous volume (Docker's rule). */
export function imageVolumeRequests(imageVolumes: Record<string, unknown> | undefined, taken: readonly string[]): MountRequest[] {
  const covered = new Set(taken.map((t) => cleanPath(t)));
  const out: MountRequest[] = [];
  for (const v of Object.keys(imageVolumes ?? {})) {
    const d = cleanPath(v.startsWith('/') ? v : `/${v}`);
    if (d === '/' || covered.has(d)) continue;
    covered.add(d);
    out.push({ type: 'volume', source: '', destination: d, readOnly: false, mode: '' });
  }
  return out;
}

/** A volume mounted in a container: what its record keeps and what its spec mounts. */
export interface AttachedVolume {
  spec: VolumeSpec;
  mount: VolumeMount;
}

/**
 * Gets the requested volumes for container `id` (its directory `dir` exists, so `volume rm`
 * sees it as a user from here on) and copies the image's content into the empty ones.
 */
export async function attachVolumes(
  root: string,
  id: string,
  dir: string,
  requests: readonly MountRequest[],
  rootfs: Mount[],
  o: { signal?: AbortSignal; idMapping?: IdRangeMapping } = {},
): Promise<AttachedVolume[]> {
  if (requests.length === 0) return [];
  const asked: VolumeRequest[] = requests.map((r) => ({
    ...(r.source !== '' ? { name: r.source } : {}),
    ...(r.volumeOptions || r.volumeLabels || r.volumeDriver !== undefined
      ? { create: { options: r.volumeOptions ?? {}, labels: r.volumeLabels ?? {}, ...(r.volumeDriver !== undefined ? { driver: r.volumeDriver } : {}) } }
      : {}),
  }));
  const got = await useVolumes(root, id, asked, o);
  const attached = got.map(({ volume }, i): AttachedVolume => {
    const r = requests[i]!;
    return {
      spec: { name: volume.Name, source: volume.Mountpoint, destination: r.destination, readOnly: r.readOnly, mode: r.mode, anonymous: r.source === '', ...(r.noCopy ? { noCopy: true } : {}) },
      mount: volumeMountOf(volume.Mountpoint, volume.Options),
    };
  });
  try {
    for (const [i, a] of attached.entries()) {
      if ((a.spec.noCopy && !o.idMapping) || a.mount.type !== 'bind' || a.mount.source !== a.spec.source) continue;
      if ((await readdir(a.spec.source)).length > 0) continue;
      if (!a.spec.noCopy) await copyUp(rootfs, a.spec.destination, a.spec.source, join(dir, `copy-up-${i}`), o);
      // A new volume of a container with its own user namespace is handed to its range, copy
      // and all, as podman does (its root would otherwise find the volume not its own).
      if (o.idMapping) await shiftOwners(a.spec.source, o.idMapping, 'up', o);
    }
  } catch (e) {
    await detachVolumes(root, id, attached.map((a) => a.spec), { removeAnonymous: true }).catch(() => {});
    throw e;
  }
  return attached;
}

/** Container `id` stops using its volumes; with `removeAnonymous` its anonymous ones go too. */
export async function detachVolumes(root: string, id: string, volumes: readonly VolumeSpec[], o: { removeAnonymous?: boolean; signal?: AbortSignal } = {}): Promise<string[]> {
  if (volumes.length === 0) return [];
  const names = [...new Set(volumes.map((v) => v.name))];
  const anonymous = new Set(volumes.filter((v) => v.anonymous).map((v) => v.name));
  // Named volumes are never removed with a container, whatever their labels say.
  const kept = names.filter((n) => !anonymous.has(n));
  await releaseVolumes(root, id, kept, { live: () => liveContainerIds(root), ...(o.signal ? { signal: o.signal } : {}) });
  return releaseVolumes(root, id, [...anonymous], { removeAnonymous: o.removeAnonymous ?? false, live: () => liveContainerIds(root), ...(o.signal ? { signal: o.signal } : {}) });
}

/** The volumes of a container's record. */
export function volumesOf(rec: ContainerRecord): VolumeSpec[] {
  return rec.hostConfig.volumes ?? [];
}

/**
 * Every volume with its size (bytes under `_data`, hard links once; skipped with `withSize:
 * false`) and the containers that use it: what `system df` and `system prune` need.
 */
export function listVolumeUsage(root: string, o: { withSize?: boolean } = {}): Promise<VolumeUsage[]> {
  return volumeUsage(root, { live: () => liveContainerIds(root), ...(o.withSize === false ? { withSize: false } : {}) });
}
