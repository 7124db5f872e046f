/** `imgbuild wait CONTAINER...`: blocks until each container stops, then prints its exit code (one line per container). */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { getContainer } from '../../containers/state.js';
import { waitContainer } from '../../containers/stop.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('wait')
    .description('wait until containers stop, then print their exit codes')
    .argument('<containers...>', 'container names or ids')
    .action(async (names: string[]) => {
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          const rec = await getContainer(ctx.root(), n);
          const done = (await waitContainer(ctx.root(), rec.id, { signal: ctx.signal })) ?? rec;
          ctx.stdout.write(`${done.state.exitCode ?? 0}\n`);
        } catch (e) {
          if (ctx.signal.aborted) throw e;
          failures.push(e);
        }
      }
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
