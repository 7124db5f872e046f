/** `imgbuild unpause CONTAINER...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { unpauseContainer } from '../../containers/pause.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('unpause')
    .description('thaw paused containers')
    .argument('<containers...>', 'container names or ids')
    .action(async (names: string[]) => {
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await unpauseContainer(ctx.root(), n);
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      // Every operand is tried; main.ts prints one line per failure.
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
