/**
 * Reaching a container's filesystem from the host (`cp`, `export`). A running container is reached
 * through `/proc/<pid>/root`, its own mount namespace, so its volumes, binds and tmpfs are seen and
 * written as the container sees them, and writes into the rootfs are overlay writes (copy-up), not
 * edits of the upper dir behind the mount's back; it is frozen meanwhile, so that nothing inside can
 * swap a directory for a symlink between our resolution of a path and its use (CVE-2018-15664,
 * which moby answered the same way). A stopped container's rootfs is mounted on a private temporary
 * directory for the length of the call and unmounted after. Every path is then resolved with
 * resolveInRoot: symlinks are followed as if the container's root were `/`.
 */
import { readFile, rmdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { UserNamespaceNeeded } from '../host/userns.js';
import { makeTempMountDir, mountAll, sweepTempMounts, unmount } from '../snapshots/mount.js';
import { ContainerStateError } from './errors.js';
import { withFrozen } from './freeze.js';
import { isSameProcess } from './proc.js';
import { readRecord, readSpec, withContainerLock, type ContainerRecord } from './record.js';
import { containerPid } from './state.js';
import type { LifecycleOptions } from './types.js';

export interface ContainerRoot {
  /** Host path of the container's `/`. */
  path: string;
  running: boolean;
  /** Host paths of the kernel's filesystems mounted inside (proc, sysfs, the /dev tmpfs…): never archived. */
  pseudo: Set<string>;
}

const PSEUDO_FS = new Set(['proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'mqueue', 'securityfs', 'debugfs', 'tracefs', 'bpf', 'fusectl', 'pstore', 'configfs']);

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

async function pseudoMounts(pid: number, base: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const line of (await readFile(`/proc/${pid}/mountinfo`, 'utf8')).split('\n')) {
    const [left, right] = line.split(' - ');
    const point = left?.split(' ')[4];
    const fstype = right?.split(' ')[0];
    if (!point || !fstype || point === '/') continue;
    const m = unescapeMountinfo(point);
    if (PSEUDO_FS.has(fstype) || (m === '/dev' && fstype === 'tmpfs')) out.add(join(base, m));
  }
  return out;
}

/** Whether container path `rel` (root-relative, resolved) lies in a bind, volume or tmpfs of the container. */
export function inVolume(rec: ContainerRecord, rel: string): string | undefined {
  const p = posix.normalize(`/${rel}`);
  const h = rec.hostConfig;
  for (const d of [...h.binds.map((b) => b.destination), ...(h.volumes ?? []).map((v) => v.destination), ...h.tmpfs.map((t) => t.destination)]) {
    const v = posix.normalize(`/${d}`);
    if (p === v || p.startsWith(v.endsWith('/') ? v : `${v}/`)) return v;
  }
  return undefined;
}

/**
 * Runs `fn` with the container's filesystem reachable at a host path (see the module comment).
 * A rootless CLI outside any user namespace (as the user itself) is asked to run again in the
 * running container's namespace, the only one whose processes may open its `/proc/<pid>/root`
 * (a fresh one with the same mapping is a sibling, refused), or in a fresh one to mount a stopped
 * container's layers; nothing has been read or written yet when it is.
 */
export async function withContainerRoot<T>(root: string, rec: ContainerRecord, o: LifecycleOptions, fn: (r: ContainerRoot) => Promise<T>): Promise<T> {
  const outside = (process.getuid?.() ?? 0) !== 0;
  if (rec.state.status === 'running') {
    const pid = await containerPid(rec, o);
    if (!pid) throw new ContainerStateError(rec.id, `container ${rec.name} has no running process`);
    if (outside) throw new UserNamespaceNeeded(pid);
    const path = `/proc/${pid}/root`;
    return withFrozen(root, rec, o, async () => fn({ path, running: true, pseudo: await pseudoMounts(pid, path) }));
  }
  if (outside) throw new UserNamespaceNeeded();
  return whileStopped(root, rec, async () => {
    const spec = await readSpec(root, rec.id);
    const dir = await makeTempMountDir('rootfs');
    try {
      await mountAll(spec.rootfs, dir, o.signal ? { signal: o.signal } : {});
      try {
        return await fn({ path: dir, running: false, pseudo: new Set() });
      } finally {
        await unmount(dir);
      }
    } finally {
      await rmdir(dir).catch(() => {});
    }
  });
}

/**
 * Runs `fn` on a container that is not running, holding its lock: a start (whose claim takes the
 * lock) or a removal waits meanwhile, so its writable layer is never mounted twice at once.
 */
export async function whileStopped<T>(root: string, rec: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  return withContainerLock(root, rec.id, async () => {
    // A killed cp or export may have left this container's layer mounted: undo that first.
    await sweepTempMounts();
    const cur = await readRecord(root, rec.id);
    if (!cur) throw new ContainerStateError(rec.id, `container ${rec.name} was removed meanwhile`);
    const starting = cur.state.status === 'created' && (await isSameProcess(cur.state.monitorPid, cur.state.monitorStartTime));
    if (cur.state.status === 'running' || starting) throw new ContainerStateError(rec.id, `container ${rec.name} was started meanwhile; try again`);
    return fn();
  });
}
