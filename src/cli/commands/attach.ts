/**
 * `imgbuild attach [--sig-proxy=true|false] CONTAINER`: the output of a running detached container
 * from now on, until it stops; its exit status becomes ours. Ctrl-C (and SIGTERM) are passed on to
 * the container unless --sig-proxy=false, which makes them detach instead.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitError, InvalidArgumentError } from '../../errors.js';
import { attachable, followOutput } from '../../containers/attach.js';
import { killContainer } from '../../containers/stop.js';
import { abortSignalName, guardSignals, pipeGuard } from './run.js';

interface AttachFlags {
  sigProxy: string | boolean;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('attach')
    .description("attach to a running container's output (and pass Ctrl-C on to it)")
    .argument('<container>', 'container name or id')
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
      let end;
      try {
        end = await followOutput(root, rec, out.stream, { signal: detach.signal });
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
        unguard();
        out.release();
      }
      if (detach.signal.aborted) throw new ExitError(ctx.signal.aborted ? 128 + (abortSignalName(ctx.signal) === 'SIGINT' ? 2 : 15) : 0);
      const code = end?.state.exitCode ?? 0;
      if (code !== 0) throw new ExitError(code);
    });
}
