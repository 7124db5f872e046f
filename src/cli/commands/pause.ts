/** `imgbuild pause CONTAINER...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { pauseContainer } from '../../containers/pause.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('pause')
    .description('freeze every process of running containers (cgroup freezer)')
    .argument('<containers...>', 'container names or ids')
    .action(async (names: string[]) => {
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await pauseContainer(ctx.root(), n);
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      // Every operand is tried; main.ts prints one line per failure.
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
