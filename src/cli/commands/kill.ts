/** `imgbuild kill [-s SIGNAL] CONTAINER...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { signalNumber } from '../../containers/signals.js';
import { killContainer } from '../../containers/stop.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('kill')
    .description('send a signal to running containers (default SIGKILL, to every process)')
    .argument('<containers...>', 'container names or ids')
    .option('-s, --signal <signal>', 'signal name or number', 'SIGKILL')
    .action(async (names: string[], f: { signal: string }) => {
      signalNumber(f.signal); // reject an unknown signal before touching any container
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await killContainer(ctx.root(), n, f.signal);
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      // Every operand is tried; main.ts prints one line per failure.
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
