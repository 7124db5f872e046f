/**
 * `container prune`: removes every container that is not running (created ones only once their
 * creator is gone), with Docker's `until=` and `label=` / `label!=` filters, and counts the space
 * their writable layers held.
 */
import { InvalidArgumentError } from '../errors.js';
import { containerSnapshotter, driverOf } from './snapshotter.js';
import { listContainers } from './list.js';
import { isSameProcess } from './proc.js';
import type { ContainerRecord } from './record.js';
import { removeContainer } from './remove.js';
import type { LifecycleOptions } from './types.js';

export interface PruneResult {
  removed: string[];
  /** Bytes the removed containers' writable layers held. */
  bytes: number;
}

const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Docker's `until=` value as a time in ms: a Go duration before now (`10m`, `1h30m`), Unix
 * seconds (`1700000000`, with a fraction), or a date (RFC 3339, `2006-01-02`).
 */
export function parseUntil(v: string, now = Date.now()): number {
  if (GO_DURATION.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    return now - ms;
  }
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`invalid filter 'until=${v}': give a duration (10m), Unix seconds or a date`);
  return t;
}

/** The test of Docker's prune filters (`until=`, `label=k[=v]`, `label!=k[=v]`), all of which must hold. */
export function pruneFilter(filters: readonly string[], now = Date.now()): (r: ContainerRecord) => boolean {
  const tests: ((r: ContainerRecord) => boolean)[] = [];
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (key === 'until') {
      const t = parseUntil(value, now);
      tests.push((r) => Date.parse(r.created) < t);
    } else if (key === 'label' || key === 'label!') {
      const i = value.indexOf('=');
      const [k, want] = i < 0 ? [value, undefined] : [value.slice(0, i), value.slice(i + 1)];
      const has = (r: ContainerRecord): boolean => {
        const labels = r.config.Labels ?? {};
        return Object.hasOwn(labels, k) && (want === undefined || labels[k] === want);
      };
      tests.push(key === 'label' ? has : (r) => !has(r));
    } else {
      throw new InvalidArgumentError(`invalid filter '${key}': container prune takes until= and label=`);
    }
  }
  return (r) => tests.every((t) => t(r));
}

export async function pruneStoppedContainers(root: string, o: LifecycleOptions & { filters?: readonly string[] } = {}): Promise<PruneResult> {
  const keep = pruneFilter(o.filters ?? []);
  const out: PruneResult = { removed: [], bytes: 0 };
  for (const r of await listContainers(root, o)) {
    // Waiting for its keeper's restart counts as running, as in docker.
    if (r.state.status === 'running' || r.state.restarting || !keep(r)) continue;
    // A container being created (or started) right now by a live process is not garbage.
    if (r.state.status === 'created' && r.state.monitorPid !== process.pid && (await isSameProcess(r.state.monitorPid, r.state.monitorStartTime))) continue;
    const sn = await containerSnapshotter(root, driverOf(r), o);
    const size = (await sn.usage(r.snapshotKey).catch(() => ({ size: 0 }))).size;
    out.removed.push(await removeContainer(root, r.id, { ...o, snapshotter: sn, force: true }));
    out.bytes += size;
  }
  return out;
}
