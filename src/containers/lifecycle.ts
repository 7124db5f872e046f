/**
 * Starting, observing, signalling and removing containers. There is no daemon: the state on disk
 * plus the kernel (is the pid alive, is anything left in the cgroup) is the truth, and every reader
 * reconciles state.json with it (refreshState).
 *
 * Kernel objects per container: a cgroup (`imgbuild/<id>` per controller) and, for bridge
 * networking, a named netns with a veth and a lease, plus a port proxy process. They are claimed
 * for the store root (claims.ts) and created at start, and destroyed by removeContainer, which
 * works from the record alone, so it also cleans up after an imgbuild process that was killed
 * with SIGKILL. What a killed process left before a record existed, or while one was being
 * removed, is found and removed by pruneLeftovers.
 *
 * After a SIGKILL at any moment the next reader sees a true state: a `created` record whose
 * creator is gone is `running` if its process runs (the start got that far), and otherwise has
 * its kernel objects removed, which also stops a start still in flight (settleCreated).
 */
import { createWriteStream, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OciStore } from '../store/store.js';
import { Cgroup, listGroups } from '../host/cgroups.js';
import type { NetworkMode, NetworkOptions, NetworkState } from '../host/network.js';
import { runSandbox, startDetached, type SandboxIO } from '../sandbox/sandbox.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import { OverlaySnapshotter } from '../snapshots/overlay.js';
import { unmount } from '../snapshots/mount.js';
import { sweepLocks, sweepTempFiles } from '../atomic.js';
import { AbortedError, InvalidArgumentError } from '../errors.js';
import { BrokenContainerError, ContainerStartError, ContainerStateError } from './errors.js';
import { findInitPid, isSameProcess, parentPid, procStartTime } from './proc.js';
import {
  containerDir,
  containersDir,
  deleteContainerDir,
  listRecords,
  pathOf,
  readAllRecords,
  readExitStatus,
  readRecord,
  resolveContainer,
  scanContainerDirs,
  updateRecord,
  withContainerLock,
  writeExitStatus,
  writeRecord,
  type ContainerRecord,
  type ExitStatus,
  type HostConfig,
} from './record.js';
import { claimId, claimOf, DEFAULT_CLAIMS_DIR, unclaimId } from './claims.js';
import { hostsFile } from './spec.js';
import { overlayRoot, snapshotKey, specPath } from './create.js';

export interface LifecycleOptions {
  /** cgroup hierarchy root (tests); default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Host-wide network lease dir; default /run/imgbuild/network. */
  networkStateDir?: string;
  /** Host-wide claims on container ids (claims.ts); default /run/imgbuild/containers. */
  claimsDir?: string;
  /** An already open snapshotter of this root (saves re-opening it). */
  snapshotter?: OverlaySnapshotter;
  /** The container's cgroup when the caller holds it already (saves detecting its paths again). */
  cgroup?: Cgroup;
  signal?: AbortSignal;
}

export function signalNumber(sig: string | number): number {
  if (typeof sig === 'number') return sig;
  const s = sig.toUpperCase();
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.startsWith('SIG') ? s : `SIG${s}`) as keyof typeof osConstants.signals;
  const n = osConstants.signals[name];
  if (n === undefined) throw new InvalidArgumentError(`invalid signal: ${sig}`);
  return n;
}

/** The name of signal number `n` (`SIGTERM`), if the platform has one. */
function signalName(n: number): string | undefined {
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
}

async function cgroupOf(rec: ContainerRecord, o: LifecycleOptions): Promise<Cgroup> {
  if (o.cgroup && o.cgroup.id === rec.id && (rec.cgroup?.version ?? o.cgroup.version) === o.cgroup.version) return o.cgroup;
  return Cgroup.open(rec.id, { cgroupRoot: o.cgroupRoot, version: rec.cgroup?.version });
}

/** Creates the cgroup and network, finishes the spec; undone by releaseResources on failure. */
export interface KernelObjects {
  cgroup: Cgroup;
  network: NetworkState;
}

/*
 * The network module (and the lock library it uses for its host-wide lease table) is loaded only
 * when a network has something to set up or undo: `host` and `none` need nothing from it (the
 * sandbox itself makes a `none` container's namespace), and they are what most runs use.
 */
async function setupNetwork(id: string, mode: NetworkMode, o: NetworkOptions): Promise<NetworkState> {
  if (mode === 'host' || mode === 'none') return { mode };
  return (await import('../host/network.js')).setupNetwork(id, mode, o);
}

