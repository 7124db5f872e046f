/**
 * Cgroups for a rootless CLI. A user may make groups only in a cgroup v2 subtree delegated to it:
 * the kernel's delegation model is ownership (the directory, its cgroup.procs and
 * cgroup.subtree_control chowned to the user), as systemd does for `user@UID.service`
 * (`Delegate=yes`) and a container engine for a container given its own cgroup namespace. A
 * process may only be moved between groups below a common ancestor whose cgroup.procs it may
 * write, so the subtree that counts is the one holding this CLI: the topmost owned ancestor of its
 * own cgroup (/proc/self/cgroup). Containers get `<that>/imgbuild/<id>`, root's layout
 * (`/sys/fs/cgroup/imgbuild/<id>`) moved into the subtree, so one code path creates, limits, kills
 * and removes both.
 *
 * Where that subtree itself holds processes (the root of a container's cgroup namespace), no
 * controller can be enabled below it (cgroup v2's no-internal-processes rule): those processes are
 * moved into `<subtree>/init` first, as rootlesskit's cgroup2 evacuation and docker-in-docker's
 * entrypoint do, and only when a limit needs a controller.
 *
 * cgroup v1 has no delegation to unprivileged users: there, and on v2 without a delegated subtree,
 * a rootless container runs in the CLI's cgroup and limits are refused with the reason.
 */
import { mkdir, readFile, stat, writeFile, access, constants } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { Cgroup, CgroupError, detectCgroupVersion, type CgroupLimits, type CgroupVersion } from './cgroups.js';

export interface DelegationOptions {
  /** Mount point of the hierarchy; default /sys/fs/cgroup. */
  cgroupRoot?: string;
  version?: CgroupVersion;
  /** The text of /proc/self/cgroup (tests give their own). */
  selfCgroup?: string;
  /** Owner of a delegated group as this process sees it (inside the user namespace: 0); default getuid(). */
  uid?: number;
  /** The user's uid on the host, for naming systemd's `user@UID.service` in messages. */
  hostUid?: number;
  /** Checks writability with access(2) too (a read-only mount of an owned tree); default true. */
  checkAccess?: boolean;
}

export type Delegation =
  | {
      delegated: true;
      cgroupRoot: string;
      /** The delegated subtree's directory. */
      dir: string;
      /** Controllers it offers (its cgroup.controllers). */
      controllers: string[];
      /** Processes sit in the subtree's own group (enabling controllers needs them moved first). */
      busy: boolean;
    }
  | { delegated: false; version: CgroupVersion; reason: string };

const DEFAULT_ROOT = '/sys/fs/cgroup';
/** Controllers the limits need: --memory and --memory-swap, --cpus and --cpu-shares, --pids-limit. */
const NEEDS: { controller: string; key: keyof CgroupLimits }[] = [
  { controller: 'memory', key: 'memory' },
  { controller: 'memory', key: 'memorySwap' },
  { controller: 'cpu', key: 'cpus' },
  { controller: 'cpu', key: 'cpuShares' },
  { controller: 'pids', key: 'pidsLimit' },
];

