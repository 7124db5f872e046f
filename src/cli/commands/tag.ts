/** `imgbuild tag SOURCE TARGET`: gives an image another name (an index.json entry). */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { tagImage } from '../../store/images.js';
import { formatReference, parseReference } from '../../image/reference.js';
import { InvalidReferenceError } from '../../image/errors.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('tag')
    .description('create a tag TARGET that refers to SOURCE')
    .argument('<source>', 'image name, name@digest or image id')
    .argument('<target>', 'new name[:tag]')
    .action(async (source: string, target: string) => {
      const dest = parseReference(target);
      if (dest.digest) throw new InvalidReferenceError(target, 'a tag cannot contain a digest');
      const store = await ctx.store();
      await tagImage(store, source, formatReference(dest));
    });
}
