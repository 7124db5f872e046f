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
import { parseCpus, parseMemoryLimit, parsePidsLimit, parseShmSize, parseUlimit } from '../../host/limits.js';
import { parseSecurityOpts } from '../../containers/security-opt.js';
import { checkRunOptions, runContainer } from '../../containers/run.js';
import type { Runtime } from '../../containers/runc.js';
import { killContainer } from '../../containers/stop.js';
import { parsePullPolicy, withPullPolicy, type PullPolicy } from '../pulling.js';
import { checkRestartWithAutoRemove, parseRestartPolicy, type RestartPolicy } from '../../containers/restart-policy.js';
import { healthConfigFromFlags } from '../../containers/health.js';
import type { HealthConfig } from '../../image/types.js';

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
  mount: string[];
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
  pull?: string;
  privileged?: boolean;
  device: string[];
  deviceCgroupRule: string[];
  groupAdd: string[];
  shmSize?: string;
  label: string[];
  labelFile: string[];
  restart?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthRetries?: string;
  /** Commander's name for `--no-healthcheck` (false when given). */
  healthcheck?: boolean;
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
    .option('-v, --volume <[src:]ctr[:mode]>', 'bind-mount a host path, mount a named volume (made on first use), or an anonymous one (repeatable)', collect, [])
    .option('--mount <type=...,dst=...>', 'mount a bind, volume or tmpfs, as docker takes it (repeatable)', collect, [])
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
    .option('--security-opt <opt>', 'no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json or systempaths=unconfined (repeatable)', collect, [])
    .option('--privileged', 'every capability and host device, no seccomp filter, no masked paths, /sys writable')
    .option('--device <host[:ctr][:rwm]>', 'make a host device available in the container (repeatable)', collect, [])
    .option('--device-cgroup-rule <rule>', "allow devices in the device cgroup, e.g. 'c 42:* rmw' (repeatable)", collect, [])
    .option('--group-add <group>', 'an additional group (name from the image or gid; repeatable)', collect, [])
    .option('--shm-size <size>', 'size of /dev/shm (default 64m)')
    .option('-l, --label <key=value>', 'set a label on the container (repeatable)', collect, [])
    .option('--label-file <file>', 'read labels from a file of key=value lines (repeatable)', collect, [])
    .option('--restart <policy>', 'no, on-failure[:max-retries], always or unless-stopped (carried out by a small keeper process)', 'no')
    .option('--health-cmd <command>', 'command to run to check health (in the container, through /bin/sh -c)')
    .option('--health-interval <duration>', 'time between checks (ms|s|m|h) (default 30s)')
    .option('--health-timeout <duration>', 'maximum time a check may take (ms|s|m|h) (default 30s)')
    .option('--health-start-period <duration>', 'time for the container to start before failures count (ms|s|m|h) (default 0s)')
    .option('--health-retries <n>', 'consecutive failures that make it unhealthy (default 3)')
    .option('--no-healthcheck', 'disable any HEALTHCHECK of the image')
    .option('--runtime <name>', 'imgbuild (the built-in sandbox) or runc (runs the container\'s OCI bundle; foreground only)', 'imgbuild')
    .option('--pull <policy>', 'pull the image before running: missing (when not in the store), always or never', 'missing')
    .passThroughOptions()
    .action(async (image: string, command: string[], f: RunFlags) => {
      await runFromCli(ctx, image, command, f);
    });
}