async function teardownNetwork(id: string, state: NetworkState | undefined, o: NetworkOptions): Promise<void> {
  // Records of earlier versions may name a namespace for `none`: those need the module.
  if (!state || state.mode === 'host' || (state.mode === 'none' && !state.netnsName)) return;
  await (await import('../host/network.js')).teardownNetwork(id, state, o);
}

/**
 * Creates a container's cgroup and network namespace, claimed for `root` first. `run` calls this
 * while the container is still being created (the two are independent; its directory exists
 * already) and hands the promise to runContainer.
 */
export async function createKernelObjects(
  root: string,
  id: string,
  h: Pick<HostConfig, 'memory' | 'cpus' | 'pidsLimit' | 'networkMode'>,
  o: LifecycleOptions = {},
): Promise<KernelObjects> {
  await claimId(id, root, o.claimsDir);
  const [cgr, netr] = await Promise.allSettled([
    Cgroup.create(id, { memory: h.memory, cpus: h.cpus, pidsLimit: h.pidsLimit }, { cgroupRoot: o.cgroupRoot }),
    setupNetwork(id, h.networkMode, { stateDir: o.networkStateDir, signal: o.signal }),
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

/** Creates (or takes from `o.kernel`) the cgroup and network and completes the spec (for the runtimes). */
export async function acquireResources(
  root: string,
  rec: ContainerRecord,
  o: LifecycleOptions & { kernel?: Promise<KernelObjects> },
): Promise<{ spec: SandboxSpec; cgroup: Cgroup }> {
  const spec = JSON.parse(await readFile(specPath(root, rec.id), 'utf8')) as SandboxSpec;
  const h = rec.hostConfig;
  const k = await (o.kernel ?? createKernelObjects(root, rec.id, h, o));
  rec.cgroup = { version: k.cgroup.version, paths: k.cgroup.paths };
  rec.network = k.network;
  const cg = k.cgroup;
  const net = k.network;
  spec.cgroupPaths = cg.paths;
  if (net.netnsPath) {
    spec.netnsPath = net.netnsPath;
    spec.namespaces = spec.namespaces.filter((n) => n !== 'net');
  }
  if (net.ip) await writeFile(pathOf(root, rec.id, 'hosts'), hostsFile(rec.config.Hostname, net.ip));
  if (h.portBindings.length > 0 && net.ip && net.netnsPath) {
    const { startPortProxy } = await import('./ports.js');
    const proxyPid = await startPortProxy({
      containerIp: net.ip,
      ports: h.portBindings,
      netnsPath: net.netnsPath,
    });
    rec.state.proxyPid = proxyPid;
    rec.state.proxyStartTime = await procStartTime(proxyPid);
  }
  return { spec, cgroup: cg };
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
      const mode = rec.hostConfig?.networkMode;
      await teardownNetwork(rec.id, rec.network ?? (mode && mode !== 'host' ? { mode } : undefined), {
        stateDir: o.networkStateDir,
      });
    })().catch((e: unknown) => void errors.push(e)),
  ]);
  if (errors.length > 0) throw errors[0];
}

export function normaliseExit(r: { exitCode: number; signal?: string | undefined }): { exitCode: number; signal?: string } {
  if (r.signal) {
    const n = osConstants.signals[r.signal as keyof typeof osConstants.signals] ?? 9;
    return { exitCode: 128 + n, signal: r.signal };
  }
  return { exitCode: r.exitCode };
}

/** Maps the sandbox's pre-exec failure to Docker's statuses: 127 not found, 126 not executable, else 125. */
export function mapStartError(e: unknown, argv0: string): ContainerStartError {
  // SandboxError keeps the errno name in errnoCode (its `code` is the error category).
  const err = e as { code?: string; errnoCode?: string; syscall?: string; message?: string };
  const msg = err?.message ?? String(e);
  const code = err?.errnoCode ?? (typeof err?.code === 'string' ? err.code : '');
  const isExec = err?.syscall === 'execve' || /exec/i.test(msg);
  if (isExec && (code === 'ENOENT' || code === 'ENOTDIR')) return new ContainerStartError(`${argv0}: executable file not found (${msg})`, 127, { cause: e });
  if (isExec && ['EACCES', 'ENOEXEC', 'EISDIR', 'EPERM', 'ETXTBSY'].includes(code))
    return new ContainerStartError(`${argv0}: permission denied or not executable (${msg})`, 126, { cause: e });
  return new ContainerStartError(`starting the container: ${msg}`, 125, { cause: e });
}

