/**
 * `imgbuild rmi [-f] IMAGE...`: removes tags, and the image itself once its last tag is gone
 * (Docker's rules, in containers/images.ts: an id naming several tags needs -f; an image a
 * container was created from is refused unless -f, and then only untagged).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { removeImages } from '../../containers/images.js';
import { familiarReference, parseReference } from '../../image/reference.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('rmi')
    .description('remove images')
    .argument('<images...>', 'image names or ids')
    .option('-f, --force', 'remove even when tagged several times or used by a container')
    .option('--no-prune', 'accepted for compatibility')
    .action(async (inputs: string[], opts: { force?: boolean }) => {
      const store = await ctx.store();
      const errors: Error[] = [];
      for (const r of await removeImages(store, inputs, { force: opts.force })) {
        for (const ref of r.untagged) ctx.stdout.write(`Untagged: ${familiarReference(parseReference(ref))}\n`);
        if (r.deleted !== undefined) ctx.stdout.write(`Deleted: ${r.deleted}\n`);
        if (r.error) errors.push(r.error);
      }
      // main.ts prints one line per failure.
      if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors);
    });
}
