/**
 * What killed imgbuild processes left behind: containers half made or half removed, and kernel
 * objects or snapshots of no container. Found by scanning (directories, snapshots, cgroups,
 * namespaces, veths, port proxies, claims), never by trusting a record that may not exist.
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Cgroup, listGroups } from '../host/cgroups.js';
import { listNetnsIds, netnsPathOf, networkStateDir, removeIdleBridge } from '../host/network.js';
import type { OverlaySnapshotter } from '../snapshots/overlay.js';
import { existingContainerSnapshotters } from './snapshotter.js';
import { sweepTempMounts } from '../snapshots/mount.js';
import { sweepLocks, sweepTempFiles } from '../atomic.js';
import { claimOf, DEFAULT_CLAIMS_DIR, unclaimId } from './claims.js';
import { isSameProcess } from './proc.js';
import { containerDir, containersDir, deleteContainerDir, readAllRecords, scanContainerDirs } from './record.js';
import { releaseById } from './remove.js';
import { sweepContainerIds, releaseContainerIds } from './userns.js';
import { findProxies, groupPids, releaseKernelById, rootlessParent } from './resources.js';
import type { LifecycleOptions } from './types.js';

/** Whether `root` has anything of container `id`: its directory, or one being made or deleted. */
async function hasTrace(root: string, id: string): Promise<boolean> {
  const names = await readdir(containersDir(root)).catch(() => [] as string[]);
  return names.some((n) => n === id || n === `.removing-${id}` || n.startsWith(`.creating-${id}-`));
}

/** An empty group nobody claims is left alone this long: an earlier version may be about to use it. */
const UNCLAIMED_GROUP_AGE_MS = 60_000;

export interface Leftovers {
  /** Ids of containers (complete or not) whose remains were removed. */
  containers: string[];
  /** Ids whose kernel objects (cgroup, netns, veth, port proxy) were removed without a container. */
  kernelObjects: string[];
  /** Keys of container snapshots that belonged to no container. */
  snapshots: string[];
}

/**
 * Removes what killed imgbuild processes left behind, and nothing that a live process or a
 * container still uses:
 * - directories of containers being created whose creator is gone, with their cgroup, network,
 *   port proxy and snapshot; directories of removals cut short; unreadable records nothing runs in;
 *   lock and temp files of dead processes; temporary mounts of a killed `cp` or `export`;
 * - `ctr-<id>` snapshots of no container;
 * - host-wide kernel objects — cgroups under `imgbuild/` (v1 and v2), netns `imgbuild-<id>` and
 *   their veths, port proxies — of ids claimed by this root, or by a root that no longer has
 *   them, that belong to no container; an empty group nobody claims (made by an earlier version)
 *   once it is a minute old.
 */
