/**
 * `imgbuild inspect NAME...`: a JSON array describing each container or image (Docker's `image
 * inspect` fields, plus the manifest descriptor, the manifest and the full config as stored). A
 * name is looked up as a container first, then as an image, in docker inspect's order.
 * `--format` is a Go template run over each object, as `docker inspect -f` does (a missing field
 * is an error there, not `<no value>`).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError, isImgbuildError, NotFoundError } from '../../errors.js';
import { inspectContainer } from '../../containers/inspect.js';
import { imageId, imageSize } from '../../image/model.js';
import { familiarReference, parseReference } from '../../image/reference.js';
import { ImageNotFoundError } from '../../store/errors.js';
import { inspectTemplate } from '../template/index.js';
import { findImage } from '../../store/images.js';
import { repoDigestsOf } from '../../store/repo-digests.js';

interface Opts {
  format?: string;
  type?: string;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('inspect')
    .description('show details of images (or containers) as JSON')
    .argument('<names...>', 'image names, ids or container names')
    .option('-f, --format <template>', 'format each object with a template ({{.Id}}, {{json .Config}})')
    .option('--type <type>', 'only look for this kind of object: image or container')
    .action(async (names: string[], opts: Opts) => {
      if (opts.type !== undefined && opts.type !== 'image' && opts.type !== 'container') {
        throw new InvalidArgumentError(`--type must be image or container, not ${JSON.stringify(opts.type)}`);
      }
      // A template that does not parse fails before anything is looked up, as in Docker.
      const render = opts.format !== undefined ? inspectTemplate(opts.format) : undefined;
      const store = await ctx.store();
      const entries = await store.list();
      const out: unknown[] = [];
      let missing: string | undefined;
      for (const name of names) {
        // A container first, as docker inspect looks: a container's name can also read as an
        // image id prefix (`a1`, `c1`), and that image must not answer for it.
        if (opts.type !== 'image') {
          try {
            out.push(await inspectContainer(ctx.root(), name));
            continue;
          } catch (e) {
            if (!(isImgbuildError(e) && e.code === 'NOT_FOUND')) throw e;
          }
        }
        if (opts.type !== 'container') {
          try {
            const img = await findImage(store, name);
            const top = img.indexDescriptor ?? img.descriptor;
            const tagged = entries.filter((e) => e.ref !== undefined && e.descriptor.digest === top.digest);
            const repoTags = tagged.map((e) => familiarReference(parseReference(e.ref!)));
            const repoDigests = (await repoDigestsOf(store.root, imageId(img))).map((r) => familiarReference(parseReference(r)));
            const c = img.config;
            out.push({
              Id: imageId(img),
              RepoTags: repoTags,
              RepoDigests: repoDigests,
              Created: c.created ?? '',
              Author: c.author ?? '',
              Config: c.config ?? {},
              Architecture: c.architecture,
              ...(c.variant ? { Variant: c.variant } : {}),
              Os: c.os,
              Size: imageSize(img),
              RootFS: { Type: c.rootfs?.type ?? 'layers', Layers: c.rootfs?.diff_ids ?? [] },
              Descriptor: img.descriptor,
              ...(img.indexDescriptor ? { Index: img.indexDescriptor } : {}),
              Manifest: img.manifest,
              ImageConfig: c,
            });
            continue;
          } catch (e) {
            if (!(e instanceof ImageNotFoundError)) throw e;
          }
        }
        missing ??= name;
      }
      if (render) {
        for (const o of out) ctx.stdout.write(`${render(o)}\n`);
      } else {
        ctx.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      }
      if (missing !== undefined) {
        if (opts.type === 'image') throw new ImageNotFoundError(missing);
        throw new NotFoundError(opts.type === 'container' ? `no such container: ${missing}` : `no such image or container: ${missing}`);
      }
    });
}