/** `--restart` and the health flags, checked as docker checks them (also for `create`). */
export function parseKeeperFlags(f: Pick<RunFlags, 'restart' | 'rm' | 'healthCmd' | 'healthInterval' | 'healthTimeout' | 'healthStartPeriod' | 'healthRetries' | 'healthcheck'>): {
  restartPolicy: RestartPolicy;
  healthcheck: HealthConfig | undefined;
} {
  const restartPolicy = parseRestartPolicy(f.restart ?? 'no');
  checkRestartWithAutoRemove(restartPolicy, f.rm ?? false);
  const healthcheck = healthConfigFromFlags({
    healthCmd: f.healthCmd,
    healthInterval: f.healthInterval,
    healthTimeout: f.healthTimeout,
    healthStartPeriod: f.healthStartPeriod,
    healthRetries: f.healthRetries,
    noHealthcheck: f.healthcheck === false,
  });
  return { restartPolicy, healthcheck };
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
  let shmSize: number | undefined;
  let restartPolicy: RestartPolicy;
  let healthcheck: HealthConfig | undefined;
  const runtime = (f.runtime ?? 'imgbuild') as Runtime;
  let pull: PullPolicy;
  try {
    pull = parsePullPolicy(f.pull);
    limits = parseRunLimits(f, availableParallelism());
    ({ restartPolicy, healthcheck } = parseKeeperFlags(f));
    parseSecurityOpts(f.securityOpt); // read again by createContainer: checked before anything is made
    shmSize = f.shmSize === undefined ? undefined : parseShmSize(f.shmSize);
    checkRunOptions({ runtime, detach: f.detach, init: f.init });
  } catch (e) {
    throw withRunStatus(e);
  }
  const root = ctx.root();
  const store = await ctx.store();
  let containerId: string | undefined;
  const kill = (): void => {
    if (containerId) void killContainer(root, containerId, 'SIGKILL').catch(() => {});
  };
  const unguard = guardSignals(kill);
  // The terminal and the output streams are the container's from its start to its end.
  const stdin = f.interactive && !f.detach ? process.stdin : undefined;
  const rawTty = Boolean(f.tty && stdin && process.stdin.isTTY);
  const out = pipeGuard(ctx.stdout, kill);
  const err = pipeGuard(ctx.stderr, kill);
  const win = f.tty && !f.detach ? followWindowSize(process.stdout) : undefined;
  let raw = false;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    win?.release();
    out.release();
    err.release();
    if (raw) process.stdin.setRawMode(false);
    if (stdin) stdin.pause();
  };
  let result;
  try {
    result = await withPullPolicy(ctx, image, pull, () => runContainer(store, {
      image,
      cmd: command,
      name: f.name,
      env: f.env,
      envFiles: f.envFile,
      workdir: f.workdir,
      user: f.user,
      volumes: f.volume,
      mounts: f.mount,
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
      ...(f.privileged ? { privileged: true } : {}),
      devices: f.device,
      deviceCgroupRules: f.deviceCgroupRule,
      groupAdd: f.groupAdd,
      ...(shmSize !== undefined ? { shmSize } : {}),
      labels: f.label,
      labelFiles: f.labelFile,
      autoRemove: f.rm,
      restartPolicy,
      ...(healthcheck ? { healthcheck } : {}),
      hostEnv: ctx.env,
      runtime,
      detach: f.detach,
      signal: ctx.signal,
      forward: () => abortSignalName(ctx.signal),
      io: {
        stdin,
        stdout: out.stream,
        stderr: err.stream,
        // INT and TERM abort ctx.signal (main.ts) and are forwarded by the run; these go through
        // the sandbox helper to the container.
        forwardSignals: ['SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'],
        ...(win?.terminalSize ? { terminalSize: win.terminalSize } : {}),
        ...(win ? { onStart: win.onStart } : {}),
      },
      onCreated: (id) => {
        containerId = id;
        // Raw only once the container exists: until then Ctrl-C must still interrupt the creation.
        if (rawTty) {
          process.stdin.setRawMode(true);
          raw = true;
        }
      },
      onExit: release,
      warn: (m) => void ctx.stderr.write(`imgbuild: ${m}\n`),
    }));
  } catch (e) {
    // Interrupted while the container ran: the status of a process killed by that signal.
    if (containerId && !f.detach && ctx.signal.aborted) throw new ExitError(128 + (abortSignalName(ctx.signal) === 'SIGINT' ? 2 : 15));
    throw withRunStatus(e);
  } finally {
    release();
    unguard();
  }
  if (f.detach) ctx.stdout.write(`${result.id}\n`);
  else if (result.status && result.status.exitCode !== 0) throw new ExitError(result.status.exitCode);
}
