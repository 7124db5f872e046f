/**
 * `exec`: a new process in every namespace (and the cgroups) of a running container, as the
 * container's configured user and working directory unless told otherwise.
 */
import { seccompCacheDir } from '../store/paths.js';
import { execDetached, execIn, type SandboxIO } from '../sandbox/sandbox.js';
import { ContainerStateError } from './errors.js';
import { mapStartError } from './exit.js';
import { readSpec } from './record.js';
import { containerPid, getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';
import { randomBytes } from 'node:crypto';
import { emitEvents } from '../store/events.js';
import { containerEvent, emitContainerEvent } from './events.js';
import { mergeEnv, resolveEnvFlags } from './spec.js';
import { resolveUser } from './users.js';

export interface ExecOptions extends LifecycleOptions {
  args: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  hostEnv?: NodeJS.ProcessEnv;
}

/** The container's init pid and the process an exec runs, as the container's user and workdir unless told otherwise. */
async function prepareExec(root: string, nameOrId: string, o: ExecOptions) {
  const rec = await getContainer(root, nameOrId, o);
  if (rec.state.status !== 'running') throw new ContainerStateError(rec.id, `container ${rec.name} is not running`);
  if (rec.state.paused) throw new ContainerStateError(rec.id, `container ${rec.name} is paused, unpause the container before exec`);
  const pid = await containerPid(rec, o);
  if (!pid) throw new ContainerStateError(rec.id, `container ${rec.name} has no running process`);
  const spec = await readSpec(root, rec.id);
  const user = await resolveUser(spec.rootfs, o.user ?? rec.config.User ?? '');
  const env = mergeEnv(rec.config.Env ?? [], resolveEnvFlags(o.env ?? [], o.hostEnv ?? process.env), o.tty ? ['TERM=xterm'] : []);
  const proc = {
    args: o.args,
    env,
    cwd: o.workdir ?? rec.config.WorkingDir ?? '/',
    user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
    terminal: o.tty ?? false,
    capabilities: spec.process.capabilities,
    // As in Docker, an exec'd process is confined like the container's own.
    ...(spec.process.noNewPrivileges ? { noNewPrivileges: true } : {}),
    ...(spec.seccomp !== undefined ? { seccomp: spec.seccomp } : {}),
  };
  // Docker's exec events name the command in the action (`exec_start: sh -c date`).
  const what = { execID: randomBytes(32).toString('hex') };
  const command = o.args.join(' ');
  await emitEvents(root, [containerEvent(rec, `exec_create: ${command}`, what), containerEvent(rec, `exec_start: ${command}`, what)]);
  return { rec, pid, proc, what };
}

export async function execContainer(root: string, nameOrId: string, o: ExecOptions, io: SandboxIO): Promise<{ exitCode: number; signal?: string }> {
  const { rec, pid, proc, what } = await prepareExec(root, nameOrId, o);
  let r: { exitCode: number; signal?: string } | undefined;
  try {
    r = await execIn(pid, proc, { ...io, seccompCacheDir: seccompCacheDir(root) });
    return r;
  } catch (e) {
    throw mapStartError(e, o.args[0] ?? '');
  } finally {
    await emitContainerEvent(root, rec, 'exec_die', { ...what, exitCode: String(r?.exitCode ?? 126) });
  }
}

/**
 * `exec -d`: starts the process and returns once it runs (its host pid), without waiting for it;
 * its output is discarded and its stdin is empty, as Docker's.
 */
export async function execContainerDetached(root: string, nameOrId: string, o: ExecOptions): Promise<number> {
  const { pid, proc } = await prepareExec(root, nameOrId, o);
  try {
    return await execDetached(pid, proc, { seccompCacheDir: seccompCacheDir(root) });
  } catch (e) {
    throw mapStartError(e, o.args[0] ?? '');
  }
}
