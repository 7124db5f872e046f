/**
 * Executing one RUN: the sandbox spec (namespaces, the container's standard mounts, /etc/hosts,
 * /etc/resolv.conf and /etc/hostname bind-mounted from files written per step, the RUN --mount
 * mounts) and the process with the stage's env, user and workdir. The rootfs is the active
 * snapshot's overlay mounts; the init layer provides the placeholder files the binds land on.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Mount, NamespaceKind, SandboxSpec } from '../../sandbox/spec.js';
import { ImgbuildError } from '../../errors.js';

export type BuildNetwork = 'none' | 'host' | 'default';

/** The placeholders every RUN's init layer carries (never part of a layer). */
export const INIT_FILES = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

export class RunFailedError extends ImgbuildError {
  constructor(readonly command: string, readonly exitCode: number, readonly signal?: string) {
    super('FAILED_PRECONDITION', `process "${command}" did not complete successfully: ${signal ? `killed by ${signal}` : `exit code: ${exitCode}`}`);
    this.name = 'RunFailedError';
  }
}

export const BUILD_HOSTNAME = 'imgbuild';

/** Writes the per-step hosts/resolv.conf/hostname files into `dir` and returns their binds. */
export async function networkFiles(dir: string, network: BuildNetwork): Promise<(Mount & { destination: string })[]> {
  await mkdir(dir, { recursive: true });
  const hosts = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${BUILD_HOSTNAME}\n`;
  let resolv = '';
  if (network === 'host') resolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  await writeFile(join(dir, 'hosts'), hosts);
  await writeFile(join(dir, 'resolv.conf'), resolv);
  await writeFile(join(dir, 'hostname'), `${BUILD_HOSTNAME}\n`);
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
  /** Binds for /etc/hosts etc. plus RUN --mount mounts, in mount order. */
  mounts: (Mount & { destination: string })[];
}

export function sandboxSpec(s: RunStepSpec): SandboxSpec {
  const namespaces: NamespaceKind[] = ['mount', 'pid', 'uts', 'ipc', 'cgroup'];
  if (s.network !== 'host') namespaces.push('net');
  return {
    process: { args: s.args, env: s.env, cwd: s.cwd, user: s.user, noNewPrivileges: false },
    rootfs: s.rootfs,
    // /proc, /dev (device binds, pts, shm, mqueue) and /sys are mounted by the sandbox itself.
    mounts: s.mounts,
    namespaces,
    hostname: BUILD_HOSTNAME,
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
