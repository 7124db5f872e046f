/**
 * Container records: `<root>/containers/<id>/` holds
 *   config.json  the runtime-spec bundle config (toOciConfig of the sandbox spec; `runc run` can use it)
 *   state.json   this record (image, snapshot, network, cgroup, lifecycle state)
 *   status.json  the exit status, written once by whoever waited for the process (monitor or `run`)
 *   hosts, hostname, resolv.conf   bind-mounted into the container
 *   log          stdout+stderr of detached containers
 * state.json is only rewritten atomically under the container's lock; names are unique per root,
 * checked under the root-wide containers lock at creation.
 */
import { readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { withLock } from '../layers/atomic.js';
import type { ContainerConfig } from '../layers/types.js';
import type { NetworkMode, NetworkState } from '../runner/network.js';
import type { CgroupVersion } from '../runner/cgroups.js';
import { AmbiguousContainerError, ContainerNotFoundError } from './errors.js';

export type ContainerStatus = 'created' | 'running' | 'exited' | 'dead';

export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp';
}

export interface BindSpec {
  source: string;
  destination: string;
  readOnly: boolean;
}

export interface HostConfig {
  autoRemove: boolean;
  networkMode: NetworkMode;
  portBindings: PortBinding[];
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  binds: BindSpec[];
  tmpfs: { destination: string; options: string[] }[];
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  init: boolean;
  tty: boolean;
  interactive: boolean;
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
  proxyStartTime?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: string;
  oomKilled?: boolean;
  error?: string;
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
  config: ContainerConfig & { Hostname: string };
  /** argv of the process: path + args. */
  path: string;
  args: string[];
  hostConfig: HostConfig;
  network?: NetworkState;
  cgroup?: { version: CgroupVersion; paths: string[] };
  state: ContainerState;
}

export interface ExitStatus {
  exitCode: number;
  signal?: string;
  oomKilled?: boolean;
  finishedAt: string;
}

export function containersDir(root: string): string {
  return join(root, 'containers');
}

export function containerDir(root: string, id: string): string {
  return join(containersDir(root), id);
}

export const files = {
  state: 'state.json',
  status: 'status.json',
  config: 'config.json',
  log: 'log',
  hosts: 'hosts',
  hostname: 'hostname',
  resolv: 'resolv.conf',
} as const;

export function pathOf(root: string, id: string, f: keyof typeof files): string {
  return join(containerDir(root, id), files[f]);
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
  const tmp = `${path}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes state.json into the container's existing directory (never recreating a removed one). */
export async function writeRecord(root: string, rec: ContainerRecord): Promise<void> {
  await replaceFile(pathOf(root, rec.id, 'state'), `${JSON.stringify(rec, null, 2)}\n`);
}

export async function readRecord(root: string, id: string): Promise<ContainerRecord | undefined> {
  try {
    return JSON.parse(await readFile(pathOf(root, id, 'state'), 'utf8')) as ContainerRecord;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
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
    return t.trim() ? (JSON.parse(t) as ExitStatus) : undefined;
  } catch {
    return undefined;
  }
}

export async function writeExitStatus(root: string, id: string, s: ExitStatus): Promise<void> {
  await replaceFile(pathOf(root, id, 'status'), `${JSON.stringify(s)}\n`);
}

/** Ids of every container directory that has a state.json. */
export async function listIds(root: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(containersDir(root));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    if (!/^[0-9a-f]{64}$/.test(n)) continue;
    try {
      await stat(pathOf(root, n, 'state'));
      out.push(n);
    } catch {
      // a half-created or half-removed container: not listed
    }
  }
  return out;
}

export async function listRecords(root: string): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const id of await listIds(root)) {
    const r = await readRecord(root, id);
    if (r) out.push(r);
  }
  return out;
}

/** Finds a container by full id, name, or unique id prefix (Docker's order). */
export async function resolveContainer(root: string, nameOrId: string): Promise<ContainerRecord> {
  const input = nameOrId.startsWith('/') ? nameOrId.slice(1) : nameOrId;
  if (/^[0-9a-f]{64}$/.test(input)) {
    const r = await readRecord(root, input);
    if (r) return r;
  }
  const all = await listRecords(root);
  const byName = all.find((r) => r.name === input);
  if (byName) return byName;
  if (/^[0-9a-f]+$/.test(input)) {
    const m = all.filter((r) => r.id.startsWith(input));
    if (m.length === 1) return m[0]!;
    if (m.length > 1) throw new AmbiguousContainerError(input, m.map((r) => r.id));
  }
  throw new ContainerNotFoundError(nameOrId);
}