export type RunIO = SandboxIO;

/** Options of a foreground run, whichever runtime runs it. */
export interface ForegroundOptions extends LifecycleOptions {
  forward?: () => NodeJS.Signals | undefined;
  killGraceMs?: number;
  kernel?: Promise<KernelObjects>;
  /** The caller removes the container as soon as this returns (`--rm`): skip the final state write. */
  skipFinalState?: boolean;
}

/** The record state of a container that has ended with `status`. */
function exitedState(state: ContainerRecord['state'], status: ExitStatus, error?: string): ContainerRecord['state'] {
  return {
    ...state,
    status: 'exited',
    exitCode: status.exitCode,
    signal: status.signal,
    oomKilled: status.oomKilled ?? false,
    finishedAt: status.finishedAt,
    ...(error ? { error } : {}),
  };
}

/**
 * Runs a created container in the foreground with the caller's stdio. Signals delivered through
 * `o.signal` (Ctrl-C) are forwarded to the container's pid 1 as `forwardSignal`, then after
 * `killGraceMs` the whole cgroup is killed so the call always returns.
 */
export async function runContainer(
  store: OciStore,
  id: string,
  io: RunIO,
  o: ForegroundOptions = {},
): Promise<ExitStatus> {
  const root = store.root;
  const rec0 = await readRecord(root, id);
  if (!rec0) throw new ContainerStateError(id, `no such container: ${id}`);
  const rec = rec0;
  if (rec.state.status !== 'created') throw new ContainerStateError(id, `container ${rec.name} is ${rec.state.status}; only a created container can be started`);
  let spec: SandboxSpec;
  let cg: Cgroup;
  // Our own start time (the record names us as the container's watcher) is read meanwhile.
  const monitorStartTime = procStartTime(process.pid);
  try {
    ({ spec, cgroup: cg } = await acquireResources(root, rec, o));
  } catch (e) {
    await releaseResources(rec, o).catch(() => {});
    throw e;
  }
  if (o.signal?.aborted) {
    await releaseResources(rec, o).catch(() => {});
    throw new AbortedError('interrupted before the container started', { cause: o.signal.reason });
  }
  // The record turns `running` once the process exists (onStart below), in one update. Until then
  // it stays `created` with our pid as its creator, which is what lets a reader tell a container
  // whose `run` was killed right here from one still starting.
  const ctl = new AbortController();
  let killTimer: NodeJS.Timeout | undefined;
  let ended = false;
  const onAbort = (): void => {
    const sig = o.forward?.() ?? 'SIGTERM';
    void (async () => {
      const pid = await findInitPid(await cg.pids());
      if (ended) return;
      if (pid) {
        try {
          process.kill(pid, sig);
        } catch {
          // exited meanwhile
        }
      }
      // Still running after the grace period: kill the whole group; the sandbox then reports
      // the SIGKILL as the exit status. Aborting the sandbox is the last resort.
      killTimer = setTimeout(() => {
        void cg.kill('SIGKILL').catch(() => ctl.abort());
        killTimer = setTimeout(() => ctl.abort(), 5_000);
      }, o.killGraceMs ?? 3_000);
    })();
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  let status: ExitStatus;
  // A kept container's output also goes to its log (as Docker's json-file log does), so `logs`
  // shows it later; a --rm container's log would be deleted unread, so it is not written.
  const log = rec.hostConfig.autoRemove ? undefined : createWriteStream(pathOf(root, id, 'log'), { flags: 'a' });
  const teeOut = log && io.stdout ? tee(io.stdout, log) : io.stdout;
  const teeErr = log && io.stderr ? tee(io.stderr, log) : io.stderr;
  try {
    let recorded: Promise<unknown> = Promise.resolve();
    const r = await runSandbox(spec, {
      ...io,
      ...(teeOut ? { stdout: teeOut } : {}),
      ...(teeErr ? { stderr: teeErr } : {}),
      signal: ctl.signal,
      onStart: (info) => {
        const { pid } = info;
        io.onStart?.(info); // the caller's hook too (a terminal's resize)
        recorded = (async () => {
          const [pidStartTime, ownStartTime] = await Promise.all([procStartTime(pid), monitorStartTime]);
          await updateRecord(root, id, (r) => {
            r.cgroup = rec.cgroup;
            r.network = rec.network;
            r.state = {
              ...r.state,
              status: 'running',
              pid,
              pidStartTime,
              proxyPid: rec.state.proxyPid,
              proxyStartTime: rec.state.proxyStartTime,
              monitorPid: process.pid,
              monitorStartTime: ownStartTime,
              startedAt: new Date().toISOString(),
            };
          });
        })().catch(() => {});
      },
    });
    await recorded;
    const oomKilled = await cg.oomKilled().catch(() => false);
    const n = normaliseExit(r);
    status = { ...n, oomKilled, finishedAt: new Date().toISOString() };
  } catch (e) {
    if (ctl.signal.aborted) {
      status = { exitCode: 137, signal: 'SIGKILL', finishedAt: new Date().toISOString() };
      await finish(root, id, status).catch(() => {});
      return status;
    }
    const err = mapStartError(e, spec.process.args[0] ?? '');
    status = { exitCode: err.exitCode, finishedAt: new Date().toISOString() };
    await finish(root, id, status, err.message).catch(() => {});
    throw err;
  } finally {
    ended = true;
    o.signal?.removeEventListener('abort', onAbort);
    if (killTimer) clearTimeout(killTimer);
    if (log) await new Promise<void>((res) => log.end(() => res()));
  }
  // A --rm container is removed by the caller right away; its final state would be written only
  // to be deleted.
  if (!o.skipFinalState) await finish(root, id, status);
  return status;
}

/** Records a container's end: status file plus `exited` state. */
export async function finish(root: string, id: string, status: ExitStatus, error?: string): Promise<void> {
  await writeExitStatus(root, id, status).catch(() => {});
  await updateRecord(root, id, (r) => {
    r.state = { ...exitedState(r.state, status, error), pid: undefined };
  });
}

/** A writable that passes every chunk to `main` and copies it to `copy` (never ending `main`). */
function tee(main: Writable, copy: Writable): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      copy.write(chunk);
      if (main.write(chunk)) cb();
      else main.once('drain', () => cb());
    },
  });
}

