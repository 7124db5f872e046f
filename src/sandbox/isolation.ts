/**
 * Which isolation this host allows a build step: `oci` (every namespace, a new procfs and sysfs,
 * masks, pivot_root) or only `chroot` (what of that can be made, then chroot(2)). An unprivileged
 * pod typically refuses a new procfs over its masked /proc, and its seccomp filter sethostname.
 *
 * The probe is the real thing: the helper sets up a step's sandbox around an empty directory and
 * execs a program that is not there; failing at that execve means everything before it worked.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { SandboxError } from './errors.js';
import { runSandbox } from './sandbox.js';
import type { Isolation } from './spec.js';

export type IsolationChoice = Isolation | 'auto';

/** The environment variable naming the default isolation (as buildah's BUILDAH_ISOLATION). */
export const ISOLATION_ENV = 'IMGBUILD_ISOLATION';

export function parseIsolation(v: string): IsolationChoice {
  if (v === 'auto' || v === 'oci' || v === 'chroot') return v;
  // buildah's names for the full kind.
  if (v === 'rootless' || v === 'default') return 'oci';
  throw new InvalidArgumentError(`invalid isolation ${JSON.stringify(v)}: auto, oci or chroot`);
}

export interface IsolationProbe {
  isolation: Isolation;
  /** Why the full isolation is not available (the failing setup step), when it is not. */
  reason?: string;
}

/** Probes whether a step's full sandbox can be set up here (a few ms: one helper start). */
export async function probeIsolation(o: { signal?: AbortSignal; tmpDir?: string } = {}): Promise<IsolationProbe> {
  const dir = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'imgbuild-isolation-'));
  try {
    await runSandbox(
      {
        process: { args: ['/.imgbuild-isolation-probe'], env: [], cwd: '/', user: { uid: 0, gid: 0 } },
        rootfs: [{ type: 'bind', source: dir, options: ['rbind', 'rw'] }],
        mounts: [],
        namespaces: ['mount', 'pid', 'uts', 'ipc', 'cgroup', 'net'],
        hostname: 'probe',
        seccomp: false,
      },
      o.signal ? { signal: o.signal } : {},
    );
    return { isolation: 'oci' };
  } catch (e) {
    if (e instanceof SandboxError && e.syscall === 'execve' && e.errnoCode === 'ENOENT') return { isolation: 'oci' };
    // A helper that is missing, or a cancelled probe, is no answer about this host.
    if (!(e instanceof SandboxError)) throw e;
    return { isolation: 'chroot', reason: e.message };
  } finally {
    // Emptied of the probe's mount points; nothing is mounted here (that was in its namespace).
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The isolation to use for `choice`: a fixed one as it is, `auto` as the probe finds. */
export function resolveIsolation(choice: IsolationChoice, o: { signal?: AbortSignal; tmpDir?: string } = {}): Promise<IsolationProbe> {
  return choice === 'auto' ? probeIsolation(o) : Promise.resolve({ isolation: choice });
}
