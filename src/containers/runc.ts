/**
 * `run --runtime runc`: the same container run by runc instead of the native sandbox. The
 * container's dir is an OCI bundle runc runs as it is (create.ts); a start uses a bundle of its
 * own beside it, `<dir>/runc-bundle/config.json` (toOciConfig of the finished spec: the network
 * namespace made for it, the container's own cgroup through cgroupsPath), over the same empty
 * `<dir>/rootfs` with the overlay among its mounts, so nothing is mounted on the host. runc keeps
 * its state under `<root>/runc` (its --root), so a store's containers and their runc state live
 * and go together.
 *
 * Foreground only (`runc run`); the exit status is the app's, runc's own failures (read from its
 * JSON log) map to 125/126/127 like the native sandbox's.
 */
import { sandboxRootfs, type SandboxRootfs } from '../snapshots/mount.js';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runcRoot } from '../store/paths.js';
import type { OciStore } from '../store/store.js';
import { unmount } from '../snapshots/mount.js';
import { netnsName, netnsPathOf, setupLoopbackNetns } from '../host/network.js';
import { toOciConfig } from '../sandbox/sandbox.js';
import { AbortedError, ImgbuildError } from '../errors.js';
import { ContainerStartError, ContainerStateError } from './errors.js';
import { finish } from './exit.js';
import { findInitPid, procStartTime } from './proc.js';
import { BUNDLE_ROOTFS, containerDir, readRecord, updateRecord, type ExitStatus } from './record.js';
import { acquireResources, releaseResources } from './resources.js';
import { signalName } from './signals.js';
import type { ForegroundOptions, RunIO } from './types.js';

export type Runtime = 'imgbuild' | 'runc';

/** runc's --root for a store: its state dirs, one per running container. */
export { runcRoot };

function bundleRootfs(root: string, id: string): string {
  return join(containerDir(root, id), BUNDLE_ROOTFS);
}

function runBundle(root: string, id: string): string {
  return join(containerDir(root, id), 'runc-bundle');
}

function exec(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, (err, _stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stderr: String(stderr) });
    });
  });
}

/** runc's JSON log → the messages of its error entries. */
async function runcErrors(logPath: string): Promise<string[]> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as { level?: string; msg?: string };
      if (e.level === 'error' || e.level === 'fatal') out.push(e.msg ?? line);
    } catch {
      // not JSON: a Go panic or the like
      out.push(line);
    }
  }
  return out;
}

/** Docker's statuses for a runtime that could not start the app: 127 not found, 126 not executable, else 125. */
function startError(msg: string, argv0: string): ContainerStartError {
  if (/executable file not found|no such file or directory/i.test(msg) && /exec/i.test(msg))
    return new ContainerStartError(`${argv0}: executable file not found (runc: ${msg})`, 127, { cause: new ImgbuildError('NOT_FOUND', msg) });
  if (/permission denied|exec format error/i.test(msg) && /exec/i.test(msg))
    return new ContainerStartError(`${argv0}: permission denied or not executable (runc: ${msg})`, 126, { cause: new ImgbuildError('PERMISSION_DENIED', msg) });
  return new ContainerStartError(`starting the container with runc: ${msg}`, 125);
}

/**
 * Whether a `--runtime runc` run may have left something (its state, its bundle, or from earlier
 * versions a rootfs mounted on the host, which shows as a non-empty `rootfs`): cheap checks, as
 * every `rm` asks.
 */
export function hasRuncLeftovers(root: string, id: string, dir = containerDir(root, id)): boolean {
  if (existsSync(join(runcRoot(root), id)) || existsSync(join(dir, 'runc-bundle'))) return true;
  try {
    return readdirSync(join(dir, BUNDLE_ROOTFS)).length > 0;
  } catch {
    return false;
  }
}

/**
 * Undoes what a runc run leaves on the host: runc's state (`runc delete -f`), the start's bundle
 * and (from earlier versions) a rootfs mounted on the host. Idempotent; removeContainer calls it
 * for a run that was killed midway.
 */
