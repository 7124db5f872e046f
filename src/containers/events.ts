/**
 * Container events for the store's journal (store/events.ts), with the attributes Docker gives
 * them: the image as the user named it and the container's name, plus what the action adds
 * (`exitCode` for die, `signal` for kill).
 */
import { emitEvents, isoToNano, type EmitEvent } from '../store/events.js';
import type { ContainerRecord } from './record.js';

type Who = Pick<ContainerRecord, 'id' | 'name' | 'imageName'> & { hostConfig?: Pick<ContainerRecord['hostConfig'], 'volumes'> };

/** Docker's `volume mount` (before a container's start) and `volume unmount` (after its die). */
function volumeEvents(rec: Who, action: 'mount' | 'unmount', at?: string): EmitEvent[] {
  const t = isoToNano(at);
  return (rec.hostConfig?.volumes ?? []).map((v) => ({
    type: 'volume' as const,
    action,
    id: v.name,
    attributes:
      action === 'mount'
        ? { container: rec.id, destination: v.destination, driver: 'local', propagation: '', 'read/write': String(!v.readOnly) }
        : { container: rec.id, driver: 'local' },
    ...(t !== undefined ? { timeNano: t } : {}),
  }));
}

export function containerEvent(rec: Who, action: string, attributes: Record<string, string | undefined> = {}, at?: string): EmitEvent {
  const t = isoToNano(at);
  return {
    type: 'container',
    action,
    id: rec.id,
    attributes: { image: rec.imageName, name: rec.name, ...attributes },
    ...(t !== undefined ? { timeNano: t } : {}),
  };
}

/** Records events of one container (never fails: see emitEvents). */
export function emitContainerEvent(root: string, rec: Who, action: string, attributes?: Record<string, string | undefined>, at?: string): Promise<void> {
  return emitEvents(root, [...(action === 'start' ? volumeEvents(rec, 'mount', at) : []), containerEvent(rec, action, attributes, at)]);
}

/** A container's end: `oom` first when the kernel killed it for memory, then `die` with its status. */
export function emitContainerEnd(root: string, rec: Who, status: { exitCode: number; oomKilled?: boolean; finishedAt?: string }): Promise<void> {
  return emitEvents(root, [
    ...(status.oomKilled ? [containerEvent(rec, 'oom', {}, status.finishedAt)] : []),
    containerEvent(rec, 'die', { exitCode: String(status.exitCode) }, status.finishedAt),
    ...volumeEvents(rec, 'unmount', status.finishedAt),
  ]);
}
