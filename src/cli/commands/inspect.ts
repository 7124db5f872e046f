import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ImgbuildError } from '../../errors.js';

export default function register(program: Command, _ctx: CliContext): void {
  program
    .command('inspect')
    .description('inspect (not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => {
      throw new ImgbuildError('NOT_IMPLEMENTED', 'inspect is not implemented yet');
    });
}
