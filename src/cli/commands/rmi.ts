/**
 * `imgbuild rmi [-f] IMAGE...`: removes tags, and the image itself once its last tag is gone
 * (Docker's rules: an id naming several tags needs -f; an image a container was created from is
 * refused unless -f, and then only untagged so the container keeps its image).
 */
import type { Command } from 'commander';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CliContext } from '../context.js';
import { ImgbuildError } from '../../errors.js';

export class ImageInUseError extends ImgbuildError {
  constructor(readonly image: string, readonly container: string, readonly id: string) {
    super('FAILED_PRECONDITION', `unable to remove ${image} (must force): container ${container.slice(0, 12)} is using its image ${id}`);
    this.name = 'ImageInUseError';
  }
}

export class ImageConflictError extends ImgbuildError {
  constructor(readonly image: string, reason: string) {
    super('FAILED_PRECONDITION', `unable to delete ${image} (must be forced): ${reason}`);
    this.name = 'ImageConflictError';
  }
}

/** Manifest digest → ids of the containers created from it (`<root>/containers/<id>/state.json`). */
export async function containerImageUsers(root: string): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  let ids: string[];
  try {
    ids = await readdir(join(root, 'containers'));
  } catch {
    return users;
  }
  for (const id of ids) {
    let state: { image?: unknown; id?: unknown };
    try {
      state = JSON.parse(await readFile(join(root, 'containers', id, 'state.json'), 'utf8')) as typeof state;
    } catch {
      continue;
    }
    if (typeof state.image !== 'string') continue;
    const list = users.get(state.image) ?? [];
    list.push(typeof state.id === 'string' ? state.id : id);
    users.set(state.image, list);
  }
  return users;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('rmi')
    .description('remove images')
    .argument('<images...>', 'image names or ids')
    .option('-f, --force', 'remove even when tagged several times or used by a container')
    .option('--no-prune', 'accepted for compatibility')
    .action(async (inputs: string[], opts: { force?: boolean }) => {
      const { findImage, loadImage } = await import('../../store/images.js');
const { imageId } = await import('../../image/model.js');
      const { parseReference, formatReference, familiarReference } = await import('../../image/reference.js');
      const { ImageNotFoundError } = await import('../../store/errors.js');
const { InvalidReferenceError } = await import('../../image/errors.js');
      const store = await ctx.store();
      const force = Boolean(opts.force);
      const users = await containerImageUsers(ctx.root());
      const errors: Error[] = [];
      let deletedAny = false;
      const display = (ref: string): string => familiarReference(parseReference(ref));

      const userOf = async (digest: string): Promise<string | undefined> => {
        const direct = users.get(digest)?.[0];
        if (direct) return direct;
        // A container records the platform manifest; the index entry leads to it.
        if (users.size === 0) return undefined;
        const entry = (await store.list()).find((e) => e.descriptor.digest === digest);
        if (!entry) return undefined;
        const img = await loadImage(store, entry.descriptor).catch(() => undefined);
        return img ? users.get(img.descriptor.digest)?.[0] : undefined;
      };

      const deleteImage = async (digest: string, id: string, label: string): Promise<void> => {
        const user = await userOf(digest);
        if (user !== undefined) {
          if (!force) throw new ImageInUseError(label, user, id);
          // Forced: drop the names but keep the image as dangling while a container needs it.
          const removed = await store.removeManifest(digest as never);
          for (const r of removed) {
            const ref = r.annotations?.['io.containerd.image.name'] ?? r.annotations?.['org.opencontainers.image.ref.name'];
            if (ref) ctx.stdout.write(`Untagged: ${display(ref)}\n`);
          }
          const first = removed[0];
          if (first) await store.keepUntagged(first);
          return;
        }
        const removed = await store.removeManifest(digest as never);
        for (const r of removed) {
          const ref = r.annotations?.['io.containerd.image.name'] ?? r.annotations?.['org.opencontainers.image.ref.name'];
          if (ref) ctx.stdout.write(`Untagged: ${display(ref)}\n`);
        }
        ctx.stdout.write(`Deleted: ${id}\n`);
        deletedAny = true;
      };

      for (const input of inputs) {
        try {
          let full: string | undefined;
          try {
            const r = parseReference(input);
            if (!r.digest) full = formatReference(r);
          } catch (e) {
            if (!(e instanceof InvalidReferenceError)) throw e;
          }
          const entries = await store.list();
          const byTag = full !== undefined ? entries.find((e) => e.ref === full) : undefined;
          if (byTag && full !== undefined) {
            const digest = byTag.descriptor.digest;
            const others = entries.filter((e) => e.descriptor.digest === digest && e.ref !== undefined && e.ref !== full);
            if (others.length > 0) {
              await store.untag(full);
              ctx.stdout.write(`Untagged: ${display(full)}\n`);
              continue;
            }
            const img = await loadImage(store, byTag.descriptor).catch(() => undefined);
            await deleteImage(digest, img ? imageId(img) : digest, display(full));
            continue;
          }
          const img = await findImage(store, input);
          const top = img.indexDescriptor ?? img.descriptor;
          const tagged = entries.filter((e) => e.descriptor.digest === top.digest && e.ref !== undefined);
          if (tagged.length > 1 && !force) {
            throw new ImageConflictError(input, `image is referenced in multiple repositories (${tagged.map((e) => display(e.ref!)).join(', ')})`);
          }
          if (!entries.some((e) => e.descriptor.digest === top.digest)) throw new ImageNotFoundError(input);
          await deleteImage(top.digest, imageId(img), input);
        } catch (e) {
          errors.push(e as Error);
        }
      }
      if (deletedAny) await store.gc();
      // main.ts prints one line per failure.
      if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors);
    });
}
