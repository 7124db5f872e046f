/**
 * `imgbuild prune [-a]`: removes what killed imgbuild processes left of containers, dangling
 * images (with -a every image no container was created from), then the blobs nothing references
 * any more and the overlay snapshots no remaining image needs, and reports the space reclaimed.
 */
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CliContext } from '../context.js';
import type { OciStore } from '../../store/store.js';

/** Removes unreferenced snapshots when the overlay module is present; returns the bytes freed. */
async function pruneOverlay(root: string, store: OciStore, signal: AbortSignal): Promise<{ removed: string[]; bytes: number }> {
  const overlayRoot = join(root, 'overlay');
  try {
    await stat(overlayRoot);
  } catch {
    return { removed: [], bytes: 0 };
  }
  let diff: { pruneSnapshots?: (sn: unknown, keep: Set<string>, o: { storeRoot: string; signal: AbortSignal }) => Promise<{ removed: string[]; bytes: number }> };
  let overlay: { OverlaySnapshotter?: { open(root: string, o?: { signal?: AbortSignal }): Promise<unknown> } };
  try {
    diff = (await import('../../snapshots/diff.js' as string)) as typeof diff;
    overlay = (await import('../../snapshots/overlay.js' as string)) as typeof overlay;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return { removed: [], bytes: 0 };
    throw e;
  }
  if (typeof diff.pruneSnapshots !== 'function' || !overlay.OverlaySnapshotter) return { removed: [], bytes: 0 };
  // Mounts a killed build left hold snapshot dirs: they go first.
  const { removeStaleBuildDirs } = await import('../../builder/build.js');
  await removeStaleBuildDirs(root);
  const { listImages } = await import('../../store/images.js');
const { chainIds } = await import('../../image/model.js');
  const keep = new Set<string>();
  for (const li of await listImages(store)) {
    // An image that cannot be read keeps nothing; its snapshots stay until it is fixed or removed,
    // because we cannot know its chain.
    if (!li.image) return { removed: [], bytes: 0 };
    for (const c of chainIds(li.image.config.rootfs?.diff_ids ?? [])) keep.add(c);
  }
  const sn = await overlay.OverlaySnapshotter.open(overlayRoot, { signal });
  // Snapshots leased by running builds are spared (see overlay/diff.ts).
  return diff.pruneSnapshots(sn, keep, { storeRoot: root, signal });
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('prune')
    .description('remove unused images, blobs and snapshots')
    .option('-a, --all', 'remove all images not used by a container, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation (imgbuild never prompts)')
    .action(async (opts: { all?: boolean }) => {
      const { listImages } = await import('../../store/images.js');
const { imageId } = await import('../../image/model.js');
      const { parseReference, familiarReference } = await import('../../image/reference.js');
      const { containerImageUsers } = await import('./rmi.js');
      const { formatSize } = await import('../format.js');
      const store = await ctx.store();
      // What killed runs left (half-made containers, their cgroups, netns, proxies, snapshots)
      // goes first, so that the images those named are no longer held.
      const { pruneLeftovers } = await import('../../containers/lifecycle.js');
      const left = await pruneLeftovers(ctx.root());
      const users = await containerImageUsers(ctx.root());
      const lines: string[] = [];
      const gone = new Set<string>();
      for (const li of await listImages(store)) {
        const { entry, image } = li;
        if (entry.ref !== undefined && !opts.all) continue;
        const used = users.has(entry.descriptor.digest) || (image !== undefined && users.has(image.descriptor.digest));
        if (used) continue;
        if (entry.ref !== undefined) {
          await store.untag(entry.ref);
          lines.push(`untagged: ${familiarReference(parseReference(entry.ref))}`);
        } else {
          await store.removeManifest(entry.descriptor.digest);
        }
        const id = image ? imageId(image) : entry.descriptor.digest;
        if (!gone.has(id)) lines.push(`deleted: ${id}`);
        gone.add(id);
      }
      const out = lines;
      const blobs = await store.gc();
      const snaps = await pruneOverlay(ctx.root(), store, ctx.signal);
      if (out.length > 0) ctx.stdout.write(`Deleted Images:\n${out.join('\n')}\n\n`);
      if (snaps.removed.length > 0) ctx.stdout.write(`Deleted snapshots: ${snaps.removed.length}\n`);
      const leftIds = new Set([...left.containers, ...left.kernelObjects, ...left.snapshots.map((k) => k.slice(4))]);
      if (leftIds.size > 0) ctx.stdout.write(`Deleted leftovers of ${leftIds.size} container${leftIds.size === 1 ? '' : 's'}\n`);
      ctx.stdout.write(`Total reclaimed space: ${formatSize(blobs.bytes + snaps.bytes)}\n`);
    });
}
