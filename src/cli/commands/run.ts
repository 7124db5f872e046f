/**
 * `imgbuild run [flags] IMAGE [COMMAND...]`: create a container and run it in the foreground (or
 * detached with -d). The app's exit status becomes ours; imgbuild's own failures exit 125, a
 * command that cannot be executed 126, one that is not found 127 (Docker's convention).
 */
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import { Writable } from 'node:stream';
import type { CliContext } from '../context.js';
import { ExitError, fromSystemError, ImgbuildError, InvalidArgumentError, isImgbuildError } from '../../errors.js';
import { parseCpus, parseMemoryLimit, parsePidsLimit, parseUlimit } from '../../host/limits.js';
import { parseSecurityOpts } from '../../containers/security-opt.js';

export const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Marks a failure of imgbuild itself (not of the app) with run's status 125, keeping its type. */
export function withRunStatus(e: unknown): unknown {
  if (e instanceof ExitError) return e;
  if (isImgbuildError(e)) {
    const withCode = e as ImgbuildError & { exitCode?: number };
    if (withCode.exitCode === undefined) Object.defineProperty(e, 'exitCode', { value: 125, enumerable: false });
    return e;
  }
  // A system error (a missing --env-file, a full disk) keeps its meaning; anything else is a bug.
  const err = fromSystemError(e) ?? new ImgbuildError('INTERNAL', (e as Error)?.message ?? String(e), { cause: e });
  Object.defineProperty(err, 'exitCode', { value: 125 });
  return err;
}

export interface RunFlags {
  rm?: boolean;
  detach?: boolean;
  name?: string;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  volume: string[];
  tmpfs: string[];
  hostname?: string;
  network?: string;
  publish: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  interactive?: boolean;
  tty?: boolean;
  entrypoint?: string;
  init?: boolean;
  readOnly?: boolean;
  capAdd: string[];
  capDrop: string[];
  ulimit: string[];
  securityOpt: string[];
  runtime?: string;
}

/**
 * Keeps SIGINT/SIGTERM from killing the process outright while a container runs, so that `--rm`
 * cleanup happens even after main.ts gives up its own handler on a repeated signal. A second
 * Ctrl-C kills the container group at once instead of waiting out the grace period.
 * Returns the function that removes the guard.
 */
export function guardSignals(onRepeat: () => void): () => void {
  let seen = 0;
  const h = (): void => {
    if (++seen > 1) onRepeat();
  };
  process.on('SIGINT', h);
  process.on('SIGTERM', h);
  return () => {
    process.off('SIGINT', h);
    process.off('SIGTERM', h);
  };
}

/**
 * Wraps an output stream so that a reader going away (`imgbuild run ... | head -1`: EPIPE) does not
 * crash the CLI before `--rm` cleanup: the rest of the output is dropped and `onBroken` runs once
 * (run kills the container, as SIGPIPE would end a process writing into a closed pipe).
 */
export function pipeGuard(target: Writable, onBroken: () => void): { stream: Writable; release: () => void } {
  let broken = false;
  const onError = (e: NodeJS.ErrnoException): void => {
    if (broken) return;
    broken = true;
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') process.stderr.write(`imgbuild: output: ${e.message}\n`);
    onBroken();
  };
  target.on('error', onError);
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (broken) return cb();
      if (target.write(chunk)) cb();
      else {
        const done = (): void => {
          target.off('drain', done);
          target.off('error', done);
          cb();
        };
        target.once('drain', done);
        target.once('error', done);
      }
    },
  });
  return { stream, release: () => void target.off('error', onError) };
}

/**
 * With `-t` on a terminal, the container's pty follows our window: the size at start, then every
 * change (a tty stream emits 'resize' after SIGWINCH). Returns the sandbox's onStart hook (which
 * hands over `resize`) and the function that stops following.
 */
export function followWindowSize(out: NodeJS.WriteStream): {
  terminalSize?: { rows: number; cols: number };
  onStart: (info: { pid: number; resize?: (rows: number, cols: number) => void }) => void;
  release: () => void;
} {
  if (!out.isTTY) return { onStart: () => {}, release: () => {} };
  let resize: ((rows: number, cols: number) => void) | undefined;
  const apply = (): void => {
    if (resize && out.rows > 0 && out.columns > 0) resize(out.rows, out.columns);
  };
  out.on('resize', apply);
  return {
    ...(out.rows > 0 && out.columns > 0 ? { terminalSize: { rows: out.rows, cols: out.columns } } : {}),
    onStart: (info) => {
      resize = info.resize;
      apply(); // the window may have changed while the container was starting
    },
    release: () => void out.off('resize', apply),
  };
}

/** Which signal a Ctrl-C / SIGTERM of ours was (main.ts aborts with "received SIGx"). */
export function abortSignalName(signal: AbortSignal): NodeJS.Signals {
  const m = /SIG[A-Z0-9]+/.exec(String((signal.reason as Error | undefined)?.message ?? signal.reason ?? ''));
  return (m?.[0] as NodeJS.Signals | undefined) ?? 'SIGTERM';
}

