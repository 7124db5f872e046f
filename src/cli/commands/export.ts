/** `imgbuild export [-o FILE] CONTAINER` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { exportContainer } from '../../containers/export.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('export')
    .description("write a container's filesystem as a tar archive (to stdout, or -o FILE)")
    .argument('<container>', 'container name or id')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (container: string, f: { output?: string }) => {
      if (f.output === undefined && ctx.isTTY) throw new InvalidArgumentError('cowardly refusing to write a tar to a terminal; use -o FILE or redirect stdout');
      await exportContainer(ctx.root(), container, f.output ?? ctx.stdout, { signal: ctx.signal });
    });
}
