/** `imgbuild exec [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitError } from '../../errors.js';
import { execContainer, execContainerDetached } from '../../containers/exec.js';
import { abortSignalName, attachStdio, collect, guardSignals, withRunStatus } from './run.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('exec')
    .description('run a command in a running container')
    .argument('<container>', 'container name or id')
    .argument('<command...>', 'command and arguments')
    .option('-d, --detach', 'run the command in the background (its output is discarded)')
    .option('-i, --interactive', 'pass stdin to the command')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-e, --env <KEY[=VALUE]>', 'set an environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory (default: the container\'s)')
    .option('-u, --user <user[:group]>', 'user to run as (default: the container\'s)')
    .passThroughOptions()
    .action(async (container: string, command: string[], f: { detach?: boolean; interactive?: boolean; tty?: boolean; env: string[]; workdir?: string; user?: string }) => {
      if (f.detach) {
        try {
          await execContainerDetached(ctx.root(), container, { args: command, env: f.env, workdir: f.workdir, user: f.user, hostEnv: ctx.env, signal: ctx.signal });
        } catch (e) {
          throw withRunStatus(e);
        }
        return;
      }
      // Ctrl-C, or the reader of our output going away, ends the exec'd process.
      const stop = new AbortController();
      const io = attachStdio(ctx, { interactive: Boolean(f.interactive), tty: Boolean(f.tty), onBroken: () => stop.abort(new Error('output closed')) });
      const { stdin, out, err, win } = io;
      io.makeRaw();
      let r;
      const unguard = guardSignals(() => {});
      const onAbort = (): void => stop.abort(ctx.signal.reason);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      try {
        r = await execContainer(
          ctx.root(),
          container,
          { args: command, env: f.env, workdir: f.workdir, user: f.user, tty: f.tty, hostEnv: ctx.env, signal: ctx.signal },
          {
            stdin,
            stdout: out.stream,
            stderr: err.stream,
            signal: stop.signal,
            ...(win?.terminalSize ? { terminalSize: win.terminalSize } : {}),
            ...(win ? { onStart: win.onStart } : {}),
          },
        );
      } catch (e) {
        if (ctx.signal.aborted) throw new ExitError(128 + (abortSignalName(ctx.signal) === 'SIGINT' ? 2 : 15));
        if (stop.signal.aborted) throw new ExitError(141); // as a process killed by SIGPIPE
        throw withRunStatus(e);
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
        io.release();
        unguard();
      }
      if (r.exitCode !== 0) throw new ExitError(r.exitCode);
    });
}