export async function cleanupRuncBundle(root: string, id: string, o: { runc?: string } = {}): Promise<void> {
  if (existsSync(join(runcRoot(root), id))) {
    const r = await exec(o.runc ?? 'runc', ['--root', runcRoot(root), 'delete', '-f', id]);
    if (r.code !== 0 && existsSync(join(runcRoot(root), id)))
      throw new ImgbuildError('INTERNAL', `runc delete -f ${id}: ${r.stderr.trim()}`);
  }
  const rootfs = bundleRootfs(root, id);
  if (existsSync(rootfs) && (await isMountPoint(rootfs))) await unmount(rootfs);
  await rm(runBundle(root, id), { recursive: true, force: true });
}

async function isMountPoint(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return info.split('\n').some((l) => l.split(' ')[4] === dir);
}

/**
 * Runs a created container in the foreground with runc. Mirrors startForeground (start.ts): the record turns
 * `running` once runc reports the container's pid, Ctrl-C (o.signal) is passed on to the app (runc
 * proxies signals) and, after `killGraceMs`, the whole cgroup is killed.
 */
export async function startForegroundWithRunc(
  store: OciStore,
  id: string,
  io: RunIO,
  o: ForegroundOptions & {
    /** The runc binary (default `runc` from PATH). */
    runc?: string;
  } = {},
): Promise<ExitStatus> {
  const root = store.root;
  const runc = o.runc ?? 'runc';
  const rec = await readRecord(root, id);
  if (!rec) throw new ContainerStateError(id, `no such container: ${id}`);
  if (rec.state.status !== 'created') throw new ContainerStateError(id, `container ${rec.name} is ${rec.state.status}; only a created container can be started`);
  const cdir = containerDir(root, id);
  const rootfs = bundleRootfs(root, id);
  const logPath = join(cdir, 'runc.log');
  let acquired = false;
  let live: SandboxRootfs | undefined;
  try {
    const { spec: made, cgroup, rootlessNetwork } = await acquireResources(root, rec, o);
    acquired = true;
    // A fuse-overlayfs rootfs is mounted here and runc binds it (snapshots/mount.ts).
    live = await sandboxRootfs(made.rootfs, o.signal ? { signal: o.signal } : {});
    const spec = live.rootfs === made.rootfs ? made : { ...made, rootfs: live.rootfs };
    if (rootlessNetwork) {
      rootlessNetwork.close();
      throw new ImgbuildError('NOT_IMPLEMENTED', `--runtime runc cannot join a rootless ${rootlessNetwork.mode} network: use the default runtime, or --network none or host`);
    }
    if (spec.init) throw new ImgbuildError('NOT_IMPLEMENTED', '--init is not available with --runtime runc');
    // runc leaves a new network namespace's loopback down; `none` means lo up (as with our own
    // runtime), so runc joins a named namespace made here, removed with the container.
    if (rec.network?.mode === 'none' && !spec.netnsPath) {
      // recorded before it is made, so that `rm` removes it whatever happens next
      rec.network = { mode: 'none', netnsName: netnsName(id), netnsPath: netnsPathOf(id) };
      await updateRecord(root, id, (r) => {
        r.network = rec.network;
        r.cgroup = rec.cgroup;
      });
      await setupLoopbackNetns(id, o.signal ? { signal: o.signal } : {});
      spec.netnsPath = netnsPathOf(id);
      spec.namespaces = spec.namespaces.filter((n) => n !== 'net');
    }
    // The container's own cgroup (made with its limits by acquireResources): runc joins it.
    const config = toOciConfig(spec, { rootPath: rootfs, rootfsInMounts: true, cgroupsPath: cgroupsPathOf(cgroup.paths[0] ?? '', id) });
    await mkdir(rootfs, { recursive: true }); // containers made by earlier versions have none
    await mkdir(runBundle(root, id), { recursive: true });
    await writeFile(join(runBundle(root, id), 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await mkdir(runcRoot(root), { recursive: true, mode: 0o700 });
    await rm(logPath, { force: true });
    if (o.signal?.aborted) throw new AbortedError('interrupted before the container started', { cause: o.signal.reason });
    return await runRunc(root, id, runc, logPath, cgroup, spec.process.args[0] ?? '', io, o);
  } catch (e) {
    const status = { exitCode: (e as { exitCode?: number }).exitCode ?? 125, finishedAt: new Date().toISOString() };
    await finish(root, id, status, (e as Error).message).catch(() => {});
    throw e;
  } finally {
    await cleanupRuncBundle(root, id, { runc }).catch(() => {});
    // runc has ended: ours is the rootfs's last mount.
    await live?.release().catch(() => {});
    await rm(logPath, { force: true }).catch(() => {});
    // A kept container keeps its cgroup and network until `rm`, as with our runtime; a failed start releases them.
    if (!acquired) await releaseResources(rec, o).catch(() => {});
  }
}

/** The cgroup path runc is given: the group dir below its hierarchy's mount. */
function cgroupsPathOf(dir: string, id: string): string {
  const m = /^\/sys\/fs\/cgroup\/(?:[^/]+\/)?(imgbuild\/.+)$/.exec(dir);
  return `/${m?.[1] ?? `imgbuild/${id}`}`;
}

async function runRunc(
  root: string,
  id: string,
  runc: string,
  logPath: string,
  cg: { kill: (s: 'SIGKILL') => Promise<void>; pids: () => Promise<number[]> },
  argv0: string,
  io: RunIO,
  o: { signal?: AbortSignal; forward?: () => NodeJS.Signals | undefined; killGraceMs?: number; skipFinalState?: boolean },
): Promise<ExitStatus> {
  const monitorStartTime = await procStartTime(process.pid);
  const child = spawn(runc, ['--root', runcRoot(root), '--log', logPath, '--log-format', 'json', 'run', '--bundle', runBundle(root, id), id], {
    stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (io.stdin && child.stdin) {
    child.stdin.on('error', () => {}); // the app stopped reading
    io.stdin.pipe(child.stdin);
  }
  const [out, err] = [child.stdout!, child.stderr!]; // both 'pipe' above
  if (io.stdout) out.pipe(io.stdout, { end: false });
  else out.resume();
  if (io.stderr) err.pipe(io.stderr, { end: false });
  else err.resume();
  const relays = (io.forwardSignals ?? []).map((sig) => {
    const fn = (): void => void child.kill(sig); // runc passes signals on to the app
    process.on(sig, fn);
    return [sig, fn] as const;
  });
  let ended = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    child.kill(o.forward?.() ?? 'SIGTERM');
    killTimer = setTimeout(() => void cg.kill('SIGKILL').catch(() => child.kill('SIGKILL')), o.killGraceMs ?? 3_000);
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  // The record turns `running` once the app's process exists (found in the container's cgroup).
  const recorded = (async () => {
    for (let i = 0; !ended && i < 400; i++) {
      const pid = await findInitPid(await cg.pids().catch(() => []));
      if (pid) {
        const pidStartTime = await procStartTime(pid);
        if (ended) return;
        await updateRecord(root, id, (r) => {
          r.state = { ...r.state, status: 'running', pid, pidStartTime, monitorPid: process.pid, monitorStartTime, startedAt: new Date().toISOString() };
        });
        io.onStart?.({ pid });
        return;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })().catch(() => {});
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve({ code: c, signal: s }));
  }).finally(() => {
    ended = true;
    o.signal?.removeEventListener('abort', onAbort);
    if (killTimer) clearTimeout(killTimer);
    for (const [sig, fn] of relays) process.off(sig, fn);
    io.stdin?.unpipe(child.stdin ?? undefined);
  });
  await recorded;
  const errors = await runcErrors(logPath);
  if (errors.length > 0 && code !== 0) throw startError(errors.join('; '), argv0);
  if (code === null) throw new ContainerStartError(`runc was killed by ${signal}`, 125);
  const status: ExitStatus = { exitCode: code, finishedAt: new Date().toISOString() };
  if (code > 128 && code < 128 + 65) {
    const name = signalName(code - 128);
    if (name) status.signal = name;
  }
  if (!o.skipFinalState) await finish(root, id, status);
  return status;
}