async function owned(dir: string, uid: number, checkAccess: boolean): Promise<boolean> {
  try {
    for (const p of [dir, join(dir, 'cgroup.procs'), join(dir, 'cgroup.subtree_control')]) {
      if ((await stat(p)).uid !== uid) return false;
    }
    if (checkAccess) await access(join(dir, 'cgroup.procs'), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const words = (t: string | undefined): string[] => (t ?? '').trim().split(/\s+/).filter(Boolean);
const read = (p: string): Promise<string | undefined> => readFile(p, 'utf8').catch(() => undefined);

/** The cgroup v2 subtree delegated to this CLI, or why there is none (a sentence for a message). */
export async function findDelegation(o: DelegationOptions = {}): Promise<Delegation> {
  const cgroupRoot = o.cgroupRoot ?? DEFAULT_ROOT;
  const hostUid = o.hostUid ?? o.uid ?? process.getuid?.() ?? 0;
  const service = `user.slice/user-${hostUid}.slice/user@${hostUid}.service`;
  const version = o.version ?? (await detectCgroupVersion(cgroupRoot).catch(() => 1 as const));
  if (version === 1) {
    return { delegated: false, version, reason: `cgroup v1 does not support rootless limits (they need cgroup v2 with a subtree delegated to the user, such as systemd's user@${hostUid}.service)` };
  }
  const self = o.selfCgroup ?? (await read('/proc/self/cgroup')) ?? '';
  const own = /^0::(\/.*)$/m.exec(self)?.[1];
  if (own === undefined) return { delegated: false, version, reason: 'no delegation: /proc/self/cgroup names no cgroup v2 group' };
  const uid = o.uid ?? process.getuid?.() ?? 0;
  const checkAccess = o.checkAccess ?? true;
  let dir = join(cgroupRoot, own).replace(/(.)\/+$/, '$1');
  if (!(await owned(dir, uid, checkAccess))) {
    const serviceDir = join(cgroupRoot, service);
    const hint = (await owned(serviceDir, uid, checkAccess))
      ? `it lies outside ${service}, the subtree systemd delegates to user ${hostUid}: run imgbuild from a user session (systemd-run --user --scope imgbuild ...)`
      : `no subtree is delegated to user ${hostUid} (log in through systemd-logind for ${service}, or give the container its own writable cgroup namespace)`;
    return { delegated: false, version, reason: `no delegation: imgbuild's cgroup ${own} is not writable by it: ${hint}` };
  }
  // Up to the topmost group the user owns: moves between its groups are allowed below it.
  while (dir !== cgroupRoot && (await owned(dirname(dir), uid, checkAccess))) dir = dirname(dir);
  return {
    delegated: true,
    cgroupRoot,
    dir,
    controllers: words(await read(join(dir, 'cgroup.controllers'))),
    busy: words(await read(join(dir, 'cgroup.procs'))).length > 0,
  };
}

/** The parent of a rootless CLI's container groups, relative to the hierarchy's root. */
export function containerParent(d: Extract<Delegation, { delegated: true }>): string {
  return join(relative(d.cgroupRoot, d.dir), 'imgbuild');
}

/** The controllers these limits need that the subtree does not offer. */
export function undelegatedControllers(d: { controllers: string[] }, limits: CgroupLimits): string[] {
  const offered = new Set(d.controllers);
  return [...new Set(NEEDS.filter((n) => limits[n.key] !== undefined && !offered.has(n.controller)).map((n) => n.controller))];
}

/** The one-line refusal when a limit's controller is not delegated. */
export function undelegatedMessage(d: Extract<Delegation, { delegated: true }>, missing: string[]): string {
  return `the ${missing.join(' and ')} controller${missing.length > 1 ? 's are' : ' is'} not delegated to this user (${d.dir}/cgroup.controllers has: ${d.controllers.join(' ') || 'none'}): add them with Delegate=cpu cpuset io memory pids in a drop-in for user@.service (/etc/systemd/system/user@.service.d/delegate.conf) and log in again`;
}

/**
 * Moves every process of the subtree's own group into `<subtree>/init`, so that controllers can
 * be enabled below it. A process gone meanwhile is skipped.
 */
export async function evacuate(d: Extract<Delegation, { delegated: true }>): Promise<void> {
  const init = join(d.dir, 'init');
  await mkdir(init, { recursive: true });
  for (const pid of words(await read(join(d.dir, 'cgroup.procs')))) {
    try {
      await writeFile(join(init, 'cgroup.procs'), pid);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new CgroupError(`moving process ${pid} into ${init}: ${(e as Error).message}`, init, { cause: e });
    }
  }
}

/**
 * Creates container `id`'s group under the delegated subtree with these limits. A limit whose
 * controller is not delegated is refused before anything is made.
 */
export async function createDelegatedCgroup(id: string, limits: CgroupLimits, d: Extract<Delegation, { delegated: true }>): Promise<Cgroup> {
  if (limits.devices !== undefined) throw new CgroupError('device rules cannot be applied to a rootless container (they need the v1 devices controller, which is never delegated)', d.dir);
  const missing = undelegatedControllers(d, limits);
  if (missing.length > 0) throw new CgroupError(undelegatedMessage(d, missing), d.dir);
  const needed = NEEDS.filter((n) => limits[n.key] !== undefined).map((n) => n.controller);
  if (d.busy && needed.length > 0) {
    const enabled = new Set(words(await read(join(d.dir, 'cgroup.subtree_control'))));
    if (needed.some((c) => !enabled.has(c))) await evacuate(d);
  }
  return Cgroup.create(id, limits, { cgroupRoot: d.cgroupRoot, version: 2, parent: containerParent(d), delegationRoot: relative(d.cgroupRoot, d.dir) });
}
