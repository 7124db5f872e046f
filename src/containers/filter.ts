/**
 * `ps --filter` as Docker's daemon applies it (moby's `daemon/list.go`): values of one key OR
 * (except `label`, where every value must hold), different keys AND. `name` and `id` are regular
 * expressions matched anywhere (so a prefix or a substring works), `status` implies `--all`,
 * `exited` matches stopped containers that once started, `before`/`since` name a container, and
 * `ancestor` names an image whose containers, and those of images built on it, are shown.
 */
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { matchLabels } from '../image/filters.js';
import { imageId, type LoadedImage } from '../image/model.js';
import type { OciStore } from '../store/store.js';
import { findImage, listImages } from '../store/images.js';
import type { ContainerRecord } from './record.js';

export type Filters = ReadonlyMap<string, readonly string[]>;

/** The keys `ps --filter` accepts (Docker's list). */
export const CONTAINER_FILTER_KEYS = [
  'ancestor', 'before', 'exited', 'expose', 'health', 'id', 'isolation', 'is-task', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume',
] as const;

const STATES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];
const HEALTH = ['starting', 'healthy', 'unhealthy', 'none'];

/** Go's `regexp.MatchString`, near enough: an invalid expression matches nothing. */
function regexMatch(pattern: string, s: string): boolean {
  try {
    return new RegExp(pattern).test(s);
  } catch {
    return false;
  }
}

/** Docker's `Args.Match`: no values pass; otherwise one value equal to, or matching, `s`. */
function matches(values: readonly string[] | undefined, ...sources: string[]): boolean {
  if (!values || values.length === 0) return true;
  return sources.some((s) => values.some((v) => v === s || regexMatch(v, s)));
}

function findContainer(records: readonly ContainerRecord[], value: string): ContainerRecord {
  const v = value.replace(/^\//, '');
  const byId = records.filter((r) => r.id === value || r.id.startsWith(value));
  const hit = byId.length === 1 ? byId[0] : records.find((r) => r.name === v);
  if (!hit) throw new NotFoundError(`No such container: ${value}`);
  return hit;
}

function portSet(key: string, values: readonly string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const v of values ?? []) {
    if (v.includes(':')) throw new InvalidArgumentError(`filter for '${key}' should not contain ':': ${v}`);
    const [range, proto = 'tcp'] = v.split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(range ?? '');
    if (!m) throw new InvalidArgumentError(`error while looking up for ${key} ${v}: invalid port range`);
    for (let p = Number(m[1]); p <= Number(m[2] ?? m[1]); p++) out.add(`${p}/${proto}`);
  }
  return out;
}

/**
 * The image ids `ancestor=` selects: each named image and every image built on it, which is one
 * whose layers start with its layers and whose history continues its history (Docker follows
 * parent links; an OCI image has none, and a LABEL-only build adds history but no layer). An
 * image that is not found selects nothing, as in Docker.
 */
async function ancestorIds(store: OciStore, values: readonly string[]): Promise<Set<string>> {
  const ids = new Set<string>();
  const bases: LoadedImage[] = [];
  for (const v of values) {
    try {
      const img = await findImage(store, v);
      ids.add(imageId(img));
      bases.push(img);
    } catch (e) {
      if ((e as { code?: string }).code !== 'NOT_FOUND') throw e;
    }
  }
  if (bases.length === 0) return ids;
  const prefix = <T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): boolean => a.length <= b.length && a.every((x, i) => same(x, b[i]!));
  const sameHistory = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y);
  for (const li of await listImages(store)) {
    if (!li.image) continue;
    const diffs = li.image.config.rootfs?.diff_ids ?? [];
    const hist = li.image.config.history ?? [];
    const built = bases.some((b) => {
      const bd = b.config.rootfs?.diff_ids ?? [];
      const bh = b.config.history ?? [];
      if (!prefix(bd, diffs, (x, y) => x === y)) return false;
      if (bh.length > 0 || hist.length > 0) return hist.length > bh.length && prefix(bh, hist, sameHistory);
      return diffs.length > bd.length;
    });
    if (built) ids.add(imageId(li.image));
  }
  return ids;
}

export interface ContainerFilterOptions {
  /** `--all`: stopped containers too (a `status` filter implies it). */
  all?: boolean;
  /** The image store, opened only when `ancestor` is used. */
  store?: () => Promise<OciStore>;
  /** `--last N` (`-l`: 1): the N newest containers that pass, stopped ones included, as in docker. */
  limit?: number;
  /** A running container's health (`starting`, `healthy`, `unhealthy`); none without a check. */
  health?: (r: ContainerRecord) => string | undefined;
}

