/**
 * Starting a created container with the native sandbox: in the foreground with the caller's
 * stdio (startForeground), or detached under a monitor that outlives us (startContainer). The
 * record turns `running` once the process exists; until then it stays `created` with our pid as
 * its creator, which is what lets a reader tell a start that was killed from one in flight.
 */
import { seccompCacheDir } from '../store/paths.js';
import { createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import type { Cgroup } from '../host/cgroups.js';
import { runSandbox, startDetached } from '../sandbox/sandbox.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import type { RootlessNetwork } from '../host/rootless-network.js';
import { sandboxRootfs, type SandboxRootfs } from '../snapshots/mount.js';
import type { OciStore } from '../store/store.js';
import { AbortedError } from '../errors.js';
import { finish, mapStartError, normaliseExit } from './exit.js';
import { findInitPid, procStartTime } from './proc.js';
import { pathOf, updateRecord, type ContainerRecord, type ExitStatus } from './record.js';
import { acquireResources, releaseResources } from './resources.js';
import { emitContainerEnd, emitContainerEvent } from './events.js';
import { abandonStart, claimStart } from './starting.js';
import type { ForegroundOptions, KernelObjects, LifecycleOptions, RunIO } from './types.js';

/**
 * Runs a created container in the foreground with the caller's stdio. An abort of `o.signal`
 * (Ctrl-C) sends `o.forward()` (default SIGTERM) to the container's pid 1, then after
 * `killGraceMs` the whole cgroup is killed so the call always returns.
 */
export async function startForeground(
  store: OciStore,
  id: string,
  io: RunIO,
  o: ForegroundOptions = {},
): Promise<ExitStatus> {
  const root = store.root;
  const claim = await claimStart(root, id, o);
  const { rec } = claim;
  id = rec.id;
  let spec: SandboxSpec;
  let cg: Cgroup;
  let rn: RootlessNetwork | undefined;
  let live: SandboxRootfs;
  // Our own start time (the record names us as the container's watcher) is read meanwhile.
  const monitorStartTime = procStartTime(process.pid);
  try {
    ({ spec, cgroup: cg, rootlessNetwork: rn } = await acquireResources(root, rec, o));
    ({ spec, live } = await withLiveRootfs(spec, o.signal));
  } catch (e) {
    rn?.close();
    await releaseResources(rec, o).catch(() => {});
    await abandonStart(root, claim, e as Error);
    throw e;
  }
  if (o.signal?.aborted) {
    rn?.close();
    await live.detach().catch(() => {});
    await releaseResources(rec, o).catch(() => {});
    const err = new AbortedError('interrupted before the container started', { cause: o.signal.reason });
    await abandonStart(root, claim, err);
    throw err;
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
      seccompCacheDir: seccompCacheDir(root),
      ...(teeOut ? { stdout: teeOut } : {}),
      ...(teeErr ? { stderr: teeErr } : {}),
      signal: ctl.signal,
      ...(rn ? { lifeline: rn.lifeline } : {}),
      onStart: (info) => {
        const { pid } = info;
        // The sandbox holds the namespace and the lifeline now.
        rn?.close();
        void live.detach().catch(() => {});
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
              ports: rec.state.ports,
              monitorPid: process.pid,
              monitorStartTime: ownStartTime,
              startedAt: new Date().toISOString(),
            };
          });
          await emitContainerEvent(root, rec, 'start');
        })().catch(() => {});
      },
    });
    await recorded;
    const oomKilled = await cg.oomKilled().catch(() => false);
    const n = normaliseExit(r);
    status = { ...n, oomKilled, finishedAt: new Date().toISOString() };
    await emitContainerEnd(root, rec, status);
  } catch (e) {
    if (ctl.signal.aborted) {
      status = { exitCode: 137, signal: 'SIGKILL', finishedAt: new Date().toISOString() };
      await finish(root, id, status).catch(() => {});
      await emitContainerEnd(root, rec, status);
      return status;
    }
    const err = mapStartError(e, spec.process.args[0] ?? '');
    await releaseResources(rec, o).catch(() => {});
    await abandonStart(root, claim, err);
    throw err;
  } finally {
    rn?.close();
    await live.detach().catch(() => {});
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

/**
 * Starts a created or exited container detached (by id, name or id prefix): a monitor outlives us,
 * copies its output into the log and writes status.json when it ends. An exited container starts
 * again on its own writable snapshot. A start that fails leaves the container as it was (created
 * or exited, with the failure as its error) and nothing of the attempt behind; ContainerStartError
 * carries Docker's status (125, or 126/127 for a command that cannot run).
 */
export async function startContainer(store: OciStore, nameOrId: string, o: LifecycleOptions & { kernel?: Promise<KernelObjects> } = {}): Promise<ContainerRecord> {
  const root = store.root;
  const claim = await claimStart(root, nameOrId, o);
  const { rec } = claim;
  const id = rec.id;
  let spec: SandboxSpec;
  let rn: RootlessNetwork | undefined;
  let live: SandboxRootfs;
  try {
    ({ spec, rootlessNetwork: rn } = await acquireResources(root, rec, o));
    ({ spec, live } = await withLiveRootfs(spec, o.signal));
  } catch (e) {
    rn?.close();
    await releaseResources(rec, o).catch(() => {});
    await abandonStart(root, claim, e as Error);
    throw e;
  }
  let d: { pid: number; monitorPid: number };
  try {
    d = await startDetached(spec, {
      ...(rn ? { lifeline: rn.lifeline } : {}),
      logPath: pathOf(root, id, 'log'),
      statusPath: pathOf(root, id, 'status'),
      ...(rec.hostConfig.interactive ? { stdinPath: pathOf(root, id, 'stdin') } : {}),
      signal: o.signal,
      seccompCacheDir: seccompCacheDir(root),
    });
  } catch (e) {
    await live.detach().catch(() => {});
    await releaseResources(rec, o).catch(() => {});
    const err = mapStartError(e, spec.process.args[0] ?? '');
    await abandonStart(root, claim, err);
    throw err;
  } finally {
    rn?.close();
  }
  await live.detach().catch(() => {});
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
      ports: rec.state.ports,
      startedAt: new Date().toISOString(),
    };
  });
  await emitContainerEvent(root, rec, 'start');
  return updated!;
}

/**
 * The spec with a rootfs the sandbox can mount itself (snapshots/mount.ts sandboxRootfs: a
 * fuse-overlayfs rootfs is mounted here and bound); `live.detach` once its process exists.
 */
async function withLiveRootfs(spec: SandboxSpec, signal?: AbortSignal): Promise<{ spec: SandboxSpec; live: SandboxRootfs }> {
  const live = await sandboxRootfs(spec.rootfs, signal ? { signal } : {});
  return { spec: live.rootfs === spec.rootfs ? spec : { ...spec, rootfs: live.rootfs }, live };
}
