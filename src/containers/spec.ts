/**
 * From an image config and `run` flags to the container's effective config and SandboxSpec,
 * following Docker's rules: ENTRYPOINT/CMD composition, env precedence (image < --env-file < -e),
 * `-w`, `-u` against the image's passwd/group, binds, tmpfs, capabilities, rlimits.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { ContainerConfig } from '../image/types.js';
import type { Device, Mount, Rlimit, SandboxSpec } from '../sandbox/spec.js';
import { fromSystemError, InvalidArgumentError } from '../errors.js';
import { CAPABILITIES, DEFAULT_CAPABILITIES as RUNNER_DEFAULT_CAPABILITIES, normalizeCapability } from '../sandbox/capabilities.js';
import type { VolumeMount } from '../volumes/local-driver.js';
import type { BindSpec } from './record.js';
import { ContainerStartError } from './errors.js';
import type { SecurityOptions } from './security-opt.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default set and every capability, from the runner's table (one source of truth). */
export const DEFAULT_CAPABILITIES: readonly string[] = RUNNER_DEFAULT_CAPABILITIES;
export const ALL_CAPABILITIES: readonly string[] = CAPABILITIES;

function capName(c: string): string {
  return c.trim().toUpperCase() === 'ALL' ? 'ALL' : normalizeCapability(c);
}

/** Docker's order: start from the defaults (or ALL), drop, then add. */
export function capabilitySet(add: string[], drop: string[]): string[] {
  const a = add.map(capName);
  const d = drop.map(capName);
  let set = new Set(DEFAULT_CAPABILITIES);
  if (d.includes('ALL')) set = new Set();
  for (const c of d) set.delete(c);
  if (a.includes('ALL')) set = new Set(ALL_CAPABILITIES);
  for (const c of a) if (c !== 'ALL') set.add(c);
  return ALL_CAPABILITIES.filter((c) => set.has(c));
}

/** ENTRYPOINT/CMD composition: `--entrypoint` replaces the image's and resets its CMD. */
export function composeCommand(
  cfg: ContainerConfig,
  o: { entrypoint?: string; cmd?: string[] },
): { entrypoint: string[]; cmd: string[]; argv: string[] } {
  let entrypoint = cfg.Entrypoint ?? [];
  let cmd = cfg.Cmd ?? [];
  if (o.entrypoint !== undefined) {
    entrypoint = o.entrypoint === '' ? [] : [o.entrypoint];
    cmd = [];
  }
  if (o.cmd && o.cmd.length > 0) cmd = o.cmd;
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) throw new ContainerStartError('no command specified (the image has no CMD or ENTRYPOINT)', 125);
  return { entrypoint, cmd, argv };
}

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

/** Later entries win by key; the order of first appearance is kept. */
export function mergeEnv(...lists: string[][]): string[] {
  const m = new Map<string, string>();
  for (const l of lists) for (const e of l) m.set(envKey(e), e);
  return [...m.values()];
}

/** `-e K=V` as given; `-e K` takes K from the caller's environment, or is dropped when unset. */
export function resolveEnvFlags(flags: string[], hostEnv: NodeJS.ProcessEnv): string[] {
  return flags.flatMap((f) => {
    if (f.includes('=')) {
      if (f.startsWith('=')) throw new InvalidArgumentError(`invalid environment variable ${JSON.stringify(f)}`);
      return [f];
    }
    const v = hostEnv[f];
    return v === undefined ? [] : [`${f}=${v}`];
  });
}

/** `--env-file`: one `K=V` (or bare `K`) per line; `#` comments and blank lines skipped. */
export async function readEnvFile(path: string, hostEnv: NodeJS.ProcessEnv): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(`--env-file: ${fromSystemError(e)?.message ?? (e as Error).message}`, { cause: e });
  }
  const lines = text.split(/\r?\n/).map((l) => l.replace(/^\s+/, '')).filter((l) => l !== '' && !l.startsWith('#'));
  return resolveEnvFlags(lines, hostEnv);
}

/** `--tmpfs /path[:opt,opt]`. */
export function parseTmpfs(t: string): { destination: string; options: string[] } {
  const i = t.indexOf(':');
  const dst = i < 0 ? t : t.slice(0, i);
  const opts = i < 0 ? [] : t.slice(i + 1).split(',').filter(Boolean);
  if (!posix.isAbsolute(dst)) throw new InvalidArgumentError(`invalid --tmpfs ${JSON.stringify(t)}: the path must be absolute`);
  return { destination: posix.normalize(dst), options: ['nosuid', 'nodev', ...opts] };
}

/** `--ulimit name=soft[:hard]`: parsed with the other limits (host/limits.ts). */
export { parseUlimit } from '../host/limits.js';