/** The records `ps` shows for these filters, in the order given (newest first). */
export async function filterContainers(records: readonly ContainerRecord[], filters: Filters, o: ContainerFilterOptions = {}): Promise<ContainerRecord[]> {
  const exited = (filters.get('exited') ?? []).map((v) => {
    if (!/^[+-]?\d+$/.test(v)) throw new InvalidArgumentError(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
    return Number(v);
  });
  let all = o.all === true;
  for (const v of filters.get('status') ?? []) {
    if (!STATES.includes(v)) throw new InvalidArgumentError(`Invalid filter 'status=${v}'`);
    all = true;
  }
  for (const v of filters.get('health') ?? []) {
    if (!HEALTH.includes(v)) throw new InvalidArgumentError(`Unrecognised filter value for health: ${v}`);
  }
  const isTask = filters.get('is-task');
  if (isTask && !isTask.every((v) => v === 'true' || v === 'false')) throw new InvalidArgumentError(`Invalid filter 'is-task=${isTask.join(',')}'`);
  const before = filters.get('before')?.map((v) => findContainer(records, v)).pop();
  const since = filters.get('since')?.map((v) => findContainer(records, v)).pop();
  const publish = portSet('publish', filters.get('publish'));
  const expose = portSet('expose', filters.get('expose'));
  const ancestors = filters.has('ancestor') && o.store ? await ancestorIds(await o.store(), filters.get('ancestor')!) : undefined;

  const out: ContainerRecord[] = [];
  let beforeSeen = before === undefined;
  for (const r of records) {
    // Newest first: `before` skips up to and including its container, `since` stops at its own.
    if (!beforeSeen) {
      if (r.id === before!.id) beforeSeen = true;
      continue;
    }
    if (since && r.id === since.id) break;
    // A container waiting to be restarted counts as running, as in docker; its state is `restarting`.
    const restarting = r.state.restarting === true && r.state.status !== 'running';
    const running = r.state.status === 'running' || restarting;
    const state = restarting ? 'restarting' : r.state.status === 'running' && r.state.paused ? 'paused' : r.state.status;
    if (!running && !all && !(o.limit !== undefined && o.limit > 0)) continue;
    if (!matches(filters.get('name'), `/${r.name}`, r.name)) continue;
    if (!matches(filters.get('id'), r.id)) continue;
    if (isTask?.includes('true')) continue;
    if (!matchLabels(filters.get('label'), r.config.Labels)) continue;
    if (exited.length > 0 && !(exited.includes(r.state.exitCode ?? -1) && !running && r.state.startedAt !== undefined)) continue;
    if (filters.has('status') && !filters.get('status')!.includes(state)) continue;
    if (filters.has('health') && !filters.get('health')!.includes(o.health?.(r) ?? 'none')) continue;
    if (filters.has('volume')) {
      const mounts = [...(r.hostConfig.volumes ?? []).map((v) => ({ name: v.name, destination: v.destination })), ...(r.hostConfig.binds ?? []).map((b) => ({ name: b.source, destination: b.destination }))];
      if (!filters.get('volume')!.some((v) => mounts.some((m) => m.destination === v || m.name === v))) continue;
    }
    if (ancestors && !ancestors.has(r.imageId)) continue;
    if (filters.has('network')) {
      const mode = r.hostConfig.networkMode;
      const name = mode === 'none' || mode === 'host' ? mode : 'bridge';
      if (!filters.get('network')!.includes(name)) continue;
    }
    if (publish.size > 0 || expose.size > 0) {
      // Where ports listen (random ones resolved) while it runs, else the host ports asked for.
      const published = r.state.status === 'running' && r.state.ports ? r.state.ports : (r.hostConfig.portBindings ?? []);
      const exposed = [...Object.keys(r.config?.ExposedPorts ?? {}), ...(r.hostConfig.portBindings ?? []).map((p) => `${p.containerPort}/${p.protocol}`)];
      if (!published.some((p) => publish.has(`${p.hostPort}/${p.protocol}`)) && !exposed.some((k) => expose.has(k))) continue;
    }
    out.push(r);
    if (o.limit !== undefined && o.limit > 0 && out.length >= o.limit) break;
  }
  return out;
}
