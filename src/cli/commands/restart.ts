/** `imgbuild restart [-t N] CONTAINER...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { restartContainer } from '../../containers/restart.js';
import { parseSeconds } from './stop.js';
import { withRunStatus } from './run.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('restart')
    .description('stop (STOPSIGNAL, then SIGKILL after the timeout) and start containers again')
    .argument('<containers...>', 'container names or ids')
    .option('-t, --time <seconds>', 'seconds to wait before killing (default: the container\'s --stop-timeout, else 10)')
    .action(async (names: string[], f: { time?: string }) => {
      const t = parseSeconds(f.time);
      const store = await ctx.store();
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await restartContainer(store, n, { ...(t !== undefined ? { timeoutSec: t } : {}), signal: ctx.signal });
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(withRunStatus(e));
        }
      }
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
