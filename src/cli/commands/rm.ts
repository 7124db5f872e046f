/** `imgbuild rm [-f] CONTAINER...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { removeContainer } from '../../containers/remove.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('rm')
    .description('remove containers (their writable layer, cgroup and network)')
    .argument('<containers...>', 'container names or ids')
    .option('-f, --force', 'kill a running container first')
    .option('-v, --volumes', 'remove the anonymous volumes of the container too')
    .action(async (names: string[], f: { force?: boolean; volumes?: boolean }) => {
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await removeContainer(ctx.root(), n, { force: f.force, removeVolumes: f.volumes });
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      // Every operand is tried; main.ts prints one line per failure.
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
