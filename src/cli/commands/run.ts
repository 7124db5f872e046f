/**
 * `imgbuild run [flags] IMAGE [COMMAND...]`: create a container and run it in the foreground (or
 * detached with -d). The app's exit status becomes ours; imgbuild's own failures exit 125, a
 * command that cannot be executed 126, one that is not found 127 (Docker's convention).
 */
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import { Writable } from 'node:stream';
import type { CliContext } from '../context.js';
import { ExitError, fromSystemError, ImgbuildError, isImgbuildError } from '../../errors.js';
import { addContainerFlags, collect, containerOptions, type ContainerFlags } from './container-flags.js';
import { CidFile } from './cidfile.js';
import { checkRunOptions, runContainer } from '../../containers/run.js';
import type { Runtime } from '../../containers/runc.js';
import { killContainer } from '../../containers/stop.js';
import { parsePullPolicy, withPullPolicy, type PullPolicy } from '../pulling.js';

export { collect };

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

export interface RunFlags extends ContainerFlags {
  detach?: boolean;
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

/** Our stdio given to a container's process for as long as it runs (run, start -a, exec). */
export interface AttachedStdio {
  stdin?: NodeJS.ReadStream;
  out: { stream: Writable; release: () => void };
  err: { stream: Writable; release: () => void };
  win?: ReturnType<typeof followWindowSize>;
  /** Puts our terminal in raw mode when the process has one and we read stdin from a terminal. */
  makeRaw: () => void;
  /** Gives everything back (once; later calls do nothing). */
  release: () => void;
}

/**
 * Stdin with `interactive`, the output streams guarded (`onBroken` when a reader goes away), the
 * window followed with `tty`; raw mode is the caller's to turn on when the process is there.
 */
export function attachStdio(ctx: CliContext, o: { interactive: boolean; tty: boolean; onBroken: () => void }): AttachedStdio {
  const stdin = o.interactive ? process.stdin : undefined;
  const rawTty = Boolean(o.tty && stdin && process.stdin.isTTY);
  const out = pipeGuard(ctx.stdout, o.onBroken);
  const err = pipeGuard(ctx.stderr, o.onBroken);
  const win = o.tty ? followWindowSize(process.stdout) : undefined;
  let raw = false;
  let released = false;
  return {
    ...(stdin ? { stdin } : {}),
    out,
    err,
    ...(win ? { win } : {}),
    makeRaw: () => {
      if (!rawTty || raw || released) return;
      process.stdin.setRawMode(true);
      raw = true;
    },
    release: () => {
      if (released) return;
      released = true;
      win?.release();
      out.release();
      err.release();
      if (raw) process.stdin.setRawMode(false);
      if (stdin) stdin.pause();
    },
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
  const cmd = program
    .command('run')
    .description('create a container from an image and run a command in it')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and arguments (default: the image ENTRYPOINT/CMD)')
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--runtime <name>', 'imgbuild (the built-in sandbox) or runc (runs the container\'s OCI bundle; foreground only)', 'imgbuild');
  addContainerFlags(cmd)
    .passThroughOptions()
    .action(async (image: string, command: string[], f: RunFlags) => {
      await runFromCli(ctx, image, command, f);
    });
}

async function runFromCli(ctx: CliContext, image: string, command: string[], f: RunFlags): Promise<void> {
  let options: ReturnType<typeof containerOptions>;
  const runtime = (f.runtime ?? 'imgbuild') as Runtime;
  let pull: PullPolicy;
  let cid: CidFile | undefined;
  try {
    pull = parsePullPolicy(f.pull);
    options = containerOptions(ctx, f, availableParallelism());
    checkRunOptions({ runtime, detach: f.detach, init: f.init });
    if (f.cidfile !== undefined) cid = await CidFile.open(f.cidfile);
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
  const io = attachStdio(ctx, { interactive: Boolean(f.interactive && !f.detach), tty: Boolean(f.tty && !f.detach), onBroken: kill });
  const { stdin, out, err, win, release } = io;
  let result;
  try {
    result = await withPullPolicy(ctx, image, pull, () => runContainer(store, {
      ...options,
      image,
      cmd: command,
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
        cid?.write(id);
        // Raw only once the container exists: until then Ctrl-C must still interrupt the creation.
        io.makeRaw();
      },
      onExit: release,
      warn: (m) => void ctx.stderr.write(`imgbuild: ${m}\n`),
    }));
  } catch (e) {
    if (!containerId) await cid?.discard();
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
