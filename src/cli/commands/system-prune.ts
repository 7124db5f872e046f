/**
 * `imgbuild system prune [-a] [--volumes] [-f]`: stopped containers, dangling images (with -a every
 * image no container uses), the build cache (with -a its RUN cache mounts too), and with --volumes
 * the anonymous volumes no container uses (as `volume prune`), with Docker's output (-f is accepted:
 * imgbuild never prompts).
 * There are no user-defined networks to remove.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatSize } from '../format.js';
import { familiarReference, parseReference } from '../../image/reference.js';

/** Removes the anonymous volumes no container uses (as `volume prune` does without -a). */
async function pruneUnusedVolumes(root: string, signal: AbortSignal): Promise<{ removed: string[]; bytes: number }> {
  const [{ pruneVolumes }, { liveContainerIds }] = await Promise.all([import('../../volumes/store.js'), import('../../containers/volumes.js')]);
  return pruneVolumes(root, { live: () => liveContainerIds(root), signal });
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('prune')
    .description('remove stopped containers, dangling images and the build cache')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('--volumes', 'prune volumes too')
    .option('-f, --force', 'do not prompt for confirmation (imgbuild never prompts)')
    .action(async (f: { all?: boolean; volumes?: boolean }) => {
      const [{ pruneStoppedContainers }, { pruneUnusedImages }, { pruneBuildCache }, { removeStaleBuildDirs }] = await Promise.all([
        import('../../containers/prune.js'),
        import('../../containers/system.js'),
        import('../../builder/cache-usage.js'),
        import('../../builder/build.js'),
      ]);
      const store = await ctx.store();
      const containers = await pruneStoppedContainers(ctx.root(), { signal: ctx.signal });
      // After the containers: the volumes only they used are unused now.
      const volumes = f.volumes ? await pruneUnusedVolumes(ctx.root(), ctx.signal) : { removed: [], bytes: 0 };
      // The build cache's records go before the images' blobs are collected, so that the layers
      // only they named are collected too.
      const cache = await pruneBuildCache(store, { all: f.all });
      await removeStaleBuildDirs(ctx.root());
      const images = await pruneUnusedImages(store, { all: f.all, signal: ctx.signal });
      let out = '';
      if (containers.removed.length > 0) out += `Deleted Containers:\n${containers.removed.join('\n')}\n\n`;
      if (volumes.removed.length > 0) out += `Deleted Volumes:\n${volumes.removed.join('\n')}\n\n`;
      const lines: string[] = [];
      for (const p of images.images) {
        if (p.untagged !== undefined) lines.push(`untagged: ${familiarReference(parseReference(p.untagged))}`);
        if (p.deleted !== undefined) lines.push(`deleted: ${p.deleted}`);
      }
      if (lines.length > 0) out += `Deleted Images:\n${lines.join('\n')}\n\n`;
      if (cache.length > 0) out += `Deleted build cache objects:\n${cache.join('\n')}\n\n`;
      ctx.stdout.write(`${out}Total reclaimed space: ${formatSize(containers.bytes + volumes.bytes + images.bytes)}\n`);
    });
}
