/** `imgbuild top CONTAINER [ps OPTIONS]` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { topContainer } from '../../containers/top.js';

/** Go's tabwriter as `docker top` sets it up: cells padded by 3 to at least 20 columns, the last one bare. */
function topTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 20, [...c].length + 3)));
  return rows.map((r) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 20))).join('')}\n`).join('');
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('top')
    .description('show the processes of a running container (options are passed to ps; default -ef)')
    .argument('<container>', 'container name or id')
    .argument('[ps-options...]', 'ps options')
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (container: string, psArgs: string[]) => {
      const r = await topContainer(ctx.root(), container, psArgs, { signal: ctx.signal });
      ctx.stdout.write(topTable([r.titles, ...r.processes]));
    });
}