/** Starts a created container detached: a monitor outlives us and writes status.json. */
export async function startContainer(store: OciStore, id: string, o: LifecycleOptions & { kernel?: Promise<KernelObjects> } = {}): Promise<ContainerRecord> {
  const root = store.root;
  const rec = await readRecord(root, id);
  if (!rec) throw new ContainerStateError(id, `no such container: ${id}`);
  if (rec.state.status !== 'created') throw new ContainerStateError(id, `container ${rec.name} is ${rec.state.status}; only a created container can be started`);
  let spec: SandboxSpec;
  try {
    ({ spec } = await acquireResources(root, rec, o));
  } catch (e) {
    await releaseResources(rec, o).catch(() => {});
    throw e;
  }
  let d: { pid: number; monitorPid: number };
  try {
    d = await startDetached(spec, { logPath: pathOf(root, id, 'log'), statusPath: pathOf(root, id, 'status'), signal: o.signal });
  } catch (e) {
    await releaseResources(rec, o).catch(() => {});
    const err = mapStartError(e, spec.process.args[0] ?? '');
    await finish(root, id, { exitCode: err.exitCode, finishedAt: new Date().toISOString() }, err.message).catch(() => {});
    throw err;
  }
  const updated = await updateRecord(root, id, async (r) => {
    r.cgroup = rec.cgroup;
    r.network = rec.network;
    r.state = {
      ...r.state,
      status: 'running',
      pid: d.pid,
      pidStartTime: await procStartTime(d.pid),
      monitorPid: d.monitorPid,
      monitorStartTime: await procStartTime(d.monitorPid),
      proxyPid: rec.state.proxyPid,
      proxyStartTime: rec.state.proxyStartTime,
      startedAt: new Date().toISOString(),
    };
  });
  return updated!;
}

/** The host pid of the container's pid 1, when it is running. */
export async function containerPid(rec: ContainerRecord, o: LifecycleOptions = {}): Promise<number | undefined> {
  if (rec.state.status !== 'running') return undefined;
  if (rec.state.pid && (await isSameProcess(rec.state.pid, rec.state.pidStartTime))) return rec.state.pid;
  const cg = await cgroupOf(rec, o);
  return findInitPid(await cg.pids());
}

/**
 * Reconciles a record with the kernel: for a running one, an exit status written by the monitor,
 * or a group that is empty with nobody left to write one, makes the container exited (and a
 * freeze whose holder is gone is undone); a created one whose creator is gone is settled
 * (settleCreated).
 */