export interface SpecInput {
  argv: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  rootfs: Mount[];
  hostname: string;
  domainname?: string;
  etcFiles: { hosts: string; hostname: string; resolv: string };
  binds: BindSpec[];
  tmpfs: { destination: string; options: string[] }[];
  /** Volumes, as their driver mounts them. */
  volumes?: { destination: string; readOnly: boolean; mount: VolumeMount }[];
  readOnly: boolean;
  capabilities: string[];
  rlimits: Rlimit[];
  init: boolean;
  terminal: boolean;
  hostNetwork: boolean;
  /** `--pid host`, `--ipc host`: the host's namespace instead of one of its own. */
  hostPid?: boolean;
  hostIpc?: boolean;
  /** `--security-opt`; Docker's defaults when absent. */
  security?: SecurityOptions;
  /** `--privileged`: every capability and host device, no syscall filter, no masked paths, /sys writable. */
  privileged?: boolean;
  devices?: Device[];
  deviceRules?: string[];
  /** `--shm-size` in bytes (Docker's default 64 MiB otherwise). */
  shmSize?: number;
  /** `--userns=auto`: the host ids of the container's 0, for `size` ids (a user namespace of its own). */
  idMapping?: { uid: number; gid: number; size: number };
}

export function buildSandboxSpec(i: SpecInput): SandboxSpec {
  // /proc, /dev (with its device binds, pts, shm, mqueue) and /sys are mounted by the sandbox itself.
  const mounts: (Mount & { destination: string })[] = [];
  const etc = (destination: string, source: string): Mount & { destination: string } => ({
    destination,
    type: 'bind',
    source,
    options: ['rbind', 'rprivate', ...(i.readOnly ? ['ro'] : [])],
  });
  mounts.push(etc('/etc/hosts', i.etcFiles.hosts), etc('/etc/hostname', i.etcFiles.hostname), etc('/etc/resolv.conf', i.etcFiles.resolv));
  if (i.shmSize !== undefined && !i.tmpfs.some((t) => t.destination === '/dev/shm')) {
    mounts.push({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${i.shmSize}`] });
  }
  const user: (Mount & { destination: string })[] = [];
  for (const t of i.tmpfs) user.push({ destination: t.destination, type: 'tmpfs', source: 'tmpfs', options: t.options });
  for (const b of i.binds) {
    user.push({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', b.propagation ?? 'rprivate', ...(b.readOnly ? ['ro'] : []), ...(b.idmap && i.idMapping ? ['idmap'] : [])] });
  }
  for (const v of i.volumes ?? []) {
    const ro = v.readOnly ? ['ro'] : [];
    if (v.mount.type === 'tmpfs') user.push({ destination: v.destination, type: 'tmpfs', source: 'tmpfs', options: [...v.mount.options, ...ro] });
    else user.push({ destination: v.destination, type: 'bind', source: v.mount.source, options: ['rbind', 'rprivate', ...ro] });
  }
  // A mount inside another goes after it, whatever order the flags came in (Docker sorts them so).
  const depth = (d: string): number => posix.normalize(d).split('/').filter(Boolean).length;
  mounts.push(...user.map((m, n) => ({ m, n })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.n - b.n).map((x) => x.m));
  return {
    process: {
      args: i.argv,
      env: i.env,
      cwd: i.cwd,
      user: { uid: i.user.uid, gid: i.user.gid, additionalGids: i.user.additionalGids },
      capabilities: i.capabilities,
      rlimits: i.rlimits,
      terminal: i.terminal,
      ...(i.security?.noNewPrivileges ? { noNewPrivileges: true } : {}),
    },
    rootfs: i.rootfs,
    mounts,
    namespaces: [
      ...(i.idMapping ? (['user'] as const) : []),
      ...(['mount', 'pid', 'ipc', 'uts', 'cgroup', 'net'] as const).filter(
        (n) => !(n === 'net' && i.hostNetwork) && !(n === 'pid' && i.hostPid) && !(n === 'ipc' && i.hostIpc),
      ),
    ],
    ...(i.idMapping
      ? {
          uidMappings: [{ containerID: 0, hostID: i.idMapping.uid, size: i.idMapping.size }],
          gidMappings: [{ containerID: 0, hostID: i.idMapping.gid, size: i.idMapping.size }],
          rootfsIdmap: true,
        }
      : {}),
    hostname: i.hostname,
    ...(i.domainname ? { domainname: i.domainname } : {}),
    readonlyRootfs: i.readOnly,
    init: i.init,
    ...(i.privileged
      ? { seccomp: false as const, maskedPaths: [], readonlyPaths: [], privileged: true }
      : {
          ...(i.security?.seccomp === false || typeof i.security?.seccomp === 'object' ? { seccomp: i.security.seccomp } : {}),
          ...(i.security?.systemPaths === false ? { maskedPaths: [], readonlyPaths: [] } : {}),
        }),
    ...(i.devices?.length ? { devices: i.devices } : {}),
    ...(i.deviceRules ? { deviceRules: i.deviceRules } : {}),
  };
}
