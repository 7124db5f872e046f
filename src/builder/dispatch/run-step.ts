/**
 * Executing one RUN: the sandbox spec (namespaces, the container's standard mounts, /etc/hosts,
 * /etc/resolv.conf and /etc/hostname bind-mounted from files written per step, the RUN --mount
 * mounts) and the process with the stage's env, user and workdir. The rootfs is the active
 * snapshot's overlay mounts; the init layer provides the placeholder files the binds land on.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Isolation, Mount, NamespaceKind, Rlimit, SandboxSpec } from '../../sandbox/spec.js';
import { CAPABILITIES } from '../../sandbox/capabilities.js';
import { ImgbuildError } from '../../errors.js';

export type BuildNetwork = 'none' | 'host' | 'default';

/** The placeholders every RUN's init layer carries (never part of a layer). */
export const INIT_FILES = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

export class RunFailedError extends ImgbuildError {
  /** What may be wrong, said after the error (a step without a network that could not resolve a name). */
  readonly hint?: string;

  constructor(readonly command: string, readonly exitCode: number, readonly signal?: string, hint?: string) {
    super('FAILED_PRECONDITION', `process "${command}" did not complete successfully: ${signal ? `killed by ${signal}` : `exit code: ${exitCode}`}`);
    this.name = 'RunFailedError';
    if (hint) this.hint = hint;
  }
}

/** The text of a step's /etc/hosts, /etc/resolv.conf and /etc/hostname. */
export interface NetworkFiles {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

/** Writes the per-step hosts/resolv.conf/hostname files into `dir` and returns their binds. */
export async function networkFiles(dir: string, files: NetworkFiles): Promise<(Mount & { destination: string })[]> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'hosts'), files.hosts);
  await writeFile(join(dir, 'resolv.conf'), files.resolvConf);
  await writeFile(join(dir, 'hostname'), `${files.hostname}\n`);
  return [
    { type: 'bind', source: join(dir, 'hosts'), destination: '/etc/hosts', options: ['rbind', 'ro'] },
    { type: 'bind', source: join(dir, 'resolv.conf'), destination: '/etc/resolv.conf', options: ['rbind', 'ro'] },
    { type: 'bind', source: join(dir, 'hostname'), destination: '/etc/hostname', options: ['rbind', 'ro'] },
  ];
}

export interface RunStepSpec {
  rootfs: Mount[];
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  network: BuildNetwork;
  /** The bridge namespace the step joins (`default`); without it `default` and `none` get a new one. */
  netnsPath?: string;
  hostname: string;
  rlimits?: readonly Rlimit[];
  /** Size of /dev/shm in bytes (the sandbox's default when undefined). */
  shmSize?: number;
  /** `RUN --security=insecure`: every capability, no syscall filter, no masked paths. */
  insecure?: boolean;
  /** Binds for /etc/hosts etc. plus RUN --mount mounts, in mount order. */
  mounts: (Mount & { destination: string })[];
  /** `chroot`: as much isolation as the host allows (an unprivileged pod); default all of it. */
  isolation?: Isolation;
}

export function sandboxSpec(s: RunStepSpec): SandboxSpec {
  const namespaces: NamespaceKind[] = ['mount', 'pid', 'uts', 'ipc', 'cgroup'];
  if (s.network !== 'host' && !s.netnsPath) namespaces.push('net');
  // A sized /dev/shm goes over the sandbox's own, before the RUN --mount mounts (one may target it).
  const shm: (Mount & { destination: string })[] = s.shmSize
    ? [{ type: 'tmpfs', source: 'shm', destination: '/dev/shm', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', `size=${s.shmSize}`] }]
    : [];
  return {
    process: {
      args: s.args,
      env: s.env,
      cwd: s.cwd,
      user: s.user,
      noNewPrivileges: false,
      ...(s.rlimits?.length ? { rlimits: [...s.rlimits] } : {}),
      ...(s.insecure ? { capabilities: [...CAPABILITIES] } : {}),
    },
    rootfs: s.rootfs,
    // /proc, /dev (device binds, pts, shm, mqueue) and /sys are mounted by the sandbox itself.
    mounts: [...shm, ...s.mounts],
    namespaces,
    ...(s.netnsPath ? { netnsPath: s.netnsPath } : {}),
    hostname: s.hostname,
    ...(s.insecure ? { seccomp: false, maskedPaths: [], readonlyPaths: [] } : {}),
    ...(s.isolation === 'chroot' ? { isolation: 'chroot' as const } : {}),
  };
}

/** A Writable that hands complete lines to `onLine` (and the rest at the end). */
export function lineWriter(onLine: (line: string) => void): Writable {
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      partial += chunk.toString('utf8');
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        onLine(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
      cb();
    },
    final(cb) {
      if (partial) onLine(partial);
      partial = '';
      cb();
    },
  });
}
