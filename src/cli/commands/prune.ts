/**
 * `imgbuild prune [-a]`: removes what killed imgbuild processes left of containers, dangling
 * images (with -a every image no container was created from), then the blobs nothing references
 * any more and the overlay snapshots no remaining image needs, and reports the space reclaimed.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatSize } from '../format.js';
import { removeStaleBuildDirs } from '../../builder/build.js';
import { pruneImages } from '../../containers/images.js';
import { pruneLeftovers } from '../../containers/leftovers.js';
import { familiarReference, parseReference } from '../../image/reference.js';
import { pruneImageSnapshots } from '../../snapshots/diff.js';
import { sweepVolumes } from '../../volumes/store.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('prune')
    .description('remove unused images, blobs and snapshots')
    .option('-a, --all', 'remove all images not used by a container, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation (imgbuild never prompts)')
    .action(async (opts: { all?: boolean }) => {
      const store = await ctx.store();
      // What killed runs left (half-made containers, their cgroups, netns, proxies, snapshots)
      // goes first, so that the images those named are no longer held.
      const left = await pruneLeftovers(ctx.root());
      await sweepVolumes(ctx.root()); // half-made and half-removed volumes of killed commands
      const lines: string[] = [];
      for (const p of await pruneImages(store, { all: opts.all })) {
        if (p.untagged !== undefined) lines.push(`untagged: ${familiarReference(parseReference(p.untagged))}`);
        if (p.deleted !== undefined) lines.push(`deleted: ${p.deleted}`);
      }
      const blobs = await store.gc();
      // Mounts a killed build left hold snapshot dirs: they go first.
      await removeStaleBuildDirs(ctx.root());
      const snaps = await pruneImageSnapshots(store, { signal: ctx.signal });
      if (lines.length > 0) ctx.stdout.write(`Deleted Images:\n${lines.join('\n')}\n\n`);
      if (snaps.removed.length > 0) ctx.stdout.write(`Deleted snapshots: ${snaps.removed.length}\n`);
      const leftIds = new Set([...left.containers, ...left.kernelObjects, ...left.snapshots.map((k) => k.slice(4))]);
      if (leftIds.size > 0) ctx.stdout.write(`Deleted leftovers of ${leftIds.size} container${leftIds.size === 1 ? '' : 's'}\n`);
      ctx.stdout.write(`Total reclaimed space: ${formatSize(blobs.bytes + snaps.bytes)}\n`);
    });
}
