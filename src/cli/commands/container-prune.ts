/** `imgbuild container prune [-f] [--filter F]...`: removes stopped containers, as Docker prints it. */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatSize } from '../format.js';
import { pruneStoppedContainers } from '../../containers/prune.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('prune')
    .description('remove all stopped containers')
    .option('-f, --force', 'do not prompt for confirmation (imgbuild never prompts)')
    .option('--filter <filter>', 'until=<duration|timestamp>, label=key[=value], label!=key[=value] (repeatable)', collect, [])
    .action(async (f: { filter: string[] }) => {
      const r = await pruneStoppedContainers(ctx.root(), { filters: f.filter, signal: ctx.signal });
      if (r.removed.length > 0) ctx.stdout.write(`Deleted Containers:\n${r.removed.join('\n')}\n\n`);
      ctx.stdout.write(`Total reclaimed space: ${formatSize(r.bytes)}\n`);
    });
}
