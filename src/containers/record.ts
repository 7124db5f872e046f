/**
 * Container records: `<root>/containers/<id>/` holds
 *   config.json  the runtime-spec bundle config (toOciConfig of the sandbox spec; `runc run` can use it)
 *   spec.json    the sandbox spec as created (netnsPath and cgroupPaths are added at start)
 *   state.json   this record (image, snapshot, network, cgroup, lifecycle state)
 *   status.json  the exit status, written once by whoever waited for the process (monitor or `run`)
 *   hosts, hostname, resolv.conf   bind-mounted into the container
 *   log          stdout+stderr of detached containers
 *   health.json  the HEALTHCHECK state, written by the container's keeper (health.ts)
 * A container directory appears complete or not at all: it is filled in as
 * `.creating-<id>-<pid>-<start>` (named for its creator, so one left by a killed process is known
 * as such) and renamed into place; removal renames it to `.removing-<id>` before deleting it.
 * state.json is only rewritten atomically under the container's lock, and validated when read;
 * names are unique per root, checked under the root-wide containers lock at creation.
 */
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { containersDir } from '../store/paths.js';
import { withLock } from '../atomic.js';
import type { ContainerConfig } from '../image/types.js';
import type { NetworkMode, NetworkState } from '../host/network.js';
import type { CgroupVersion } from '../host/cgroups.js';
import type { ContainerIsolationRecord } from './isolation.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import { AmbiguousContainerError, BrokenContainerError, ContainerNotFoundError } from './errors.js';
import { isSameProcess, procStartTime } from './proc.js';
import type { RestartPolicy } from './restart-policy.js';

export type ContainerStatus = 'created' | 'running' | 'exited' | 'dead';

