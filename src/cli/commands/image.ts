/**
 * `imgbuild image prune [-a] [-f]`: removes dangling images (with -a every image no container
 * uses), then the blobs and snapshots nothing needs any more, as Docker prints it.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatSize } from '../format.js';
import { pruneImages } from '../../containers/images.js';
import { familiarReference, parseReference } from '../../image/reference.js';
import { pruneImageSnapshots } from '../../snapshots/diff.js';

export default function register(program: Command, ctx: CliContext): void {
  const image = program.command('image').description('manage images');
  image
    .command('prune')
    .description('remove dangling images (with -a, every image no container uses)')
    .option('-a, --all', 'remove all images not used by a container, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation (imgbuild never prompts)')
    .action(async (f: { all?: boolean }) => {
      const store = await ctx.store();
      const lines: string[] = [];
      for (const p of await pruneImages(store, { all: f.all })) {
        if (p.untagged !== undefined) lines.push(`untagged: ${familiarReference(parseReference(p.untagged))}`);
        if (p.deleted !== undefined) lines.push(`deleted: ${p.deleted}`);
      }
      const blobs = await store.gc();
      const snaps = await pruneImageSnapshots(store, { signal: ctx.signal });
      if (lines.length > 0) ctx.stdout.write(`Deleted Images:\n${lines.join('\n')}\n\n`);
      ctx.stdout.write(`Total reclaimed space: ${formatSize(blobs.bytes + snaps.bytes)}\n`);
    });
}