export async function refreshState(root: string, rec: ContainerRecord, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  if (rec.state.status === 'created') return settleCreated(root, rec, o);
  if (rec.state.status !== 'running') return rec;
  await thawIfAbandoned(root, rec, o);
  const st = await readExitStatus(root, rec.id);
  let next: ExitStatus | undefined;
  let error: string | undefined;
  if (st) {
    const n = normaliseExit({ exitCode: st.exitCode, signal: st.signal });
    next = { ...st, ...n };
    if (!next.oomKilled) next.oomKilled = await (await cgroupOf(rec, o)).oomKilled().catch(() => false);
  } else {
    const watcherAlive = await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime);
    if (watcherAlive) return rec;
    const cg = await cgroupOf(rec, o);
    if ((await cg.pids()).length > 0) return rec; // orphaned but still running: rm -f / kill can reach it
    const oom = await cg.oomKilled().catch(() => false);
    next = { exitCode: 137, oomKilled: oom, finishedAt: new Date().toISOString() };
    error = 'the process waiting for the container went away before it exited';
  }
  const status = next;
  const updated = await updateRecord(root, rec.id, (r) => {
    if (r.state.status !== 'running') return;
    r.state = exitedState(r.state, status, error);
  });
  return updated ?? rec;
}

/**
 * A `created` container whose creator is gone: the start was cut short somewhere, and the kernel
 * says where. Processes in its cgroup mean the sandbox got the container going (the monitor of a
 * detached start outlives its caller): the record becomes `running`, with the container's pid 1
 * and, as its watcher, that pid's parent (the monitor, which writes the exit status). Otherwise
 * the cgroup and network are removed — which makes a sandbox helper still setting up fail to join
 * them, so nothing can start later — and the container stays `created`, or `exited` when an exit
 * status turned up meanwhile. Under the container's lock, so concurrent readers settle it once.
 */
async function settleCreated(root: string, rec: ContainerRecord, o: LifecycleOptions): Promise<ContainerRecord> {
  // No creator named: settled already (nothing can start it any more).
  if (rec.state.monitorPid === undefined || (await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime))) return rec;
  return withContainerLock(root, rec.id, async () => {
    const cur = await readRecord(root, rec.id);
    if (!cur) return rec;
    if (cur.state.status !== 'created' || cur.state.monitorPid === undefined || (await isSameProcess(cur.state.monitorPid, cur.state.monitorStartTime))) return cur;
    const cg = await cgroupOf(cur, o);
    let released = false;
    for (;;) {
      const pids = await cg.pids();
      if (pids.length > 0) {
        await adoptRunning(cur, cg, pids, o);
        break;
      }
      const st = await readExitStatus(root, cur.id);
      if (st) {
        cur.state = { ...exitedState(cur.state, { ...st, ...normaliseExit(st) }), pid: undefined };
        break;
      }
      if (released) {
        const { monitorPid: _p, monitorStartTime: _t, ...rest } = cur.state;
        cur.state = { ...rest, error: 'the imgbuild process starting it was killed before the container started' };
        break;
      }
      await releaseResources(cur, o).catch(() => {});
      released = true;
    }
    await writeRecord(root, cur);
    return cur;
  });
}

/** Records a container found running without its record saying so (see settleCreated). */
async function adoptRunning(rec: ContainerRecord, cg: Cgroup, pids: number[], o: LifecycleOptions): Promise<void> {
  const pid = await findInitPid(pids);
  const monitor = pid ? await parentPid(pid) : undefined;
  const [pidStartTime, monitorStartTime] = await Promise.all([pid ? procStartTime(pid) : undefined, monitor && monitor > 1 ? procStartTime(monitor) : undefined]);
  rec.cgroup ??= { version: cg.version, paths: cg.paths };
  if (!rec.network && rec.hostConfig.networkMode === 'bridge') {
    const { netnsName, netnsPathOf, hostVethName, leasedState } = await import('../host/network.js');
    rec.network = (await leasedState(rec.id, { stateDir: o.networkStateDir })) ?? { mode: 'bridge', netnsName: netnsName(rec.id), netnsPath: netnsPathOf(rec.id), hostVeth: hostVethName(rec.id) };
  } else rec.network ??= { mode: rec.hostConfig.networkMode };
  const proxy = rec.hostConfig.portBindings.length > 0 ? (await findProxies(new Set([rec.id])))[0] : undefined;
  rec.state = {
    ...rec.state,
    status: 'running',
    pid,
    pidStartTime,
    monitorPid: monitorStartTime ? monitor : undefined,
    monitorStartTime,
    ...(proxy ? { proxyPid: proxy.pid, proxyStartTime: await procStartTime(proxy.pid) } : {}),
    startedAt: new Date().toISOString(),
  };
}

