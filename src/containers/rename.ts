/** `rename`: a container's name changed, unique per root as at creation (under the containers lock). */
import { ContainerStateError, NameInUseError } from './errors.js';
import { emitContainerEvent } from './events.js';
import { validateName } from './ids.js';
import { listRecords, reservedNames, updateRecord, withContainersLock, type ContainerRecord } from './record.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

export async function renameContainer(root: string, nameOrId: string, newName: string, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const name = validateName(newName.startsWith('/') ? newName.slice(1) : newName);
  const cur = await getContainer(root, nameOrId, o);
  if (cur.name === name) throw new ContainerStateError(cur.id, `renaming a container with the same name as its current name`);
  return withContainersLock(root, async () => {
    const [all, reserved] = await Promise.all([listRecords(root), reservedNames(root)]);
    const owner = all.find((r) => r.name === name)?.id ?? reserved.get(name);
    if (owner !== undefined) throw new NameInUseError(name, owner);
    const rec = await updateRecord(root, cur.id, (r) => {
      r.name = name;
    });
    if (!rec) throw new ContainerStateError(cur.id, `container ${cur.name} was removed meanwhile`);
    await emitContainerEvent(root, rec, 'rename', { oldName: `/${cur.name}` });
    return rec;
  });
}