export async function pruneLeftovers(root: string, o: LifecycleOptions = {}): Promise<Leftovers> {
  const out: Leftovers = { containers: [], kernelObjects: [], snapshots: [] };
  // One leftover that cannot be removed does not keep the others: the first failure is thrown at
  // the end, and what failed stays for the next prune.
  let failure: unknown;
  const attempt = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      failure ??= e;
    }
  };
  // A killed cp or export's temporary mount of a stopped container's layer, before anything
  // below removes that layer.
  await attempt(async () => void (await sweepTempMounts()));
  const dirs = await scanContainerDirs(root);
  const drop = (id: string, dir: string): Promise<void> =>
    attempt(async () => {
      await releaseById(root, id, o, dir);
      await rm(dir, { recursive: true, force: true });
      await releaseContainerIds(root, id);
      await unclaimId(id, o.claimsDir);
      out.containers.push(id);
    });
  for (const c of dirs.creating) {
    if (!(await isSameProcess(c.pid, c.startTime))) await drop(c.id, c.dir);
  }
  for (const id of dirs.removing) await drop(id, join(containersDir(root), `.removing-${id}`));
  for (const id of dirs.bare) await drop(id, containerDir(root, id));
  // Locks and half-written state files of processes that are gone.
  await attempt(async () => void (await sweepLocks(containersDir(root))));
  for (const id of dirs.ids) await attempt(async () => void (await sweepTempFiles(containerDir(root, id))));
  for (const b of (await readAllRecords(root)).broken) {
    if (b.process && (await isSameProcess(b.process.pid, b.process.startTime))) continue; // an earlier version creating it
    if ((await groupPids(b.id, o)).length > 0) continue; // rm -f decides
    await attempt(async () => {
      await releaseById(root, b.id, o);
      await deleteContainerDir(root, b.id);
      await releaseContainerIds(root, b.id);
      await unclaimId(b.id, o.claimsDir);
      out.containers.push(b.id);
    });
  }

  // Snapshots: listed before the directories are looked at again, so that a container created
  // meanwhile (its directory is made before its snapshot) is never taken for a missing one.
  const keys: [OverlaySnapshotter, string][] = [];
  for (const sn of await existingContainerSnapshotters(root, o)) {
    await sn.walk((i) => {
      if (/^ctr-[0-9a-f]{64}$/.test(i.key)) keys.push([sn, i.key]);
    });
  }
  for (const [sn, key] of keys) {
    if (await hasTrace(root, key.slice(4))) continue;
    await attempt(async () => {
      const gone = await sn.remove(key).then(
        () => true,
        (e: unknown) => {
          if ((e as { code?: string }).code === 'NOT_FOUND') return false; // removed meanwhile
          throw e;
        },
      );
      if (gone) out.snapshots.push(key);
    });
  }

  // Id ranges (--userns=auto) of containers removed and builds killed.
  await attempt(async () => void (await sweepContainerIds(root)));

  // Host-wide kernel objects, likewise listed before their owners are looked for.
  // A rootless CLI's groups are under the cgroup subtree delegated to it.
  const parent = await rootlessParent(o).catch(() => undefined);
  const groups = await listGroups({ cgroupRoot: o.cgroupRoot, ...(parent ? { parent, version: 2 as const } : {}) }).catch(() => new Map<string, { createdMs: number }>());
  const proxies = await findProxies();
  // A host veth names only 12 hex digits of its id: it is matched against the claims.
  const veths = (await readdir('/sys/class/net').catch(() => [] as string[])).map((n) => /^ib([0-9a-f]{12})$/.exec(n)?.[1]).filter(Boolean);
  const claimed = veths.length > 0 ? await readdir(o.claimsDir ?? DEFAULT_CLAIMS_DIR).catch(() => [] as string[]) : [];
  const vethIds = claimed.filter((id) => veths.includes(id.slice(0, 12)));
  // A claim of this root with no object left (a removal killed after its objects were gone) is
  // looked at too, so that it goes with the rest.
  const own = resolve(root);
  const claims = await readdir(o.claimsDir ?? DEFAULT_CLAIMS_DIR).catch(() => [] as string[]);
  const ownClaims: string[] = [];
  for (const id of claims) if ((await claimOf(id, o.claimsDir)) === own) ownClaims.push(id);
  const ids = new Set([...groups.keys(), ...(await listNetnsIds()), ...proxies.map((p) => p.id), ...vethIds, ...ownClaims].filter((id) => /^[0-9a-f]{64}$/.test(id)));
  for (const id of ids) {
    const owner = await claimOf(id, o.claimsDir);
    if (owner !== undefined) {
      if (await hasTrace(owner, id)) continue; // a container of its root, or being made or removed there
      // Processes of another root's container whose record is gone (a root moved or deleted
      // under running containers) are that root's owner's to deal with: only idle objects go.
      if (owner !== resolve(root) && (await groupPids(id, o)).length > 0) continue;
      // Its snapshot, if any, is in that root's store: this root's went above, another's is left to it.
      await attempt(async () => {
        await releaseKernelById(id, o);
        await unclaimId(id, o.claimsDir);
        out.kernelObjects.push(id);
      });
      continue;
    }
    // Unclaimed: made by an earlier version, for this root or another. Only what cannot be in use
    // goes: a proxy whose namespace is gone, a group that is empty, old and of no container here.
    let removed = false;
    for (const p of proxies) {
      if (p.id !== id || existsSync(netnsPathOf(id))) continue;
      try {
        process.kill(p.pid, 'SIGKILL');
        removed = true;
      } catch {
        // gone meanwhile
      }
    }
    const g = groups.get(id);
    if (g && Date.now() - g.createdMs > UNCLAIMED_GROUP_AGE_MS && !existsSync(netnsPathOf(id)) && !(await hasTrace(root, id))) {
      // rmdir refuses a group that has processes, so a group in use is never taken.
      const cg = await Cgroup.open(id, { cgroupRoot: o.cgroupRoot, ...(parent ? { parent, version: 2 as const } : {}) }).catch(() => undefined);
      if (cg && (await groupPids(id, o)).length === 0) removed = (await cg.remove({ timeoutMs: 0 }).then(() => true, () => false)) || removed;
    }
    if (removed) out.kernelObjects.push(id);
  }
  // The bridge stays between containers (as docker0 does); with no lease left it goes here, and
  // so do the lease table's lock and temp files of processes killed while they held them.
  const net = { ...(o.networkStateDir ? { stateDir: o.networkStateDir } : {}) };
  await attempt(async () => void (await removeIdleBridge(net)));
  await attempt(async () => void (await sweepLocks(networkStateDir(net))));
  await attempt(async () => void (await sweepTempFiles(networkStateDir(net))));
  if (failure !== undefined) throw failure;
  return out;
}