/** `<dir>/frozen-by`: `<pid> <start time>` of a process holding the container frozen (commit). */
function freezeMarker(root: string, id: string): string {
  return join(containerDir(root, id), 'frozen-by');
}

/**
 * Runs `fn` with the container's processes frozen (when it has a freezer), naming us as the
 * holder first, so that a reader finding the group frozen after we were killed knows to thaw it.
 */
export async function withFrozen<T>(root: string, rec: ContainerRecord, o: LifecycleOptions, fn: () => Promise<T>): Promise<T> {
  const cg = await cgroupOf(rec, o);
  await writeFile(freezeMarker(root, rec.id), `${process.pid} ${(await procStartTime(process.pid)) ?? '0'}\n`);
  let frozen = false;
  try {
    frozen = await cg.freeze(true).catch(() => false);
    return await fn();
  } finally {
    if (frozen) await cg.freeze(false).catch(() => {});
    await rm(freezeMarker(root, rec.id), { force: true });
  }
}

/** Thaws a running container left frozen by a process that is gone (a commit, a kill loop). */
async function thawIfAbandoned(root: string, rec: ContainerRecord, o: LifecycleOptions): Promise<void> {
  const holder = await readFile(freezeMarker(root, rec.id), 'utf8').catch(() => undefined);
  const [pid, start] = (holder ?? '').trim().split(' ');
  if (holder !== undefined && (await isSameProcess(Number(pid), start))) return;
  // Read through the recorded paths: the common case (nothing frozen) costs one read.
  const v1 = rec.cgroup?.version === 1 ? rec.cgroup.paths.find((p) => p.includes('/freezer/')) : undefined;
  const probe = v1 ? join(v1, 'freezer.state') : rec.cgroup?.version === 2 ? join(rec.cgroup.paths[0] ?? '', 'cgroup.events') : undefined;
  const text = probe ? await readFile(probe, 'utf8').catch(() => '') : '';
  const frozen = v1 ? text.trim() === 'FROZEN' : /^frozen 1$/m.test(text);
  if (frozen || (!probe && holder !== undefined)) await (await cgroupOf(rec, o)).freeze(false).catch(() => {});
  if (holder !== undefined) await rm(freezeMarker(root, rec.id), { force: true });
}

/** All containers, reconciled; detached `--rm` containers that have exited are removed here. */
export async function listContainers(root: string, o: LifecycleOptions = {}): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const r of await listRecords(root)) {
    const cur = await refreshState(root, r, o);
    // `--rm` containers whose runner is gone: exited ones, and created ones whose creator died.
    const orphan = cur.state.status === 'exited' || cur.state.status === 'created';
    if (orphan && cur.hostConfig?.autoRemove && cur.state.monitorPid !== process.pid) {
      if (!(await isSameProcess(cur.state.monitorPid, cur.state.monitorStartTime))) {
        await removeContainer(root, cur.id, { ...o, force: true }).catch(() => {});
        continue;
      }
    }
    out.push(cur);
  }
  return out;
}

export async function getContainer(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  return refreshState(root, await resolveContainer(root, nameOrId), o);
}

