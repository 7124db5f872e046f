/**
 * SandboxSpec → OCI runtime-spec `config.json`, so the same container can be run by runc/crun
 * (`runc run --bundle`), logged or inspected. config.json names one root path; the snapshot's
 * mounts (an overlay) are either listed first in `mounts`, at `/`, with absolute paths (so that
 * the bundle runs as it is and the runtime mounts the overlay in the container's own mount
 * namespace: nothing stays mounted on the host) or left to the caller to mount at `root.path`.
 * They are also kept in an annotation for reference.
 */
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_CAPABILITIES, normalizeCapability } from './capabilities.js';
import { seccompRuntimeSpec } from './seccomp/filter.js';
import { DEFAULT_DEVICE_RULES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, type NamespaceKind, type SandboxSpec } from './spec.js';

const NS_NAMES: Record<NamespaceKind, string> = {
  user: 'user',
  mount: 'mount',
  pid: 'pid',
  ipc: 'ipc',
  uts: 'uts',
  net: 'network',
  cgroup: 'cgroup',
};

export interface OciConfigOptions {
  /** `root.path` (relative to the bundle or absolute); default `rootfs`. */
  rootPath?: string;
  /** List the rootfs mounts in `mounts` at `/` (root.path is then an empty directory). */
  rootfsInMounts?: boolean;
  /** `linux.resources` limits (the devices come from the spec). */
  resources?: { memory?: number; cpus?: number; pidsLimit?: number; cpuShares?: number };
  /** `linux.cgroupsPath`. */
  cgroupsPath?: string;
  /** Where the resolved seccomp section is cached (the store's seccomp cache). */
  seccompCacheDir?: string;
}

/** A devices.allow rule (`c 1:3 rwm`, `a *:* rwm`) as a runtime-spec device cgroup entry. */
function deviceRule(rule: string): object {
  const m = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]+)$/.exec(rule);
  if (!m) throw new Error(`unreachable: device rule ${rule}`);
  const num = (s: string): number | undefined => (s === '*' ? undefined : Number(s));
  const [major, minor] = [num(m[2]!), num(m[3]!)];
  return { allow: true, type: m[1], ...(major !== undefined ? { major } : {}), ...(minor !== undefined ? { minor } : {}), access: m[4] };
}

/** An overlay's or bind's relative paths (against the mount's cwd) made absolute, for a runtime that does not chdir. */
function absoluteMount(m: SandboxSpec['rootfs'][number]): object {
  const base = m.cwd || '/';
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const options = m.options.map((opt) => {
    const eq = opt.indexOf('=');
    const k = opt.slice(0, eq);
    if (eq < 0 || !['lowerdir', 'upperdir', 'workdir'].includes(k)) return opt;
    return `${k}=${opt.slice(eq + 1).split(':').map(abs).join(':')}`;
  });
  return { destination: `/${(m.target ?? '').replace(/^\/+/, '')}`, type: m.type, source: m.type === 'bind' ? abs(m.source) : m.source, options };
}

/** `linux.resources` memory, cpu and pids of run's limits. */
export function resourceLimits(r: NonNullable<OciConfigOptions['resources']>): Record<string, object> {
  const out: Record<string, object> = {};
  // swap = memory+swap in runc's v1 terms: the same value means no swap, as run -m does.
  if (r.memory !== undefined) out.memory = { limit: r.memory, swap: r.memory };
  if (r.cpus !== undefined || r.cpuShares !== undefined) {
    out.cpu = { ...(r.cpus !== undefined ? { quota: Math.round(r.cpus * 100_000), period: 100_000 } : {}), ...(r.cpuShares !== undefined ? { shares: r.cpuShares } : {}) };
  }
  if (r.pidsLimit !== undefined) out.pids = { limit: r.pidsLimit };
  return out;
}

function resources(spec: SandboxSpec, r: NonNullable<OciConfigOptions['resources']>): object {
  return {
    devices: [{ allow: false, access: 'rwm' }, ...(spec.deviceRules ?? DEFAULT_DEVICE_RULES).map(deviceRule)],
    ...resourceLimits(r),
  };
}

export function toOciConfig(spec: SandboxSpec, o: OciConfigOptions = {}): object {
  const caps = (spec.process.capabilities ?? DEFAULT_CAPABILITIES).map(normalizeCapability);
  const p = spec.process;
  const user: Record<string, unknown> = { uid: p.user.uid, gid: p.user.gid };
  if (p.user.additionalGids?.length) user.additionalGids = p.user.additionalGids;
  const limit = (n: number) => (n < 0 ? Number.MAX_SAFE_INTEGER : n);
  const mounts: object[] = [
    ...(o.rootfsInMounts ? spec.rootfs.map(absoluteMount) : []),
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts', type: 'devpts', source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    ...(spec.mounts.some((m) => m.destination === '/dev/shm')
      ? []
      : [{ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] }]),
    ...(spec.namespaces.includes('ipc')
      ? [{ destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] }]
      : []),
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', spec.privileged ? 'rw' : 'ro'] },
    ...spec.mounts.map((m) => ({ destination: m.destination, type: m.type, source: m.source, options: [...m.options] })),
  ];
  const namespaces = spec.namespaces.map((n) =>
    n === 'net' && spec.netnsPath ? { type: 'network', path: spec.netnsPath } : { type: NS_NAMES[n] },
  );
  if (spec.netnsPath && !spec.namespaces.includes('net')) namespaces.push({ type: 'network', path: spec.netnsPath });
  if (spec.pidnsPath) namespaces.push({ type: 'pid', path: spec.pidnsPath });
  if (spec.ipcnsPath) namespaces.push({ type: 'ipc', path: spec.ipcnsPath });
  const linux: Record<string, unknown> = {
    namespaces,
    maskedPaths: [...(spec.maskedPaths ?? DEFAULT_MASKED_PATHS)],
    readonlyPaths: [...(spec.readonlyPaths ?? DEFAULT_READONLY_PATHS)],
  };
  if (spec.devices?.length) linux.devices = spec.devices.map((d) => ({ ...d }));
  if (o.resources) linux.resources = resources(spec, o.resources);
  if (o.cgroupsPath) linux.cgroupsPath = o.cgroupsPath;
  if (spec.seccomp !== false) linux.seccomp = seccompRuntimeSpec(spec.seccomp, caps, o.seccompCacheDir ? { cacheDir: o.seccompCacheDir } : {});
  if (spec.namespaces.includes('user')) {
    linux.uidMappings = spec.uidMappings ?? [];
    linux.gidMappings = spec.gidMappings ?? [];
  }
  const config: Record<string, unknown> = {
    ociVersion: '1.2.0',
    process: {
      terminal: p.terminal ?? false,
      user,
      args: [...p.args],
      env: [...p.env],
      cwd: p.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      ...(p.rlimits?.length
        ? { rlimits: p.rlimits.map((r) => ({ type: r.type.toUpperCase(), soft: limit(r.soft), hard: limit(r.hard) })) }
        : {}),
      noNewPrivileges: p.noNewPrivileges ?? false,
    },
    root: { path: o.rootPath ?? 'rootfs', readonly: spec.readonlyRootfs ?? false },
    mounts,
    linux,
    annotations: {
      'org.imgbuild.rootfs.mounts': JSON.stringify(spec.rootfs),
      ...(spec.init ? { 'org.imgbuild.init': 'true' } : {}),
    },
  };
  if (spec.hostname !== undefined) config.hostname = spec.hostname;
  if (spec.domainname) config.domainname = spec.domainname;
  return config;
}
