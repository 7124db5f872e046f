/** `imgbuild stop [-t N] CONTAINER...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { stopContainer } from '../../containers/stop.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('stop')
    .description('stop running containers: STOPSIGNAL (default SIGTERM), then SIGKILL after the timeout')
    .argument('<containers...>', 'container names or ids')
    .option('-t, --time <seconds>', 'seconds to wait before killing', '10')
    .action(async (names: string[], f: { time: string }) => {
      const t = Number(f.time);
      if (!Number.isFinite(t) || t < 0) throw new InvalidArgumentError(`invalid --time ${JSON.stringify(f.time)}`);
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await stopContainer(ctx.root(), n, { timeoutSec: t, signal: ctx.signal });
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      // Every operand is tried; main.ts prints one line per failure.
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