export default function register(program: Command, ctx: CliContext): void {
  // Options after the image belong to the container's command (`run busybox sh -c ...`): they are
  // passed through, with positional option parsing turned on for the program in ../index.ts
  // (global options go before the command name).
  program
    .command('run')
    .description('create a container from an image and run a command in it')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and arguments (default: the image ENTRYPOINT/CMD)')
    .option('--rm', 'remove the container when it exits')
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--name <name>', 'container name')
    .option('-e, --env <KEY[=VALUE]>', 'set an environment variable (repeatable)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid (and group) to run as')
    .option('-v, --volume <host:ctr[:ro]>', 'bind-mount a host path (repeatable)', collect, [])
    .option('--tmpfs <path[:opts]>', 'mount a tmpfs (repeatable)', collect, [])
    .option('--hostname <name>', 'container host name (default: the short id)')
    .option('--network <mode>', 'none, host or bridge (default: none; bridge when -p is given)')
    .option('-p, --publish <[127.0.0.1:]host:ctr[/tcp]>', 'publish a container port on 127.0.0.1 (repeatable)', collect, [])
    .option('-m, --memory <size>', 'memory limit (e.g. 64m); swap is not used beyond it')
    .option('--cpus <n>', 'CPU limit (e.g. 0.5)')
    .option('--pids-limit <n>', 'maximum number of processes/threads')
    .option('-i, --interactive', 'keep stdin open and pass it to the container')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT')
    .option('--init', 'run a minimal init as pid 1 that forwards signals and reaps zombies')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--cap-add <cap>', 'add a capability (repeatable; ALL for every one)', collect, [])
    .option('--cap-drop <cap>', 'drop a capability (repeatable; ALL for every one)', collect, [])
    .option('--ulimit <name=soft[:hard]>', 'set a resource limit (repeatable)', collect, [])
    .option('--security-opt <opt>', 'no-new-privileges[=true|false], seccomp=unconfined or systempaths=unconfined (repeatable)', collect, [])
    .option('--runtime <name>', 'imgbuild (the built-in sandbox) or runc (runs the container\'s OCI bundle; foreground only)', 'imgbuild')
    .passThroughOptions()
    .action(async (image: string, command: string[], f: RunFlags) => {
      await runFromCli(ctx, image, command, f);
    });
}

/** The resource limits of `run`, each parsed once (host/limits.ts); undefined where not limited. */
export interface RunLimits {
  memory: number | undefined;
  cpus: number | undefined;
  pidsLimit: number | undefined;
}

export function parseRunLimits(f: Pick<RunFlags, 'memory' | 'cpus' | 'pidsLimit' | 'ulimit'>, cpusAvailable: number): RunLimits {
  const limits: RunLimits = {
    memory: f.memory === undefined ? undefined : parseMemoryLimit(f.memory, '--memory'),
    cpus: f.cpus === undefined ? undefined : parseCpus(f.cpus, cpusAvailable, '--cpus'),
    pidsLimit: f.pidsLimit === undefined ? undefined : parsePidsLimit(f.pidsLimit, '--pids-limit'),
  };
  // Checked here too, so that a bad --ulimit fails before a cgroup or network is made.
  for (const u of f.ulimit) parseUlimit(u);
  return limits;
}

