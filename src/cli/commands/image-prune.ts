/** `imgbuild image prune [-a] [-f]`: removes dangling images (with -a every image no container uses). */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatSize } from '../format.js';
import { familiarReference, parseReference } from '../../image/reference.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('prune')
    .description('remove unused images')
    .option('-a, --all', 'remove all images without a container, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation (imgbuild never prompts)')
    .action(async (f: { all?: boolean }) => {
      const { pruneUnusedImages } = await import('../../containers/system.js');
      const r = await pruneUnusedImages(await ctx.store(), { all: f.all, signal: ctx.signal });
      const lines: string[] = [];
      for (const p of r.images) {
        if (p.untagged !== undefined) lines.push(`untagged: ${familiarReference(parseReference(p.untagged))}`);
        if (p.deleted !== undefined) lines.push(`deleted: ${p.deleted}`);
      }
      if (lines.length > 0) ctx.stdout.write(`Deleted Images:\n${lines.join('\n')}\n\n`);
      ctx.stdout.write(`Total reclaimed space: ${formatSize(r.bytes)}\n`);
    });
}