/** Sends a signal to the container's pid 1 (SIGKILL: to every process of its cgroup). */
export async function killContainer(root: string, nameOrId: string, sig: string | number = 'SIGKILL', o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const rec = await getContainer(root, nameOrId, o);
  if (rec.state.status !== 'running') throw new ContainerStateError(rec.id, `container ${rec.name} is not running`);
  const n = signalNumber(sig);
  if (n === 9) {
    await (await cgroupOf(rec, o)).kill('SIGKILL');
    return rec;
  }
  const pid = await containerPid(rec, o);
  if (!pid) throw new ContainerStateError(rec.id, `container ${rec.name} has no running process`);
  try {
    process.kill(pid, n);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  return rec;
}

/** Waits until the container is no longer running (polling the kernel and the status file). */
export async function waitContainer(root: string, id: string, o: LifecycleOptions & { timeoutMs?: number } = {}): Promise<ContainerRecord | undefined> {
  const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
  for (;;) {
    const r = await readRecord(root, id);
    if (!r) return undefined;
    const cur = await refreshState(root, r, o);
    if (cur.state.status !== 'running') return cur;
    if (Date.now() >= deadline) return cur;
    o.signal?.throwIfAborted();
    await sleep(25);
  }
}

/** STOPSIGNAL (default SIGTERM) to pid 1, then SIGKILL to the group after `timeoutSec`. */
export async function stopContainer(root: string, nameOrId: string, o: LifecycleOptions & { timeoutSec?: number } = {}): Promise<ContainerRecord> {
  const rec = await getContainer(root, nameOrId, o);
  if (rec.state.status !== 'running') return rec;
  const sig = rec.config.StopSignal || 'SIGTERM';
  const pid = await containerPid(rec, o);
  if (pid) {
    try {
      process.kill(pid, signalNumber(sig));
    } catch {
      // already exiting
    }
  }
  let cur = await waitContainer(root, rec.id, { ...o, timeoutMs: (o.timeoutSec ?? 10) * 1000 });
  if (cur && cur.state.status === 'running') {
    await (await cgroupOf(rec, o)).kill('SIGKILL').catch(() => {});
    cur = await waitContainer(root, rec.id, { ...o, timeoutMs: 10_000 });
  }
  return cur ?? rec;
}

/**
 * Removes a container: kills what is left (force), tears down network and cgroup, removes the
 * snapshot and the directory, then its claim. Nothing is mounted on the host for a container (the
 * sandbox mounts in its own mount namespace), so there is nothing to unmount here. Each step can
 * be repeated, so a removal cut short is finished by the next `rm` (or prune, once the directory
 * was renamed away). A container with an unreadable record is removed by id all the same.
 */
export async function removeContainer(root: string, nameOrId: string, o: LifecycleOptions & { force?: boolean } = {}): Promise<string> {
  let found: ContainerRecord;
  try {
    found = await resolveContainer(root, nameOrId);
  } catch (e) {
    if (e instanceof BrokenContainerError) return removeBroken(root, e, o);
    throw e;
  }
  const rec = await refreshState(root, found, o);
  if (rec.state.status === 'running' && !o.force) {
    throw new ContainerStateError(rec.id, `container ${rec.name} is running: stop it first or use rm -f`);
  }
  // The writable snapshot is only mounted inside the container's own mount namespace, so it can
  // go at the same time as the kernel objects.
  // A `--runtime runc` run that was killed midway leaves runc state and a host mount of the rootfs.
  if (existsSync(join(containerDir(root, rec.id), 'rootfs')) || existsSync(join(root, 'runc', rec.id))) {
    await (await import('./runc.js')).cleanupRuncBundle(root, rec.id);
  }
  const releasing = releaseResources(rec, o);
  const removeSnapshot = (async () => {
    if (rec.state.status === 'running') await releasing; // never pull a layer from under live processes
    await removeSnapshotOf(root, rec.id, o, rec.snapshotKey);
  })();
  await Promise.all([releasing, removeSnapshot]);
  // The watcher (monitor or a foreground run) goes once the container has; give it a moment.
  for (let i = 0; i < 100 && rec.state.monitorPid !== process.pid && (await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime)); i++) {
    await sleep(20);
  }
  await deleteContainerDir(root, rec.id);
  await unclaimId(rec.id, o.claimsDir);
  return rec.id;
}

async function removeSnapshotOf(root: string, id: string, o: LifecycleOptions, key = snapshotKey(id)): Promise<void> {
  const sn = o.snapshotter ?? (await OverlaySnapshotter.open(overlayRoot(root)));
  await sn.remove(key).catch((e: unknown) => {
    if ((e as { code?: string }).code !== 'NOT_FOUND') throw e;
  });
}

/** rm of a container whose record cannot be read: by id, with -f when anything still runs in it. */
async function removeBroken(root: string, err: BrokenContainerError, o: LifecycleOptions & { force?: boolean }): Promise<string> {
  const { id } = err;
  if (!o.force) {
    const busy = err.process && (await isSameProcess(err.process.pid, err.process.startTime));
    const pids = await groupPids(id, o);
    if (busy || pids.length > 0) throw new ContainerStateError(id, `container ${id.slice(0, 12)} (unreadable record) may still be running: use rm -f`);
  }
  await releaseById(root, id, o);
  await deleteContainerDir(root, id);
  await unclaimId(id, o.claimsDir);
  return id;
}

/**
 * Removes every kernel object, runtime leftover and the snapshot that container `id` may have,
 * knowing nothing but the id (a record that was never completed or cannot be read). Idempotent.
 */
