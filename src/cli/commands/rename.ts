/** `imgbuild rename CONTAINER NEW_NAME` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { renameContainer } from '../../containers/rename.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('rename')
    .description('rename a container')
    .argument('<container>', 'container name or id')
    .argument('<new-name>', 'its new name')
    .action(async (container: string, newName: string) => {
      await renameContainer(ctx.root(), container, newName);
    });
}
