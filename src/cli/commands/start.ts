/**
 * `imgbuild start [-a] [-i] CONTAINER...`: starts created or exited containers again, detached
 * (printing each name as given), or one container attached to our output (and stdin with -i),
 * whose exit status becomes ours, as `docker start -a` does.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitError, InvalidArgumentError } from '../../errors.js';
import { startForeground } from '../../containers/start.js';
import { startKept } from '../../containers/restart.js';
import { getContainer } from '../../containers/state.js';
import { killContainer } from '../../containers/stop.js';
import { ensureKeeper } from '../../containers/keeper.js';
import { abortSignalName, attachStdio, guardSignals, withRunStatus } from './run.js';

interface StartFlags {
  attach?: boolean;
  interactive?: boolean;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .description('start created or stopped containers (on the same writable layer)')
    .argument('<containers...>', 'container names or ids')
    .option('-a, --attach', "attach to the container's output and exit with its status")
    .option('-i, --interactive', "attach the container's stdin")
    .action(async (names: string[], f: StartFlags) => {
      if (f.attach || f.interactive) {
        if (names.length > 1) throw withRunStatus(new InvalidArgumentError('you cannot start and attach multiple containers at once'));
        await startAttached(ctx, names[0]!, f);
        return;
      }
      const store = await ctx.store().catch((e: unknown) => {
        throw withRunStatus(e);
      });
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          const cur = await getContainer(ctx.root(), n);
          // Docker's start of a running container is a no-op that succeeds.
          if (cur.state.status !== 'running') await startKept(store, cur.id, { signal: ctx.signal });
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(withRunStatus(e));
        }
      }
      // Every operand is tried; main.ts prints one line per failure.
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}

/** Starts one container in the foreground with our stdio (stdin with -i when it was created with -i). */
async function startAttached(ctx: CliContext, name: string, f: StartFlags): Promise<void> {
  const root = ctx.root();
  let rec;
  let store;
  try {
    store = await ctx.store();
    rec = await getContainer(root, name);
  } catch (e) {
    throw withRunStatus(e);
  }
  if (rec.state.status === 'running') throw withRunStatus(new InvalidArgumentError(`container ${rec.name} is already running: use attach`));
  const id = rec.id;
  const kill = (): void => void killContainer(root, id, 'SIGKILL').catch(() => {});
  const unguard = guardSignals(kill);
  const io = attachStdio(ctx, { interactive: Boolean(f.interactive && rec.hostConfig.interactive), tty: rec.hostConfig.tty, onBroken: kill });
  const { stdin, out, err, win } = io;
  let status;
  try {
    status = await startForeground(store, id, {
      stdin,
      stdout: out.stream,
      stderr: err.stream,
      forwardSignals: ['SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'],
      ...(win?.terminalSize ? { terminalSize: win.terminalSize } : {}),
      onStart: (info) => {
        win?.onStart(info);
        io.makeRaw();
        // Its restart policy or health check, as for a detached start (now that it is claimed).
        void ensureKeeper(root, rec, {}).catch(() => {});
      },
    }, { signal: ctx.signal, forward: () => abortSignalName(ctx.signal) });
  } catch (e) {
    if (ctx.signal.aborted) throw new ExitError(128 + (abortSignalName(ctx.signal) === 'SIGINT' ? 2 : 15));
    throw withRunStatus(e);
  } finally {
    io.release();
    unguard();
  }
  if (status.exitCode !== 0) throw new ExitError(status.exitCode);
}
