/**
 * SandboxSpec → OCI runtime-spec `config.json`, so the same container can be run by runc/crun
 * (`runc run --bundle`), logged or inspected. The rootfs mounts cannot be expressed in
 * config.json (it names one root path): the caller mounts them at `root.path`; they are kept
 * in an annotation for reference.
 */
import { DEFAULT_CAPABILITIES, normalizeCapability } from './capabilities.js';
import { DEFAULT_PROFILE } from './seccomp/default-profile.js';
import { resolveProfile, toRuntimeSpec } from './seccomp/profile.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, type NamespaceKind, type SandboxSpec } from './spec.js';

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
}

export function toOciConfig(spec: SandboxSpec, o: OciConfigOptions = {}): object {
  const caps = (spec.process.capabilities ?? DEFAULT_CAPABILITIES).map(normalizeCapability);
  const p = spec.process;
  const user: Record<string, unknown> = { uid: p.user.uid, gid: p.user.gid };
  if (p.user.additionalGids?.length) user.additionalGids = p.user.additionalGids;
  const limit = (n: number) => (n < 0 ? Number.MAX_SAFE_INTEGER : n);
  const mounts: object[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts', type: 'devpts', source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    ...(spec.namespaces.includes('ipc')
      ? [{ destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] }]
      : []),
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ...spec.mounts.map((m) => ({ destination: m.destination, type: m.type, source: m.source, options: [...m.options] })),
  ];
  const namespaces = spec.namespaces.map((n) =>
    n === 'net' && spec.netnsPath ? { type: 'network', path: spec.netnsPath } : { type: NS_NAMES[n] },
  );
  if (spec.netnsPath && !spec.namespaces.includes('net')) namespaces.push({ type: 'network', path: spec.netnsPath });
  const linux: Record<string, unknown> = {
    namespaces,
    maskedPaths: [...(spec.maskedPaths ?? DEFAULT_MASKED_PATHS)],
    readonlyPaths: [...(spec.readonlyPaths ?? DEFAULT_READONLY_PATHS)],
  };
  if (spec.seccomp !== false) linux.seccomp = toRuntimeSpec(resolveProfile(spec.seccomp ?? DEFAULT_PROFILE, { capabilities: caps }));
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
  return config;
}
