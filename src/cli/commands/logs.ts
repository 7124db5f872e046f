/** `imgbuild logs [-f] [--tail N] CONTAINER` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { streamLogs } from '../../containers/logs.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .description('print the output of a detached container')
    .argument('<container>', 'container name or id')
    .option('-f, --follow', 'keep printing output until the container stops')
    .option('-n, --tail <lines>', 'only the last N lines')
    .action(async (container: string, f: { follow?: boolean; tail?: string }) => {
      let tail: number | undefined;
      if (f.tail !== undefined && f.tail !== 'all') {
        tail = Number(f.tail);
        if (!Number.isInteger(tail) || tail < 0) throw new InvalidArgumentError(`invalid --tail ${JSON.stringify(f.tail)}`);
      }
      await streamLogs(ctx.root(), container, ctx.stdout, { follow: f.follow, tail, signal: ctx.signal });
    });
}
