/**
 * Which isolation this host allows a build step: `oci` (every namespace, a new procfs and sysfs,
 * masks, pivot_root) or only `chroot` (what of that can be made, then chroot(2)). An unprivileged
 * pod typically refuses a new procfs over its masked /proc, and its seccomp filter sethostname.
 *
 * The probe is the real thing: the helper sets up a step's sandbox around an empty directory and
 * execs a program that is not there; failing at that execve means everything before it worked.
 */
import { mkdir, mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { InvalidArgumentError } from '../errors.js';
import { SandboxError } from './errors.js';
import { helperPath, runSandbox } from './sandbox.js';
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

/**
 * What the probe's answer depends on, as one digest: the kernel's boot, this process's
 * namespaces, ids, capabilities, seccomp and no_new_privs state and security label, and the
 * helper binary. Another pod, container or user (a store on a persistent volume moved between
 * them) has other namespaces or rights, so its digest differs.
 */
export async function isolationEnvironment(): Promise<string> {
  const read = (p: string): Promise<string> => readFile(p, 'utf8').catch(() => '-');
  const parts = [await read('/proc/sys/kernel/random/boot_id')];
  for (const ns of ['mnt', 'user', 'pid', 'cgroup', 'ipc', 'uts', 'net']) parts.push(await readlink(`/proc/self/ns/${ns}`).catch(() => '-'));
  const status = await read('/proc/self/status');
  parts.push(...status.split('\n').filter((l) => /^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):/.test(l)));
  parts.push(await read('/proc/self/attr/current'));
  const h = await stat(helperPath()).then((st) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`, () => '-');
  parts.push(h);
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

interface CachedProbe extends IsolationProbe {
  environment: string;
}

/**
 * `probeIsolation`, a full-isolation answer kept in `cacheFile` for the environment it was found
 * in (`isolationEnvironment`): a helper start saved on every build after the first. Only `oci` is
 * kept: a probe that failed for a passing reason (no memory, a pid limit) must not weaken later
 * builds, so where the host allows only chroot every build probes. A file that cannot be read,
 * says otherwise or names another environment means probing again.
 */
export async function probeIsolationCached(cacheFile: string, o: { signal?: AbortSignal; tmpDir?: string } = {}): Promise<IsolationProbe> {
  const environment = await isolationEnvironment();
  const kept = await readFile(cacheFile, 'utf8').then((t) => JSON.parse(t) as Partial<CachedProbe> | null).catch(() => undefined);
  if (kept?.environment === environment && kept.isolation === 'oci') return { isolation: 'oci' };
  const r = await probeIsolation(o);
  if (r.isolation === 'oci') {
    const rec: CachedProbe = { environment, isolation: 'oci' };
    // Only a cache: a store that cannot take it probes again next time.
    await mkdir(dirname(cacheFile), { recursive: true })
      .then(() => writeFileAtomic(cacheFile, `${JSON.stringify(rec)}\n`))
      .catch(() => {});
  }
  return r;
}

/**
 * The isolation to use for `choice`: a fixed one as it is, `auto` as the probe finds (its answer
 * kept in `cacheFile` when one is given).
 */
export function resolveIsolation(choice: IsolationChoice, o: { signal?: AbortSignal; tmpDir?: string; cacheFile?: string } = {}): Promise<IsolationProbe> {
  if (choice !== 'auto') return Promise.resolve({ isolation: choice });
  const { cacheFile, ...probe } = o;
  return cacheFile ? probeIsolationCached(cacheFile, probe) : probeIsolation(probe);
}
