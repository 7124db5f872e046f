/**
 * `imgbuild attach [--no-stdin] [--sig-proxy=true|false] CONTAINER`: the output of a running
 * detached container from now on, until it stops, and our stdin into it when it was created with
 * -i; its exit status becomes ours. Ctrl-C (and SIGTERM) are passed on to the container unless
 * --sig-proxy=false, which makes them detach instead; ctrl-p ctrl-q detaches from a -t container.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitError, InvalidArgumentError } from '../../errors.js';
import { attachable, detachKeys, followOutput, openStdin } from '../../containers/attach.js';
import { killContainer } from '../../containers/stop.js';
import { abortSignalName, guardSignals, pipeGuard } from './run.js';

interface AttachFlags {
  sigProxy: string | boolean;
  /** Commander's name for `--no-stdin` (false when given). */
  stdin: boolean;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('attach')
    .description("attach to a running container's output (and pass Ctrl-C on to it)")
    .argument('<container>', 'container name or id')
    .option('--no-stdin', 'do not attach stdin (attached by default to a container created with -i)')
    .option('--sig-proxy [bool]', 'pass the signals we receive on to the container', 'true')
    .action(async (name: string, f: AttachFlags) => {
      const proxy = String(f.sigProxy);
      if (proxy !== 'true' && proxy !== 'false') throw new InvalidArgumentError(`invalid --sig-proxy ${JSON.stringify(proxy)}: true or false`);
      const root = ctx.root();
      const rec = await attachable(root, name);
      const detach = new AbortController();
      // A terminal's Ctrl-C reaches a tty container through its terminal, never as a signal.
      const sigProxy = proxy === 'true' && !rec.hostConfig.tty;
      const forward = (sig: NodeJS.Signals): void => void killContainer(root, rec.id, sig).catch(() => {});
      const onAbort = (): void => {
        if (sigProxy) forward(abortSignalName(ctx.signal));
        else detach.abort();
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      // Later Ctrl-Cs are passed on too (main.ts would otherwise end us on the second one).
      const unguard = guardSignals(() => (sigProxy ? forward('SIGINT') : detach.abort()));
      const out = pipeGuard(ctx.stdout, () => detach.abort());
      // stdin goes to the container's FIFO; on a terminal, raw, with ctrl-p ctrl-q to detach.
      const fifo = f.stdin ? await openStdin(root, rec) : undefined;
      const stdin = fifo ? process.stdin : undefined;
      const raw = Boolean(stdin && rec.hostConfig.tty && process.stdin.isTTY);
      if (raw) process.stdin.setRawMode(true);
      const feed = (): void => {
        if (!stdin || !fifo) return;
        fifo.on('error', () => {}); // the container ended: its input is dropped
        (rec.hostConfig.tty ? stdin.pipe(detachKeys(() => detach.abort())) : stdin).pipe(fifo);
      };
      let end;
      try {
        end = await followOutput(root, rec, out.stream, { signal: detach.signal, onFollowing: feed });
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
        unguard();
        out.release();
        if (raw) process.stdin.setRawMode(false);
        if (stdin) {
          stdin.unpipe();
          stdin.pause();
        }
        fifo?.end();
      }
      if (detach.signal.aborted) {
        if (ctx.signal.aborted) throw new ExitError(128 + (abortSignalName(ctx.signal) === 'SIGINT' ? 2 : 15));
        return; // detached (ctrl-p ctrl-q, or our reader went away)
      }
      const code = end?.state.exitCode ?? 0;
      if (code !== 0) throw new ExitError(code);
    });
}
