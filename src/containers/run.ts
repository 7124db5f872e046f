/**
 * `run`: create a container from an image and run it, in the foreground (returning the app's exit
 * status) or detached under its monitor, and remove it afterwards when asked (`autoRemove`).
 */
import { ImgbuildError, InvalidArgumentError } from '../errors.js';
import type { OverlaySnapshotter } from '../snapshots/overlay.js';
import { newContainerSnapshotter } from './snapshotter.js';
import type { OciStore } from '../store/store.js';
import { abandonCreate, createContainer, type CreateOptions } from './create.js';
import { parseMacAddress, parseNetworkFlag } from './network-options.js';
import { newContainerId } from './ids.js';
import { deviceSettings } from './run-flags.js';
import { beginCreate, type ExitStatus } from './record.js';
import { removeContainer } from './remove.js';
import { createKernelObjects, releaseKernelObjects } from './resources.js';
import { startForegroundWithRunc, type Runtime } from './runc.js';
import { startContainer, startForeground } from './start.js';
import { needsKeeper, startKeeper } from './keeper.js';
import { checkUsernsMode } from './userns.js';
import { parseUsernsMode } from '../host/id-ranges.js';
import type { ForegroundOptions, LifecycleOptions, RunIO } from './types.js';

export interface RunOptions extends Omit<CreateOptions, 'id' | 'dir'>, Omit<ForegroundOptions, 'kernel' | 'skipFinalState'> {
  /** `imgbuild` (the built-in sandbox, the default) or `runc` (foreground only). */
  runtime?: Runtime;
  /** The runc binary for `runtime: 'runc'` (default `runc` from PATH). */
  runc?: string;
  /** Start it under a monitor and return at once, without an exit status. */
  detach?: boolean;
  /** The container's stdio (foreground). */
  io?: RunIO;
  /** Called with the id once the container exists, before it starts. */
  onCreated?: (id: string) => void;
  /** Called once a foreground container's process has ended (or failed to start), before its removal. */
  onExit?: () => void;
  /** Told of a failure that does not fail the run: an `autoRemove` removal that did not finish. */
  warn?: (message: string) => void;
}

export interface RunResult {
  id: string;
  /** The app's exit status (foreground runs). */
  status?: ExitStatus;
}

/** Refuses the combinations of runtime and mode that cannot run, before anything is made. */
export function checkRunOptions(o: Pick<RunOptions, 'runtime' | 'detach' | 'init' | 'userns'>): void {
  const runtime = o.runtime ?? 'imgbuild';
  checkUsernsMode(parseUsernsMode(o.userns), { runtime });
  if (runtime !== 'imgbuild' && runtime !== 'runc') throw new InvalidArgumentError(`unknown --runtime ${String(runtime)}: use imgbuild or runc`);
  if (runtime === 'runc' && o.detach) throw new ImgbuildError('NOT_IMPLEMENTED', '--runtime runc runs in the foreground only (-d is not available)');
  if (runtime === 'runc' && o.init) throw new ImgbuildError('NOT_IMPLEMENTED', '--init is not available with --runtime runc');
}

/**
 * Creates a container and runs it. The container's directory comes first, so that the cgroup and
 * network namespace made next belong to a container a later command can find whenever this
 * process is killed; those two do not depend on the image, so they are made while the container
 * is being created. Aborting `o.signal` passes `o.forward()` (default SIGTERM) on to pid 1 of a
 * foreground container, then kills its cgroup after `o.killGraceMs`.
 */
export async function runContainer(store: OciStore, o: RunOptions): Promise<RunResult> {
  checkRunOptions(o);
  const root = store.root;
  const dirs: LifecycleOptions = { cgroupRoot: o.cgroupRoot, networkStateDir: o.networkStateDir, claimsDir: o.claimsDir };
  const snOpening = o.snapshotter ? Promise.resolve(o.snapshotter) : newContainerSnapshotter(root, o.storageDriver, { signal: o.signal });
  snOpening.catch(() => {}); // awaited below
  // Device flags are read first: a bad one fails before anything is made.
  const deviceRules = o.privileged || o.devices?.length || o.deviceCgroupRules?.length ? deviceSettings(o).rules : undefined;
  // Read before anything is made: a bad value leaves nothing behind.
  const net = parseNetworkFlag(o.network);
  const mac = o.macAddress ? parseMacAddress(o.macAddress) : undefined;
  const id = newContainerId();
  const dir = await beginCreate(root, id);
  const kernel = createKernelObjects(root, id, {
    memory: o.memory,
    cpus: o.cpus,
    pidsLimit: o.pidsLimit,
    ...(o.memorySwap !== undefined ? { memorySwap: o.memorySwap } : {}),
    ...(o.cpuShares !== undefined ? { cpuShares: o.cpuShares } : {}),
    ...(deviceRules ? { deviceRules } : {}),
    // A joined container's namespace is taken at start; nothing is made for it here.
    networkMode: net.mode === 'container' ? 'container:' : net.mode,
    ...(mac ? { macAddress: mac } : {}),
    // The built-in sandbox sets eth0's address itself: one `ip` process fewer per run.
    ...(o.runtime !== 'runc' ? { ifaceBySandbox: true } : {}),
  }, dirs);
  kernel.catch(() => {}); // observed below; avoid an unhandled rejection meanwhile
  let snapshotter: OverlaySnapshotter;
  let kept: boolean;
  try {
    snapshotter = await snOpening;
    kept = needsKeeper(await createContainer(store, { ...o, id, dir, snapshotter }));
  } catch (e) {
    await kernel.then((k) => releaseKernelObjects(id, k, dirs), () => {}).catch(() => {});
    await abandonCreate(dir);
    throw e;
  }
  o.onCreated?.(id);
  if (o.detach) {
    try {
      await startContainer(store, id, { ...dirs, signal: o.signal, kernel });
      if (kept) startKeeper(root, id, dirs);
    } catch (e) {
      if (o.autoRemove) await removeContainer(root, id, { ...dirs, force: true, removeVolumes: true, snapshotter }).catch(() => {});
      throw e;
    }
    return { id };
  }
  const start = o.runtime === 'runc' ? startForegroundWithRunc : startForeground;
  // A foreground container's check runs while it does; a restart policy takes over once it ends.
  if (kept) startKeeper(root, id, dirs);
  try {
    const status = await start(store, id, o.io ?? {}, {
      ...dirs,
      signal: o.signal,
      forward: o.forward,
      killGraceMs: o.killGraceMs,
      // A removed container's final state would be written only to be deleted.
      skipFinalState: Boolean(o.autoRemove),
      kernel,
      ...(o.runc ? { runc: o.runc } : {}),
    });
    return { id, status };
  } finally {
    o.onExit?.();
    if (o.autoRemove) {
      const cgroup = await kernel.then((k) => k.cgroup, () => undefined);
      await removeContainer(root, id, { ...dirs, force: true, removeVolumes: true, snapshotter, ...(cgroup ? { cgroup } : {}) }).catch((e: unknown) => {
        // Someone else (rm -f) removed it meanwhile: nothing left to do.
        if ((e as { code?: string }).code !== 'NOT_FOUND') o.warn?.(`removing ${id.slice(0, 12)}: ${(e as Error).message}`);
      });
    }
  }
}
