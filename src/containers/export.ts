/**
 * `export`: the container's filesystem as `docker export` writes it (snapshots/export.ts): the
 * image's layers, the init layer's placeholders and the container's changes, without volumes. A
 * running container is frozen meanwhile, so the tar is one moment's state.
 */
import type { Writable } from 'node:stream';
import { exportRootfs } from '../snapshots/export.js';
import { withFrozen } from './freeze.js';
import { whileStopped } from './root-access.js';
import { readSpec } from './record.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

export async function exportContainer(root: string, nameOrId: string, out: string | Writable, o: LifecycleOptions = {}): Promise<void> {
  const rec = await getContainer(root, nameOrId, o);
  const { rootfs } = await readSpec(root, rec.id);
  const ids = rec.hostConfig.idMapping;
  const write = (): Promise<void> => exportRootfs(rootfs, out, { ...(ids ? { fromHostIds: ids } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  await (rec.state.status === 'running' ? withFrozen(root, rec, o, write) : whileStopped(root, rec, write));
}