async function releaseById(root: string, id: string, o: LifecycleOptions, dir = containerDir(root, id)): Promise<void> {
  if (existsSync(join(dir, 'rootfs')) || existsSync(join(root, 'runc', id))) {
    await (await import('./runc.js')).cleanupRuncBundle(root, id).catch(() => {});
  }
  await unmount(dir); // nothing is ever mounted in a container dir but the runc rootfs, handled above
  await releaseKernelById(id, o);
  await removeSnapshotOf(root, id, o);
}

/** The host-wide part of releaseById: cgroup, port proxy, netns and veth. */
async function releaseKernelById(id: string, o: LifecycleOptions): Promise<void> {
  const cg = await Cgroup.open(id, { cgroupRoot: o.cgroupRoot }).catch(() => undefined); // no cgroups on this host
  if (cg && (await cg.exists())) {
    await cg.kill('SIGKILL');
    await cg.remove();
  }
  await killPortProxies(new Set([id]));
  const net = await import('../host/network.js');
  if (existsSync(net.netnsPathOf(id)) || existsSync(`/sys/class/net/${net.hostVethName(id)}`)) {
    await net.teardownNetwork(id, { mode: 'bridge' }, { stateDir: o.networkStateDir });
  }
}

async function findProxies(ids?: Set<string>): Promise<{ pid: number; id: string }[]> {
  const { findPortProxies } = await import('./ports.js');
  return (await findPortProxies()).filter((p) => !ids || ids.has(p.id));
}

async function killPortProxies(ids: Set<string>): Promise<void> {
  for (const p of await findProxies(ids)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** The processes in container `id`'s cgroup (none when the host has no cgroups to look in). */
async function groupPids(id: string, o: LifecycleOptions): Promise<number[]> {
  return Cgroup.open(id, { cgroupRoot: o.cgroupRoot }).then((cg) => cg.pids(), () => []);
}

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
 *   lock and temp files of dead processes;
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
  const dirs = await scanContainerDirs(root);
  const drop = (id: string, dir: string): Promise<void> =>
    attempt(async () => {
      await releaseById(root, id, o, dir);
      await rm(dir, { recursive: true, force: true });
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
      await unclaimId(b.id, o.claimsDir);
      out.containers.push(b.id);
    });
  }

  // Snapshots: listed before the directories are looked at again, so that a container created
  // meanwhile (its directory is made before its snapshot) is never taken for a missing one.
  const sn = o.snapshotter ?? (await OverlaySnapshotter.open(overlayRoot(root)));
  const keys: string[] = [];
  await sn.walk((i) => {
    if (/^ctr-[0-9a-f]{64}$/.test(i.key)) keys.push(i.key);
  });
  for (const key of keys) {
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

  // Host-wide kernel objects, likewise listed before their owners are looked for.
  const net = await import('../host/network.js');
  const groups = await listGroups({ cgroupRoot: o.cgroupRoot }).catch(() => new Map<string, { createdMs: number }>());
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
  const ids = new Set([...groups.keys(), ...(await net.listNetnsIds()), ...proxies.map((p) => p.id), ...vethIds, ...ownClaims].filter((id) => /^[0-9a-f]{64}$/.test(id)));
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
      if (p.id !== id || existsSync(net.netnsPathOf(id))) continue;
      try {
        process.kill(p.pid, 'SIGKILL');
        removed = true;
      } catch {
        // gone meanwhile
      }
    }
    const g = groups.get(id);
    if (g && Date.now() - g.createdMs > UNCLAIMED_GROUP_AGE_MS && !existsSync(net.netnsPathOf(id)) && !(await hasTrace(root, id))) {
      // rmdir refuses a group that has processes, so a group in use is never taken.
      const cg = await Cgroup.open(id, { cgroupRoot: o.cgroupRoot }).catch(() => undefined);
      if (cg && (await groupPids(id, o)).length === 0) removed = (await cg.remove({ timeoutMs: 0 }).then(() => true, () => false)) || removed;
    }
    if (removed) out.kernelObjects.push(id);
  }
  if (failure !== undefined) throw failure;
  return out;
}

/**
 * Removes every container that is not running (Docker's `container prune`), which includes the
 * ones whose imgbuild process was killed. Returns the removed ids.
 */
export async function pruneContainers(root: string, o: LifecycleOptions = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const r of await listContainers(root, o)) {
    if (r.state.status === 'running') continue;
    // A container being created right now by a live process is not garbage.
    if (r.state.status === 'created' && r.state.monitorPid !== process.pid && (await isSameProcess(r.state.monitorPid, r.state.monitorStartTime))) continue;
    removed.push(await removeContainer(root, r.id, { ...o, force: true }));
  }
  return removed;
}

export { signalName };
