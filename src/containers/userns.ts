/**
 * A container's own user namespace (`--userns=auto`, as root): a range of host ids of its own
 * (host/id-ranges.ts), held from create to rm; its rootfs's image layers are idmapped mounts
 * (the image's root is the container's root), while its upper dir, the files it writes, belongs
 * on the host to the range's ids; a new volume is handed over to the range the same way, as
 * podman does. Binds are left as they are on the host.
 */
import { ImgbuildError } from '../errors.js';
import {
  allocateIdRange,
  containerOwner,
  ownersAlive,
  releaseIdRange,
  shiftOwners,
  sweepIdRanges,
  type IdRangeMapping,
  type SubidFiles,
  type UsernsMode,
} from '../host/id-ranges.js';
import { rootlessIds } from '../host/userns.js';
import type { IdMap } from '../sandbox/spec.js';
import { containersDir, usernsDir } from '../store/paths.js';

export type { IdRangeMapping };
export { shiftOwners };

/** Refuses `--userns=auto` where it cannot work, before anything is made. */
export function checkUsernsMode(mode: UsernsMode, o: { runtime?: string } = {}): void {
  if (mode.kind !== 'auto') return;
  if (rootlessIds()) {
    throw new ImgbuildError('NOT_IMPLEMENTED', '--userns=auto needs root: a rootless container already runs in its user\'s namespace, with the user\'s subordinate ids');
  }
  if (o.runtime === 'runc') throw new ImgbuildError('NOT_IMPLEMENTED', '--userns=auto is not available with --runtime runc');
}

/** Gives container `id` a range of its own (its directory, or the one being made, must exist). */
export function allocateContainerIds(root: string, id: string, size: number, o: { files?: SubidFiles; signal?: AbortSignal } = {}): Promise<IdRangeMapping> {
  return allocateIdRange(usernsDir(root), containerOwner(id), size, { isLive: ownersAlive(containersDir(root)), ...o });
}

/** Gives container `id`'s range back (nothing when it had none). */
export function releaseContainerIds(root: string, id: string): Promise<void> {
  return releaseIdRange(usernsDir(root), containerOwner(id));
}

/** Gives back the ranges of containers and builds that are gone (prune). */
export function sweepContainerIds(root: string): Promise<string[]> {
  return sweepIdRanges(usernsDir(root), ownersAlive(containersDir(root)));
}

/** The sandbox's id mappings of a range. */
export function idMapsOf(m: IdRangeMapping): { uidMappings: IdMap[]; gidMappings: IdMap[] } {
  return { uidMappings: [{ containerID: 0, hostID: m.uid, size: m.size }], gidMappings: [{ containerID: 0, hostID: m.gid, size: m.size }] };
}
