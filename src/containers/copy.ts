/**
 * `cp` with a container: the container's filesystem is reached (root-access.ts: its own mounts,
 * frozen, when running; a temporary mount when not) and the copy made there by Docker's rules
 * (snapshots/copy.ts). A stopped container's volumes are not mounted: copying into or out of one
 * is refused, and so is writing to a read-only rootfs outside a volume.
 */
import type { Readable, Writable } from 'node:stream';
import { copyIntoRoot, copyOutOfRoot, hostSource, type CopyOptions, type CopyRoot } from '../snapshots/copy.js';
import { ContainerStateError } from './errors.js';
import type { ContainerRecord } from './record.js';
import { inVolume, withContainerRoot, type ContainerRoot } from './root-access.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

export type ContainerCopyOptions = CopyOptions & LifecycleOptions;

function copyRoot(rec: ContainerRecord, r: ContainerRoot): CopyRoot {
  return {
    path: r.path,
    label: rec.name,
    exclude: r.pseudo,
    ...(rec.hostConfig.idMapping ? { ids: rec.hostConfig.idMapping } : {}),
    check: (rel, writing) => {
      const v = inVolume(rec, rel);
      if (v && !r.running) throw new ContainerStateError(rec.id, `/${rel} is in ${v}, a volume of the stopped container ${rec.name}: start the container to copy there`);
      if (writing && !v && rec.hostConfig.readOnly) throw new ContainerStateError(rec.id, `container ${rec.name} rootfs is marked read-only`);
    },
  };
}

function mapWriteError(rec: ContainerRecord, e: unknown): unknown {
  const code = (e as { cause?: NodeJS.ErrnoException }).cause?.code ?? (e as NodeJS.ErrnoException).code;
  if (code === 'EROFS') return new ContainerStateError(rec.id, `container ${rec.name}: the destination is on a read-only filesystem`);
  return e;
}

/** `cp CTR:SRC DEST|-` */
export async function copyFromContainer(root: string, nameOrId: string, src: string, dest: string | Writable, o: ContainerCopyOptions = {}): Promise<void> {
  const rec = await getContainer(root, nameOrId, o);
  await withContainerRoot(root, rec, o, (r) => copyOutOfRoot(copyRoot(rec, r), src, dest, o));
}

/** `cp SRC|- CTR:DEST` */
export async function copyToContainer(root: string, nameOrId: string, src: string | Readable, dest: string, o: ContainerCopyOptions = {}): Promise<void> {
  const rec = await getContainer(root, nameOrId, o);
  const from = typeof src === 'string' ? await hostSource(src, o) : src;
  try {
    await withContainerRoot(root, rec, o, (r) => copyIntoRoot(copyRoot(rec, r), from, dest, o));
  } catch (e) {
    throw mapWriteError(rec, e);
  }
}