async function runFromCli(ctx: CliContext, image: string, command: string[], f: RunFlags): Promise<void> {
  if (f.detach && f.interactive) throw withRunStatus(new InvalidArgumentError('-d cannot be combined with -i (there is no terminal to attach)'));
  let limits: RunLimits;
  try {
    limits = parseRunLimits(f, availableParallelism());
    parseSecurityOpts(f.securityOpt); // read again by createContainer: checked before anything is made
  } catch (e) {
    throw withRunStatus(e);
  }
  const runtime = f.runtime ?? 'imgbuild';
  if (runtime !== 'imgbuild' && runtime !== 'runc') throw withRunStatus(new InvalidArgumentError(`unknown --runtime ${runtime}: use imgbuild or runc`));
  if (runtime === 'runc' && f.detach) throw withRunStatus(new ImgbuildError('NOT_IMPLEMENTED', '--runtime runc runs in the foreground only (-d is not available)'));
  if (runtime === 'runc' && f.init) throw withRunStatus(new ImgbuildError('NOT_IMPLEMENTED', '--init is not available with --runtime runc'));
  // The store opens while the modules load; the modules load side by side.
  const storeP = ctx.store();
  storeP.catch(() => {}); // awaited below
  const [{ abandonCreate, beginCreate, createContainer, defaultNetworkMode, overlayRoot }, lc, { newContainerId }, { OverlaySnapshotter }] = await Promise.all([
    import('../../containers/create.js'),
    import('../../containers/lifecycle.js'),
    import('../../containers/ids.js'),
    import('../../snapshots/overlay.js'),
  ]);
  const root = ctx.root();
  const [store, snapshotter] = await Promise.all([storeP, OverlaySnapshotter.open(overlayRoot(root), { signal: ctx.signal })]);
  let containerId: string | undefined;
  const unguard = guardSignals(() => {
    if (containerId) void lc.killContainer(root, containerId, 'SIGKILL').catch(() => {});
  });
  try {
    await runGuarded();
  } finally {
    unguard();
  }

  async function runGuarded(): Promise<void> {
    // The cgroup and network namespace do not depend on the image: make them while the
    // container is being created.
    const preId = newContainerId();
    // The container's directory comes first, so that the cgroup and network made next belong to
    // a container that a later command can find, whenever this process is killed.
    const dir = await beginCreate(root, preId);
    let kernel: ReturnType<typeof lc.createKernelObjects> | undefined;
    try {
      kernel = lc.createKernelObjects(root, preId, {
        ...limits,
        networkMode: defaultNetworkMode(f.network as 'none' | 'host' | 'bridge' | undefined, f.publish.length),
      });
    } catch {
      kernel = undefined; // a bad --network: createContainer reports it
    }
    kernel?.catch(() => {}); // observed below; avoid an unhandled rejection meanwhile
    let rec;
    try {
      rec = await createContainer(store, {
        id: preId,
        dir,
        image,
        cmd: command,
        name: f.name,
        env: f.env,
        envFiles: f.envFile,
        workdir: f.workdir,
        user: f.user,
        volumes: f.volume,
        tmpfs: f.tmpfs,
        hostname: f.hostname,
        network: f.network as 'none' | 'host' | 'bridge' | undefined,
        publish: f.publish,
        ...limits,
        interactive: f.interactive,
        tty: f.tty,
        entrypoint: f.entrypoint,
        init: f.init,
        readOnly: f.readOnly,
        capAdd: f.capAdd,
        capDrop: f.capDrop,
        ulimits: f.ulimit,
        securityOpt: f.securityOpt,
        autoRemove: f.rm,
        hostEnv: ctx.env,
        snapshotter,
        signal: ctx.signal,
      });
    } catch (e) {
      if (kernel) await kernel.then((k) => lc.releaseKernelObjects(preId, k), () => {}).catch(() => {});
      await abandonCreate(dir);
      throw withRunStatus(e);
    }
    const id = rec.id;
    containerId = id;
    if (f.detach) {
      try {
        await lc.startContainer(store, id, { signal: ctx.signal, ...(kernel ? { kernel } : {}) });
      } catch (e) {
        if (f.rm) await lc.removeContainer(root, id, { force: true, snapshotter }).catch(() => {});
        throw withRunStatus(e);
      }
      ctx.stdout.write(`${id}\n`);
      return;
    }
    const stdin = f.interactive ? process.stdin : undefined;
    const rawTty = Boolean(f.tty && f.interactive && process.stdin.isTTY);
    if (rawTty) process.stdin.setRawMode(true);
    let status;
    const kill = (): void => void lc.killContainer(root, id, 'SIGKILL').catch(() => {});
    const out = pipeGuard(ctx.stdout, kill);
    const err = pipeGuard(ctx.stderr, kill);
    const win = f.tty ? followWindowSize(process.stdout) : undefined;
    const runContainer = runtime === 'runc' ? (await import('../../containers/runc.js')).runContainerWithRunc : lc.runContainer;
    try {
      status = await runContainer(
        store,
        id,
        {
          stdin,
          stdout: out.stream,
          stderr: err.stream,
          // INT and TERM abort ctx.signal (main.ts) and are forwarded by runContainer; these go
          // through the sandbox helper to the container.
          forwardSignals: ['SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'],
          ...(win?.terminalSize ? { terminalSize: win.terminalSize } : {}),
          ...(win ? { onStart: win.onStart } : {}),
        },
        { signal: ctx.signal, forward: () => abortSignalName(ctx.signal), skipFinalState: Boolean(f.rm), ...(kernel ? { kernel } : {}) },
      );
    } catch (e) {
      if (ctx.signal.aborted) throw new ExitError(128 + (abortSignalName(ctx.signal) === 'SIGINT' ? 2 : 15));
      throw withRunStatus(e);
    } finally {
      win?.release();
      out.release();
      err.release();
      if (rawTty) process.stdin.setRawMode(false);
      if (stdin) stdin.pause();
      if (f.rm) {
        const cgroup = kernel ? await kernel.then((k) => k.cgroup, () => undefined) : undefined;
        await lc.removeContainer(root, id, { force: true, snapshotter, ...(cgroup ? { cgroup } : {}) }).catch((e: unknown) => {
          // Someone else (rm -f) removed it meanwhile: nothing left to do.
          if ((e as { code?: string }).code !== 'NOT_FOUND') ctx.stderr.write(`imgbuild: removing ${id.slice(0, 12)}: ${(e as Error).message}\n`);
        });
      }
    }
    if (status.exitCode !== 0) throw new ExitError(status.exitCode);
  }
}
