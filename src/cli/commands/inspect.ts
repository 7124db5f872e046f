/**
 * `imgbuild inspect NAME...`: a JSON array describing each image (Docker's `image inspect` fields,
 * plus the manifest descriptor, the manifest and the full config as stored). A name that is not an
 * image is looked up as a container.
 * `--format` takes a small Go-template subset: `{{.Field.Sub}}` and `{{json .Field}}`.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError, isImgbuildError, NotFoundError } from '../../errors.js';
import { inspectContainer } from '../../containers/inspect.js';
import { imageId, imageSize } from '../../image/model.js';
import { familiarReference, parseReference } from '../../image/reference.js';
import { ImageNotFoundError } from '../../store/errors.js';
import { findImage } from '../../store/images.js';
import { repoDigestsOf } from '../../store/repo-digests.js';

interface Opts {
  format?: string;
  type?: string;
}

function lookup(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const k of path.split('.').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Renders `{{.A.B}}` / `{{json .A}}`; values print like Go's text/template would for plain data. */
export function renderTemplate(tpl: string, data: unknown): string {
  const unsupported = /\{\{(?!\s*(?:json\s+)?\.[\w.]*\s*\}\})/;
  if (unsupported.test(tpl)) throw new InvalidArgumentError(`unsupported template ${JSON.stringify(tpl)}: only {{.Field}} and {{json .Field}} are understood`);
  return tpl.replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_m, json: string | undefined, path: string) => {
    const v = lookup(data, path);
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(' ')}]`;
    if (typeof v === 'object') return `map[${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}:${typeof x === 'object' ? JSON.stringify(x) : String(x)}`).join(' ')}]`;
    return String(v);
  });
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
      const store = await ctx.store();
      const entries = await store.list();
      const out: unknown[] = [];
      let missing: string | undefined;
      for (const name of names) {
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
        let container: object | undefined;
        if (opts.type !== 'image') {
          try {
            container = await inspectContainer(ctx.root(), name);
          } catch (e) {
            if (!(isImgbuildError(e) && e.code === 'NOT_FOUND')) throw e;
          }
        }
        if (container) out.push(container);
        else missing ??= name;
      }
      if (opts.format !== undefined) {
        for (const o of out) ctx.stdout.write(`${renderTemplate(opts.format, o)}\n`);
      } else {
        ctx.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      }
      if (missing !== undefined) {
        if (opts.type === 'image') throw new ImageNotFoundError(missing);
        throw new NotFoundError(opts.type === 'container' ? `no such container: ${missing}` : `no such image or container: ${missing}`);
      }
    });
}
