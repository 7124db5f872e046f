/**
 * A container's kernel objects: a cgroup (`imgbuild/<id>` per controller) and, for bridge
 * networking, a named netns with a veth and a lease, plus a port proxy process. They are claimed
 * for the store root (claims.ts) and made at start; releaseResources undoes them from the record
 * alone, and releaseKernelById from the id alone (for a record that was never completed).
 */
import { existsSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { Cgroup, CgroupError } from '../host/cgroups.js';
import { containerParent, createDelegatedCgroup, findDelegation } from '../host/rootless-cgroup.js';
import { ROOTLESS_ENV, rootlessIds } from '../host/userns.js';
import { ImgbuildError } from '../errors.js';
import {
  hostVethName,
  netnsPathOf,
  setupNetwork as setupHostNetwork,
  teardownNetwork as teardownHostNetwork,
  type NetworkMode,
  type NetworkOptions,
  type NetworkState,
} from '../host/network.js';
import { setupRootlessNetwork, type RootlessNetwork } from '../host/rootless-network.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import { claimId, unclaimId } from './claims.js';
import { findPortProxies, startPortProxy } from './ports.js';
import { isSameProcess, procStartTime } from './proc.js';
import { pathOf, readRecord, readSpec, type ContainerRecord, type HostConfig } from './record.js';
import { hostNetworkMode, hostsFile, joinedContainer } from './network-options.js';
import { ContainerStateError } from './errors.js';
import type { KernelObjects, LifecycleOptions } from './types.js';

/** The container's cgroup: the caller's when it holds it already, else found by id. */
export async function cgroupOf(rec: ContainerRecord, o: LifecycleOptions): Promise<Cgroup> {
  if (rec.cgroup && rec.cgroup.paths.length === 0) {
    const { pid, pidStartTime } = rec.state;
    return Cgroup.none(rec.id, pid ? { pid, alive: () => isSameProcess(pid, pidStartTime) } : undefined);
  }
  if (o.cgroup && o.cgroup.id === rec.id && (rec.cgroup?.version ?? o.cgroup.version) === o.cgroup.version) return o.cgroup;
  // A v2 group is where the record says (a rootless one lies in the user's delegated subtree).
  const at = rec.cgroup?.version === 2 && rec.cgroup.paths.length === 1 ? relative(o.cgroupRoot ?? '/sys/fs/cgroup', dirname(rec.cgroup.paths[0]!)) : undefined;
  return Cgroup.open(rec.id, { cgroupRoot: o.cgroupRoot, version: rec.cgroup?.version, ...(at && !at.startsWith('..') ? { parent: at } : {}) });
}

/** Rootless: where this CLI's container groups are (under its delegated subtree), if anywhere. */
export async function rootlessParent(o: LifecycleOptions): Promise<string | undefined> {
  if (!process.env[ROOTLESS_ENV]) return undefined;
  const d = await findDelegation({ cgroupRoot: o.cgroupRoot });
  return d.delegated ? containerParent(d) : undefined;
}

/**
 * Rootless: a group under the cgroup v2 subtree delegated to this user; without one (cgroup v1,
 * or no writable v2 subtree) the container runs in the caller's cgroup and limits are refused
 * with the reason.
 */
async function rootlessCgroup(id: string, h: Pick<HostConfig, 'memory' | 'memorySwap' | 'cpus' | 'cpuShares' | 'pidsLimit' | 'deviceRules'>, o: LifecycleOptions): Promise<Cgroup> {
  const asked = [h.memory !== undefined && '--memory', h.memorySwap !== undefined && '--memory-swap', h.cpus !== undefined && '--cpus', h.cpuShares !== undefined && '--cpu-shares', h.pidsLimit !== undefined && '--pids-limit', h.deviceRules && h.deviceRules.length > 0 && 'device rules'].filter(Boolean);
  const d = await findDelegation({ cgroupRoot: o.cgroupRoot, hostUid: rootlessIds()?.uid });
  if (!d.delegated) {
    if (asked.length > 0) throw new ImgbuildError('FAILED_PRECONDITION', `${asked.join(', ')} cannot be applied to a rootless container: ${d.reason}`);
    return Cgroup.none(id);
  }
  try {
    return await createDelegatedCgroup(id, { memory: h.memory, ...(h.memorySwap !== undefined ? { memorySwap: h.memorySwap } : {}), cpus: h.cpus, ...(h.cpuShares !== undefined ? { cpuShares: h.cpuShares } : {}), pidsLimit: h.pidsLimit, ...(h.deviceRules?.length ? { devices: h.deviceRules } : {}) }, d);
  } catch (e) {
    if (asked.length > 0 && e instanceof CgroupError) throw new ImgbuildError('FAILED_PRECONDITION', `${asked.join(', ')} cannot be applied to a rootless container: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * `host` and `none` need nothing set up here: the sandbox itself makes a `none` container's
 * namespace. A rootless helper's is made at start, once the ports are known (acquireResources).
 */
async function setupNetwork(id: string, mode: NetworkMode, o: NetworkOptions): Promise<NetworkState> {
  if (mode === 'host' || mode === 'none' || mode === 'slirp4netns' || mode === 'pasta') return { mode };
  return setupHostNetwork(id, mode, o);
}

async function teardownNetwork(id: string, state: NetworkState | undefined, o: NetworkOptions): Promise<void> {
  // Records of earlier versions may name a namespace for `none`: those are torn down too.
  if (!state || state.mode === 'host' || state.mode === 'container' || state.mode === 'slirp4netns' || state.mode === 'pasta' || (state.mode === 'none' && !state.netnsName)) return;
  await teardownHostNetwork(id, state, o);
}

/**
 * Creates a container's cgroup and network namespace, claimed for `root` first. `run` calls this
 * while the container is still being created (the two are independent; its directory exists
 * already) and hands the promise to the start.
 */
export async function createKernelObjects(
  root: string,
  id: string,
  h: Pick<HostConfig, 'memory' | 'memorySwap' | 'cpus' | 'cpuShares' | 'pidsLimit' | 'networkMode' | 'deviceRules' | 'macAddress'> & { ifaceBySandbox?: boolean },
  o: LifecycleOptions = {},
): Promise<KernelObjects> {
  await claimId(id, root, o.claimsDir);
  const [cgr, netr] = await Promise.allSettled([
    process.env[ROOTLESS_ENV]
      ? rootlessCgroup(id, h, o)
      : Cgroup.create(id, { memory: h.memory, ...(h.memorySwap !== undefined ? { memorySwap: h.memorySwap } : {}), cpus: h.cpus, ...(h.cpuShares !== undefined ? { cpuShares: h.cpuShares } : {}), pidsLimit: h.pidsLimit, ...(h.deviceRules ? { devices: h.deviceRules } : {}) }, { cgroupRoot: o.cgroupRoot }),
    setupNetwork(id, hostNetworkMode(h.networkMode), { stateDir: o.networkStateDir, signal: o.signal, ...(h.macAddress ? { macAddress: h.macAddress } : {}), ...(h.ifaceBySandbox ? { ifaceBySandbox: true } : {}) }),
  ]);
  if (cgr.status === 'fulfilled' && netr.status === 'fulfilled') return { cgroup: cgr.value, network: netr.value };
  // Undo the half that worked.
  if (cgr.status === 'fulfilled') await cgr.value.kill('SIGKILL').then(() => cgr.value.remove()).catch(() => {});
  if (netr.status === 'fulfilled') await teardownNetwork(id, netr.value, { stateDir: o.networkStateDir }).catch(() => {});
  await unclaimId(id, o.claimsDir);
  throw cgr.status === 'rejected' ? cgr.reason : (netr as PromiseRejectedResult).reason;
}

/** Undoes createKernelObjects (for a container that never got created). */
export async function releaseKernelObjects(id: string, k: KernelObjects, o: LifecycleOptions = {}): Promise<void> {
  await Promise.all([
    k.cgroup.kill('SIGKILL').then(() => k.cgroup.remove()),
    teardownNetwork(id, k.network, { stateDir: o.networkStateDir }),
  ]);
  await unclaimId(id, o.claimsDir);
}

/**
 * Creates (or takes from `o.kernel`) the cgroup and network, starts the port proxy and completes
 * the spec for the runtimes; undone by releaseResources on failure. A rootless helper's network
 * comes back as `rootlessNetwork`: its lifeline goes to the sandbox, and the caller closes it once
 * the sandbox has started or failed to.
 */
export async function acquireResources(
  root: string,
  rec: ContainerRecord,
  o: LifecycleOptions & { kernel?: Promise<KernelObjects> },
): Promise<{ spec: SandboxSpec; cgroup: Cgroup; rootlessNetwork?: RootlessNetwork }> {
  const spec = await readSpec(root, rec.id);
  const h = rec.hostConfig;
  const k = await (o.kernel ?? createKernelObjects(root, rec.id, h, o));
  rec.cgroup = { version: k.cgroup.version, paths: k.cgroup.paths };
  // Joined by the sandbox before exec, whichever network the container has.
  spec.cgroupPaths = k.cgroup.paths;
  if (k.network.mode === 'slirp4netns' || k.network.mode === 'pasta') {
    const rn = await setupRootlessNetwork(k.network.mode, { ports: h.portBindings, signal: o.signal });
    try {
      rec.network = { mode: rn.mode, ip: rn.ip, prefixLength: rn.prefixLength, gateway: rn.gateway, dns: rn.dns };
      rec.state.ports = rn.ports;
      spec.netnsPath = rn.netnsPath;
      spec.namespaces = spec.namespaces.filter((n) => n !== 'net');
      const hosts = hostsFile(rec.config.Hostname, { ip: rn.ip, domainname: rec.config.Domainname, extraHosts: h.extraHosts, gateway: rn.hostLoopback });
      await writeFile(pathOf(root, rec.id, 'hosts'), hosts);
      await joinPidIpc(root, rec, spec);
      return { spec, cgroup: k.cgroup, rootlessNetwork: rn };
    } catch (e) {
      rn.close();
      throw e;
    }
  }
  rec.network = k.network;
  const cg = k.cgroup;
  const net = k.network;
  if (net.netnsPath) {
    spec.netnsPath = net.netnsPath;
    spec.namespaces = spec.namespaces.filter((n) => n !== 'net');
    if (net.ifaceBySandbox && net.ip && net.gateway && net.prefixLength !== undefined) {
      spec.netIface = { name: 'eth0', address: net.ip, prefixLength: net.prefixLength, gateway: net.gateway };
    }
  }
  const joined = joinedContainer(h.networkMode);
  if (joined) await joinNetwork(root, rec, joined, spec);
  await joinPidIpc(root, rec, spec);
  if (net.ip) {
    const hosts = hostsFile(rec.config.Hostname, { ip: net.ip, domainname: rec.config.Domainname, extraHosts: h.extraHosts, gateway: net.gateway });
    await writeFile(pathOf(root, rec.id, 'hosts'), hosts);
  }
  if (h.portBindings.length > 0 && net.ip && net.netnsPath) {
    const proxy = await startPortProxy({
      containerIp: net.ip,
      ports: h.portBindings,
      netnsPath: net.netnsPath,
    });
    rec.state.proxyPid = proxy.pid;
    rec.state.proxyStartTime = await procStartTime(proxy.pid);
    rec.state.ports = proxy.ports;
  }
  return { spec, cgroup: cg };
}

/** `--pid`/`--ipc container:X`: the spec joins X's namespaces through its pid 1, whatever the network. */
async function joinPidIpc(root: string, rec: ContainerRecord, spec: SandboxSpec): Promise<void> {
  const h = rec.hostConfig;
  const pidOf = joinedContainer(h.pidMode ?? '');
  if (pidOf) {
    spec.pidnsPath = `/proc/${await runningPid(root, rec, pidOf, 'PID')}/ns/pid`;
    spec.namespaces = spec.namespaces.filter((n) => n !== 'pid');
  }
  const ipcOf = joinedContainer(h.ipcMode ?? '');
  if (ipcOf) {
    spec.ipcnsPath = `/proc/${await runningPid(root, rec, ipcOf, 'IPC')}/ns/ipc`;
    spec.namespaces = spec.namespaces.filter((n) => n !== 'ipc');
  }
}

/** Pid 1 of container `targetId`, which must be running (Docker's words when it is not). */
async function runningPid(root: string, rec: ContainerRecord, targetId: string, what: 'network' | 'PID' | 'IPC'): Promise<number> {
  // Each rootless command makes a user namespace of its own, with no rights in another's: the
  // kernel would refuse to open the other container's namespace (EACCES). Said as what it is.
  if (process.env[ROOTLESS_ENV]) {
    throw new ImgbuildError('FAILED_PRECONDITION', `--${what === 'network' ? 'network' : what.toLowerCase()} container:${targetId.slice(0, 12)} is not available rootless: each imgbuild command runs in a user namespace of its own, which may not enter another container's namespaces`);
  }
  const target = await readRecord(root, targetId);
  const pid = target?.state.status === 'running' ? target.state.pid : undefined;
  if (!target || !pid || !(await isSameProcess(pid, target.state.pidStartTime))) {
    throw new ContainerStateError(rec.id, `cannot join ${what} of a non running container: ${target?.name ?? targetId.slice(0, 12)}`);
  }
  return pid;
}

/**
 * `--network container:X`: the spec joins X's network namespace through its pid 1, and takes X's
 * hosts, resolv.conf and hostname (Docker points the container at X's files). X must be running.
 */
async function joinNetwork(root: string, rec: ContainerRecord, targetId: string, spec: SandboxSpec): Promise<void> {
  spec.netnsPath = `/proc/${await runningPid(root, rec, targetId, 'network')}/ns/net`;
  spec.namespaces = spec.namespaces.filter((n) => n !== 'net');
  await Promise.all((['hosts', 'resolv', 'hostname'] as const).map((f) => copyFile(pathOf(root, targetId, f), pathOf(root, rec.id, f))));
}

/** Stops the port proxy, tears down the network and removes the cgroup (killing what is left in it). */
export async function releaseResources(rec: ContainerRecord, o: LifecycleOptions): Promise<void> {
  const errors: unknown[] = [];
  if (rec.state.proxyPid && (await isSameProcess(rec.state.proxyPid, rec.state.proxyStartTime))) {
    try {
      process.kill(rec.state.proxyPid, 'SIGTERM');
    } catch {
      // already gone
    }
  } else if (rec.hostConfig.portBindings.length > 0) {
    // Started, but its pid never reached the record (the run was killed right after).
    await killPortProxies(new Set([rec.id]));
  }
  // The cgroup and the network are independent: take both down at once.
  await Promise.all([
    (async () => {
      const cg = await cgroupOf(rec, o);
      if (await cg.exists()) {
        await cg.kill('SIGKILL');
        await cg.remove();
      }
    })().catch((e: unknown) => void errors.push(e)),
    (async () => {
      const mode = rec.hostConfig?.networkMode ? hostNetworkMode(rec.hostConfig.networkMode) : undefined;
      await teardownNetwork(rec.id, rec.network ?? (mode && mode !== 'host' ? { mode } : undefined), {
        stateDir: o.networkStateDir,
      });
    })().catch((e: unknown) => void errors.push(e)),
  ]);
  if (errors.length > 0) throw errors[0];
}

/** The host-wide objects container `id` may have, knowing nothing but its id: cgroup, port proxy, netns and veth. */
export async function releaseKernelById(id: string, o: LifecycleOptions): Promise<void> {
  const parent = await rootlessParent(o);
  const cg = await Cgroup.open(id, { cgroupRoot: o.cgroupRoot, ...(parent ? { parent } : {}) }).catch(() => undefined); // no cgroups on this host
  if (cg && (await cg.exists())) {
    await cg.kill('SIGKILL');
    await cg.remove();
  }
  await killPortProxies(new Set([id]));
  if (existsSync(netnsPathOf(id)) || existsSync(`/sys/class/net/${hostVethName(id)}`)) {
    await teardownHostNetwork(id, { mode: 'bridge' }, { stateDir: o.networkStateDir });
  }
}

/** The running port proxies (of the containers `ids` only, when given). */
export async function findProxies(ids?: Set<string>): Promise<{ pid: number; id: string }[]> {
  return (await findPortProxies()).filter((p) => !ids || ids.has(p.id));
}

export async function killPortProxies(ids: Set<string>): Promise<void> {
  for (const p of await findProxies(ids)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** The processes in container `id`'s cgroup (none when the host has no cgroups to look in). */
export async function groupPids(id: string, o: LifecycleOptions): Promise<number[]> {
  const parent = await rootlessParent(o).catch(() => undefined);
  return Cgroup.open(id, { cgroupRoot: o.cgroupRoot, ...(parent ? { parent } : {}) }).then((cg) => cg.pids(), () => []);
}
