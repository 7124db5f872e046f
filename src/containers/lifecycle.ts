/**
 * Starting, observing, signalling and removing containers. There is no daemon: the state on disk
 * plus the kernel (is the pid alive, is anything left in the cgroup) is the truth, and every reader
 * reconciles state.json with it (refreshState).
 *
 * Kernel objects per container: a cgroup (`imgbuild/<id>` per controller) and, for bridge
 * networking, a named netns with a veth and a lease, plus a port proxy process. They are created at
 * start and destroyed by removeContainer, which works from the record alone, so it also cleans up
 * after an imgbuild process that was killed with SIGKILL.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OciStore } from '../layers/store.js';
import { Cgroup } from '../runner/cgroups.js';
import type { NetworkMode, NetworkOptions, NetworkState } from '../runner/network.js';
import { runSandbox, startDetached, type SandboxIO } from '../runner/sandbox.js';
import type { SandboxSpec } from '../runner/spec.js';
import { OverlaySnapshotter } from '../overlay/overlay.js';
import { AbortedError } from '../errors.js';
import { ContainerStartError, ContainerStateError } from './errors.js';
import { findInitPid, isSameProcess, procStartTime } from './proc.js';
import {
  containerDir,
  listRecords,
  pathOf,
  readExitStatus,
  readRecord,
  resolveContainer,
  updateRecord,
  withContainerLock,
  writeExitStatus,
  type ContainerRecord,
  type ExitStatus,
  type HostConfig,
} from './record.js';
import { hostsFile } from './spec.js';
import { overlayRoot, snapshotKey, specPath } from './create.js';

export interface LifecycleOptions {
  /** cgroup hierarchy root (tests); default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Host-wide network lease dir; default /run/imgbuild/network. */
  networkStateDir?: string;
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
  if (n === undefined) throw new ContainerStateError('', `unknown signal ${sig}`);
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
  return (await import('../runner/network.js')).setupNetwork(id, mode, o);
}

async function teardownNetwork(id: string, state: NetworkState | undefined, o: NetworkOptions): Promise<void> {
  // Records of earlier versions may name a namespace for `none`: those need the module.
  if (!state || state.mode === 'host' || (state.mode === 'none' && !state.netnsName)) return;
  await (await import('../runner/network.js')).teardownNetwork(id, state, o);
}

/**
 * Creates a container's cgroup and network namespace. `run` calls this while the container is
 * still being created (the two are independent) and hands the promise to runContainer.
 */
export async function createKernelObjects(
  id: string,
  h: Pick<HostConfig, 'memory' | 'cpus' | 'pidsLimit' | 'networkMode'>,
  o: LifecycleOptions = {},
): Promise<KernelObjects> {
  const [cgr, netr] = await Promise.allSettled([
    Cgroup.create(id, { memory: h.memory, cpus: h.cpus, pidsLimit: h.pidsLimit }, { cgroupRoot: o.cgroupRoot }),
    setupNetwork(id, h.networkMode, { stateDir: o.networkStateDir, signal: o.signal }),
  ]);
  if (cgr.status === 'fulfilled' && netr.status === 'fulfilled') return { cgroup: cgr.value, network: netr.value };
  // Undo the half that worked.
  if (cgr.status === 'fulfilled') await cgr.value.kill('SIGKILL').then(() => cgr.value.remove()).catch(() => {});
  if (netr.status === 'fulfilled') await teardownNetwork(id, netr.value, { stateDir: o.networkStateDir }).catch(() => {});
  throw cgr.status === 'rejected' ? cgr.reason : (netr as PromiseRejectedResult).reason;
}

/** Undoes createKernelObjects (for a container that never got created). */
export async function releaseKernelObjects(id: string, k: KernelObjects, o: LifecycleOptions = {}): Promise<void> {
  await Promise.all([
    k.cgroup.kill('SIGKILL').then(() => k.cgroup.remove()),
    teardownNetwork(id, k.network, { stateDir: o.networkStateDir }),
  ]);
}

/** Creates (or takes from `o.kernel`) the cgroup and network and completes the spec (for the runtimes). */
export async function acquireResources(
  root: string,
  rec: ContainerRecord,
  o: LifecycleOptions & { kernel?: Promise<KernelObjects> },
): Promise<{ spec: SandboxSpec; cgroup: Cgroup }> {
  const spec = JSON.parse(await readFile(specPath(root, rec.id), 'utf8')) as SandboxSpec;
  const h = rec.hostConfig;
  const k = await (o.kernel ?? createKernelObjects(rec.id, h, o));
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
 * Reconciles a running record with the kernel: an exit status written by the monitor, or a group
 * that is empty with nobody left to write one, makes the container exited.
 */
export async function refreshState(root: string, rec: ContainerRecord, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  if (rec.state.status !== 'running') return rec;
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
 * snapshot and the directory. Nothing is mounted on the host for a container (the sandbox mounts
 * in its own mount namespace), so there is nothing to unmount here.
 */
export async function removeContainer(root: string, nameOrId: string, o: LifecycleOptions & { force?: boolean } = {}): Promise<string> {
  const rec = await refreshState(root, await resolveContainer(root, nameOrId), o);
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
    const sn = o.snapshotter ?? (await OverlaySnapshotter.open(overlayRoot(root)));
    if (rec.state.status === 'running') await releasing; // never pull a layer from under live processes
    await sn.remove(rec.snapshotKey ?? snapshotKey(rec.id)).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'NOT_FOUND') throw e;
    });
  })();
  await Promise.all([releasing, removeSnapshot]);
  // The watcher (monitor or a foreground run) goes once the container has; give it a moment.
  for (let i = 0; i < 100 && rec.state.monitorPid !== process.pid && (await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime)); i++) {
    await sleep(20);
  }
  // Under the container's lock, so a concurrent state update cannot write into a half-deleted dir.
  await withContainerLock(root, rec.id, () => rm(containerDir(root, rec.id), { recursive: true, force: true }));
  return rec.id;
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