/** A `-p` binding as asked for: hostIp '' is every address, hostPort 0 a free port. */
export interface PortBinding {
  hostIp: string;
  hostPort: number;
  /** With a host port range for one container port: the free port is looked for up to here. */
  hostPortEnd?: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** Where a port is published while the container runs (one per listening address). */
export interface PublishedPort {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface BindSpec {
  source: string;
  destination: string;
  readOnly: boolean;
  /** rprivate unless `bind-propagation=` or a `-v` mode said otherwise (records before it: rprivate). */
  propagation?: string;
  /** The `-v` mode as given (Docker's Mode in inspect). */
  mode?: string;
  /** `-v src:dst:idmap` (podman's): an idmapped bind, for a container with --userns=auto. */
  idmap?: boolean;
}

/** A volume mounted in the container (volumes/store.ts): named, or anonymous (made for it). */
export interface VolumeSpec {
  name: string;
  /** The volume's `_data` dir (its Mountpoint). */
  source: string;
  destination: string;
  readOnly: boolean;
  /** The `-v` mode as given ('' for `--mount` and image VOLUMEs). */
  mode: string;
  anonymous: boolean;
  noCopy?: boolean;
}

/** `--network`: a mode, or `container:<id>` (that container's network namespace). */
export type ContainerNetworkMode = Exclude<NetworkMode, 'container'> | `container:${string}`;

export interface HostConfig {
  autoRemove: boolean;
  networkMode: ContainerNetworkMode;
  /** `--network` as given (Docker shows `default` when it was not). */
  networkName?: string;
  portBindings: PortBinding[];
  /** `-P`. */
  publishAll?: boolean;
  /** `--dns`, `--dns-search`, `--dns-option`, `--add-host` as given. */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  extraHosts?: string[];
  /** `--pid` and `--ipc`: '' (private) or `host`. */
  pidMode?: string;
  ipcMode?: string;
  /** `--mac-address`. */
  macAddress?: string;
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  /** `--cpu-shares`: relative CPU weight (absent: the default, 1024). */
  cpuShares?: number;
  /** Memory plus swap (`--memory-swap`; -1: unlimited swap). */
  memorySwap?: number;
  binds: BindSpec[];
  tmpfs: { destination: string; options: string[] }[];
  /** Volumes (absent in records without any). */
  volumes?: VolumeSpec[];
  /** `--mount`s as Docker's HostConfig.Mounts shows them (absent without any). */
  mounts?: Record<string, unknown>[];
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  /** `--security-opt` as given. */
  securityOpt?: string[];
  privileged?: boolean;
  /** `--device` as given. */
  devices?: string[];
  deviceCgroupRules?: string[];
  /** Device cgroup rules the container's group gets (absent: no devices group, the nodev /dev is the policy). */
  deviceRules?: string[];
  groupAdd?: string[];
  shmSize?: number;
  init: boolean;
  tty: boolean;
  interactive: boolean;
  /** `--restart` (absent: no). */
  restartPolicy?: RestartPolicy;
  /** `--userns=auto`: the host ids of the container's 0 and how many follow (containers/userns.ts). */
  idMapping?: { uid: number; gid: number; size: number };
}

export interface ContainerState {
  status: ContainerStatus;
  /** Host pid of the container's pid 1 while running. */
  pid?: number;
  /** Start time of that pid (field 22 of /proc/<pid>/stat) to tell it from a recycled pid. */
  pidStartTime?: string;
  /** The process waiting for the container: the monitor (detached) or the `run` process. */
  monitorPid?: number;
  monitorStartTime?: string;
  /** Userland port proxy serving the published ports. */
  proxyPid?: number;
  /** The addresses and ports the proxy listens on (random ports resolved). */
  ports?: PublishedPort[];
  proxyStartTime?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: string;
  oomKilled?: boolean;
  error?: string;
  /** Restarts made by the restart policy since the user last started it. */
  restartCount?: number;
  /** Exited, and its keeper is waiting out the delay before restarting it (docker's `restarting`). */
  restarting?: boolean;
  /** The delay waited before the last restart (the next one doubles it). */
  restartDelayMs?: number;
  /** Stopped or killed by its user: no restart policy applies until it is started again. */
  manuallyStopped?: boolean;
  /** The keeper (keeper-main.ts) carrying out the restart policy and HEALTHCHECK, while there is one. */
  keeperPid?: number;
  keeperStartTime?: string;
  /** Frozen by `pause` (the cgroup freezer) until `unpause`. */
  paused?: boolean;
}

export interface ContainerRecord {
  id: string;
  name: string;
  /** Manifest digest of the image (what `rmi`/`prune` look for). */
  image: string;
  /** The image as the user named it. */
  imageName: string;
  /** Config digest (the image id). */
  imageId: string;
  /** Top chain id of the image's layers (the snapshot parent); absent for an image without layers. */
  parentChainId?: string;
  snapshotKey: string;
  created: string;
  /** The effective container config (image config with the run's changes), the base for commit. */
  config: ContainerConfig & { Hostname: string; Domainname?: string; StopTimeout?: number };
  /** argv of the process: path + args. */
  path: string;
  args: string[];
  hostConfig: HostConfig;
  network?: NetworkState;
  cgroup?: { version: CgroupVersion; paths: string[] };
  /** How it is isolated (isolation.ts); absent in records made before it was recorded. */
  isolation?: ContainerIsolationRecord;
  state: ContainerState;
}

export interface ExitStatus {
  exitCode: number;
  signal?: string;
  oomKilled?: boolean;
  finishedAt: string;
}

export { containersDir };

export function containerDir(root: string, id: string): string {
  return join(containersDir(root), id);
}

/** The empty directory config.json's `root.path` names (the overlay is mounted on it by the runtime). */
export const BUNDLE_ROOTFS = 'rootfs';

export const files = {
  state: 'state.json',
  status: 'status.json',
  config: 'config.json',
  spec: 'spec.json',
  log: 'log',
  /** A FIFO into a detached `-i` container's stdin (made by its monitor at each start; attach writes it). */
  stdin: 'stdin',
  hosts: 'hosts',
  hostname: 'hostname',
  resolv: 'resolv.conf',
  health: 'health.json',
} as const;

export function pathOf(root: string, id: string, f: keyof typeof files): string {
  return join(containerDir(root, id), files[f]);
}

/** The container's sandbox spec as created. */
export async function readSpec(root: string, id: string): Promise<SandboxSpec> {
  return JSON.parse(await readFile(pathOf(root, id, 'spec'), 'utf8')) as SandboxSpec;
}

/** The key of container `id`'s writable snapshot. */
export function snapshotKey(id: string): string {
  return `ctr-${id}`;
}

/** Serialises creations (name uniqueness) across processes. */
export function withContainersLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  return withLock(join(containersDir(root), '.containers'), fn);
}

/** Serialises read-modify-write of one container's state. */
export function withContainerLock<T>(root: string, id: string, fn: () => Promise<T>): Promise<T> {
  return withLock(join(containersDir(root), `.${id}`), fn);
}

/**
 * Replaces a file atomically (temp file + rename) without fsync: a reader never sees a torn
 * state.json, and after a crash a stale one is harmless because every reader reconciles the
 * record with the kernel (refreshState). Skipping the two fsyncs per update keeps `run` fast.
 */
async function replaceFile(path: string, data: string): Promise<void> {
  // (Named as sweepTempFiles recognises, so that prune removes one a killed writer left.)
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes state.json into the container's existing directory (never recreating a removed one). */
export async function writeRecord(root: string, rec: ContainerRecord, dir = containerDir(root, rec.id)): Promise<void> {
  await replaceFile(join(dir, files.state), `${JSON.stringify(rec, null, 2)}\n`);
}

// ---- validation ------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
/** Absent (JSON drops undefined; null is taken as absent too) or of the given type. */
const opt = (v: unknown, type: 'number' | 'string' | 'boolean'): boolean => v === undefined || v === null || typeof v === type;
const STATUSES = ['created', 'running', 'exited', 'dead'];
const NETWORK_MODES = ['none', 'host', 'bridge', 'slirp4netns', 'pasta'];
const NETWORK_STATE_MODES = [...NETWORK_MODES, 'container'];

/** What keeps `v` from being a complete record of container `id`, or undefined when nothing does. */
export function recordProblem(v: unknown, id: string): string | undefined {
  if (!isObj(v)) return 'not a JSON object';
  if (v.id !== id) return `it names another id (${JSON.stringify(v.id)})`;
  for (const k of ['name', 'image', 'imageName', 'imageId', 'snapshotKey', 'created', 'path']) {
    if (typeof v[k] !== 'string') return `${k} is missing`;
  }
  if (!isStrings(v.args)) return 'args is missing';
  if (!isObj(v.config)) return 'config is missing';
  const h = v.hostConfig;
  if (!isObj(h)) return 'hostConfig is missing';
  for (const k of ['autoRemove', 'readOnly', 'init', 'tty', 'interactive']) if (typeof h[k] !== 'boolean') return `hostConfig.${k} is missing`;
  if (!NETWORK_MODES.includes(h.networkMode as string) && !/^container:[0-9a-f]{64}$/.test(String(h.networkMode))) return 'hostConfig.networkMode is missing';
  const ports = h.portBindings;
  if (!Array.isArray(ports) || !ports.every((p) => isObj(p) && typeof p.hostIp === 'string' && typeof p.hostPort === 'number' && typeof p.containerPort === 'number' && typeof p.protocol === 'string')) {
    return 'hostConfig.portBindings is missing';
  }
  if (!Array.isArray(h.binds) || !h.binds.every((b) => isObj(b) && typeof b.source === 'string' && typeof b.destination === 'string' && typeof b.readOnly === 'boolean')) {
    return 'hostConfig.binds is missing';
  }
  if (h.volumes !== undefined && !(Array.isArray(h.volumes) && h.volumes.every((b) => isObj(b) && typeof b.name === 'string' && typeof b.destination === 'string' && typeof b.anonymous === 'boolean'))) {
    return 'hostConfig.volumes is invalid';
  }
  if (!Array.isArray(h.tmpfs) || !h.tmpfs.every((t) => isObj(t) && typeof t.destination === 'string' && isStrings(t.options))) return 'hostConfig.tmpfs is missing';
  if (!isStrings(h.capAdd) || !isStrings(h.capDrop)) return 'hostConfig.capAdd/capDrop is missing';
  if (!opt(h.memory, 'number') || !opt(h.cpus, 'number') || !opt(h.pidsLimit, 'number') || !opt(h.memorySwap, 'number') || !opt(h.cpuShares, 'number')) return 'a hostConfig limit is not a number';
  if (v.network !== undefined && v.network !== null && !(isObj(v.network) && NETWORK_STATE_MODES.includes(v.network.mode as string))) return 'network is invalid';
  if (v.cgroup !== undefined && v.cgroup !== null && !(isObj(v.cgroup) && (v.cgroup.version === 1 || v.cgroup.version === 2) && isStrings(v.cgroup.paths))) {
    return 'cgroup is invalid';
  }
  const st = v.state;
  if (!isObj(st)) return 'state is missing';
  if (!STATUSES.includes(st.status as string)) return 'state.status is invalid';
  for (const k of ['pid', 'monitorPid', 'proxyPid', 'exitCode', 'restartCount', 'restartDelayMs', 'keeperPid']) if (!opt(st[k], 'number')) return `state.${k} is not a number`;
  for (const k of ['pidStartTime', 'monitorStartTime', 'proxyStartTime', 'startedAt', 'finishedAt', 'signal', 'error', 'keeperStartTime']) if (!opt(st[k], 'string')) return `state.${k} is not a string`;
  for (const k of ['oomKilled', 'restarting', 'manuallyStopped', 'paused']) if (!opt(st[k], 'boolean')) return `state.${k} is not a boolean`;
  return undefined;
}

/** The process named as creator or watcher by a record that is otherwise unreadable, if any. */
function namedProcess(v: unknown): { pid: number; startTime?: string } | undefined {
  const st = isObj(v) && isObj(v.state) ? v.state : undefined;
  if (!st || typeof st.monitorPid !== 'number') return undefined;
  return { pid: st.monitorPid, ...(typeof st.monitorStartTime === 'string' ? { startTime: st.monitorStartTime } : {}) };
}

/**
 * The record of container `id`: undefined when there is none (never created, or removed);
 * BrokenContainerError when state.json is there but is not a complete record (an earlier version's
 * half-written one, a damaged file).
 */
export async function readRecord(root: string, id: string): Promise<ContainerRecord | undefined> {
  let text: string;
  try {
    text = await readFile(pathOf(root, id, 'state'), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new BrokenContainerError(id, `state.json cannot be read: ${code ?? (e as Error).message}`, { cause: e });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new BrokenContainerError(id, text.trim() === '' ? 'state.json is empty' : 'state.json is not valid JSON');
  }
  const problem = recordProblem(v, id);
  if (problem) throw new BrokenContainerError(id, `incomplete: ${problem}`, { process: namedProcess(v) });
  const rec = v as ContainerRecord;
  // null (from a hand edit or another writer) reads as absent, as the validation took it.
  for (const [k, x] of Object.entries(rec.state)) if (x === null) delete (rec.state as unknown as Obj)[k];
  return rec;
}

/** Read-modify-write of state.json under the container's lock. */
export async function updateRecord(
  root: string,
  id: string,
  fn: (r: ContainerRecord) => void | Promise<void>,
): Promise<ContainerRecord | undefined> {
  return withContainerLock(root, id, async () => {
    const r = await readRecord(root, id);
    if (!r) return undefined;
    await fn(r);
    try {
      await writeRecord(root, r);
    } catch (e) {
      // Removed meanwhile (rm takes this lock for the final delete, so only before we read).
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return r;
  });
}

export async function readExitStatus(root: string, id: string): Promise<ExitStatus | undefined> {
  try {
    const t = await readFile(pathOf(root, id, 'status'), 'utf8');
    const v = t.trim() ? (JSON.parse(t) as unknown) : undefined;
    // Written by the monitor (C) or by us: anything without a numeric status is no status.
    if (!isObj(v) || typeof v.exitCode !== 'number') return undefined;
    return {
      exitCode: v.exitCode,
      ...(typeof v.signal === 'string' ? { signal: v.signal } : {}),
      ...(typeof v.oomKilled === 'boolean' ? { oomKilled: v.oomKilled } : {}),
      finishedAt: typeof v.finishedAt === 'string' ? v.finishedAt : new Date().toISOString(),
    };
  } catch {
    return undefined;
  }
}

export async function writeExitStatus(root: string, id: string, s: ExitStatus): Promise<void> {
  await replaceFile(pathOf(root, id, 'status'), `${JSON.stringify(s)}\n`);
}

// ---- the containers directory ----------------------------------------------------------------

const ID = /^[0-9a-f]{64}$/;
const CREATING = /^\.creating-([0-9a-f]{64})-(\d+)-(\d+)$/;
const REMOVING = /^\.removing-([0-9a-f]{64})$/;

/** A container directory being filled in, named for the process doing it. */
export interface Creating {
  id: string;
  dir: string;
  pid: number;
  startTime: string;
}

/** What `<root>/containers` holds, by kind (read once; nothing is judged alive or dead here). */
export interface ContainerDirs {
  /** Container directories with a state.json (complete or not: readRecord tells). */
  ids: string[];
  /** Container directories without a state.json: a removal by an earlier version that was cut short. */
  bare: string[];
  creating: Creating[];
  /** Ids whose directory is being (or was being) deleted. */
  removing: string[];
}

export async function scanContainerDirs(root: string): Promise<ContainerDirs> {
  const out: ContainerDirs = { ids: [], bare: [], creating: [], removing: [] };
  let names: string[];
  try {
    names = await readdir(containersDir(root));
  } catch {
    return out;
  }
  await Promise.all(
    names.map(async (n) => {
      let m: RegExpExecArray | null;
      if (ID.test(n)) {
        const has = await stat(pathOf(root, n, 'state')).then(
          () => true,
          (e: NodeJS.ErrnoException) => e.code !== 'ENOENT' && e.code !== 'ENOTDIR',
        );
        (has ? out.ids : out.bare).push(n);
      } else if ((m = CREATING.exec(n))) {
        out.creating.push({ id: m[1]!, dir: join(containersDir(root), n), pid: Number(m[2]), startTime: m[3]! });
      } else if ((m = REMOVING.exec(n))) {
        out.removing.push(m[1]!);
      }
    }),
  );
  return out;
}

/** Ids of every container directory that has a state.json. */
export async function listIds(root: string): Promise<string[]> {
  return (await scanContainerDirs(root)).ids;
}

/** Every readable record, and the containers whose record is not (see readRecord). */
export async function readAllRecords(root: string): Promise<{ records: ContainerRecord[]; broken: BrokenContainerError[] }> {
  const records: ContainerRecord[] = [];
  const broken: BrokenContainerError[] = [];
  for (const id of await listIds(root)) {
    try {
      const r = await readRecord(root, id);
      if (r) records.push(r);
    } catch (e) {
      if (e instanceof BrokenContainerError) broken.push(e);
      else throw e;
    }
  }
  return { records, broken };
}

/** Every readable record; unreadable ones are left out (inspect, rm -f and prune deal with those). */
export async function listRecords(root: string): Promise<ContainerRecord[]> {
  return (await readAllRecords(root)).records;
}

/**
 * Starts a container directory: `.creating-<id>-<pid>-<start>`, made by one mkdir, so that from its
 * first moment a reader can tell whether its creator is still at work. Returns its path.
 */
export async function beginCreate(root: string, id: string): Promise<string> {
  if (!ID.test(id)) throw new Error(`invalid container id ${JSON.stringify(id)}`);
  const start = (await procStartTime(process.pid)) ?? '0';
  const dir = join(containersDir(root), `.creating-${id}-${process.pid}-${start}`);
  try {
    await mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(containersDir(root), { recursive: true });
    await mkdir(dir);
  }
  return dir;
}

/** Names held by containers that live processes are creating now (their reservation file). */
export async function reservedNames(root: string, except?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of await readdir(containersDir(root)).catch(() => [] as string[])) {
    const m = CREATING.exec(n);
    const dir = join(containersDir(root), n);
    if (!m || dir === except || !(await isSameProcess(Number(m[2]), m[3]))) continue;
    try {
      const v = JSON.parse(await readFile(join(dir, files.state), 'utf8')) as unknown;
      if (isObj(v) && typeof v.name === 'string') out.set(v.name, m[1]!);
    } catch {
      // no name reserved yet
    }
  }
  return out;
}

/** Moves a finished container directory into place, under the containers lock (names stay unique). */
export async function finishCreate(root: string, id: string, dir: string): Promise<void> {
  await withContainersLock(root, () => rename(dir, containerDir(root, id)));
}

/**
 * Deletes a container directory: renamed to `.removing-<id>` first (under the container's lock, so
 * no state update writes into it meanwhile), so that a removal cut short leaves no half-deleted
 * container behind, only a directory that prune finishes deleting.
 */
export async function deleteContainerDir(root: string, id: string): Promise<void> {
  const gone = join(containersDir(root), `.removing-${id}`);
  await withContainerLock(root, id, async () => {
    try {
      await rename(containerDir(root, id), gone);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // A directory left by an earlier removal of the same id is in the way: finish that first.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      await rm(gone, { recursive: true, force: true });
      await rename(containerDir(root, id), gone);
    }
  });
  await rm(gone, { recursive: true, force: true });
}

/** Finds a container by full id, name, or unique id prefix (Docker's order). */
export async function resolveContainer(root: string, nameOrId: string): Promise<ContainerRecord> {
  const input = nameOrId.startsWith('/') ? nameOrId.slice(1) : nameOrId;
  if (ID.test(input)) {
    const r = await readRecord(root, input);
    if (r) return r;
  }
  const { records, broken } = await readAllRecords(root);
  const byName = records.find((r) => r.name === input);
  if (byName) return byName;
  if (/^[0-9a-f]+$/.test(input)) {
    const m = [...records.map((r) => r.id), ...broken.map((b) => b.id)].filter((id) => id.startsWith(input));
    if (m.length > 1) throw new AmbiguousContainerError(input, m);
    if (m.length === 1) {
      const r = records.find((x) => x.id === m[0]);
      if (r) return r;
      throw broken.find((b) => b.id === m[0])!;
    }
  }
  throw new ContainerNotFoundError(nameOrId);
}
