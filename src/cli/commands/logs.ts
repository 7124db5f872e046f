/** `imgbuild logs [-f] [-t] [--since T] [--until T] [--tail N] CONTAINER` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { streamLogs } from '../../containers/logs.js';
import { parseLogTime } from '../../containers/log-times.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .description('print the output of a detached container')
    .argument('<container>', 'container name or id')
    .option('-f, --follow', 'keep printing output until the container stops')
    .option('-n, --tail <lines>', 'only the last N lines')
    .option('-t, --timestamps', 'prefix each line with the time it was written')
    .option('--since <time>', 'only lines since a time (2026-12-07T03:00:00Z, unix seconds) or for a duration (10m)')
    .option('--until <time>', 'only lines before a time or a duration ago')
    .action(async (container: string, f: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string }) => {
      let tail: number | undefined;
      if (f.tail !== undefined && f.tail !== 'all') {
        tail = Number(f.tail);
        if (!Number.isInteger(tail) || tail < 0) throw new InvalidArgumentError(`invalid --tail ${JSON.stringify(f.tail)}`);
      }
      const now = new Date();
      await streamLogs(ctx.root(), container, ctx.stdout, {
        follow: f.follow,
        tail,
        timestamps: f.timestamps,
        ...(f.since !== undefined ? { since: parseLogTime(f.since, 'since', now) } : {}),
        ...(f.until !== undefined ? { until: parseLogTime(f.until, 'until', now) } : {}),
        signal: ctx.signal,
      });
    });
}
