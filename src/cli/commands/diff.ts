/** `imgbuild diff CONTAINER` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { containerChanges } from '../../containers/changes.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('diff')
    .description("list the files a container added (A), changed (C) or deleted (D)")
    .argument('<container>', 'container name or id')
    .action(async (container: string) => {
      let out = '';
      for (const c of await containerChanges(ctx.root(), container, { signal: ctx.signal })) out += `${c.kind} ${c.path}\n`;
      ctx.stdout.write(out);
    });
}
