import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ImgbuildError } from '../../errors.js';

export default function register(program: Command, _ctx: CliContext): void {
  program
    .command('push')
    .description('push (not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => {
      throw new ImgbuildError('NOT_IMPLEMENTED', 'push is not implemented yet');
    });
}
