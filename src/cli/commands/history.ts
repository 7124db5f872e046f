/**
 * `imgbuild history IMAGE`: the image's build steps newest first, as Docker shows them
 * (IMAGE CREATED CREATED BY SIZE COMMENT). Only the top step carries the image id; earlier steps
 * are `<missing>` because their intermediate images are not kept, exactly as with pulled images.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ellipsis, formatAgo, formatSize, shortId, table } from '../format.js';
import { InvalidArgumentError } from '../../errors.js';
import { imageId } from '../../image/model.js';
import { findImage } from '../../store/images.js';

interface Opts {
  trunc?: boolean;
  quiet?: boolean;
  human?: boolean;
  format?: string;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('history')
    .description('show the history of an image')
    .argument('<image>')
    .option('--no-trunc', 'do not truncate output')
    .option('-q, --quiet', 'only show image ids')
    .option('-H, --human [bool]', 'print sizes and dates in human readable format', (v: string) => v !== 'false', true)
    .option('--format <format>', "output format: 'table' (default) or 'json'")
    .action(async (input: string, opts: Opts) => {
      const format = opts.format ?? 'table';
      if (format !== 'table' && format !== 'json') throw new InvalidArgumentError(`unsupported --format ${JSON.stringify(format)}: use table or json`);
      const store = await ctx.store();
      const img = await findImage(store, input);
      const layers = img.manifest.layers;
      let history = img.config.history ?? [];
      if (history.length === 0) history = layers.map(() => ({}));
      let li = 0;
      const steps = history.map((h) => {
        const layer = h.empty_layer ? undefined : layers[li++];
        return { h, size: layer?.size ?? 0 };
      });
      steps.reverse();
      const id = imageId(img);
      const rows = steps.map((s, i) => ({
        id: i === 0 ? id : '<missing>',
        created: s.h.created,
        createdBy: s.h.created_by ?? '',
        size: s.size,
        comment: s.h.comment ?? '',
      }));
      const human = opts.human !== false;
      const idOf = (v: string): string => (v === '<missing>' || opts.trunc === false ? v : shortId(v));
      if (opts.quiet) {
        for (const r of rows) ctx.stdout.write(`${idOf(r.id)}\n`);
        return;
      }
      if (format === 'json') {
        for (const r of rows) {
          ctx.stdout.write(
            `${JSON.stringify({
              Comment: r.comment,
              CreatedAt: r.created ?? '',
              CreatedBy: r.createdBy,
              CreatedSince: formatAgo(r.created),
              ID: idOf(r.id),
              Size: human ? formatSize(r.size) : String(r.size),
            })}\n`,
          );
        }
        return;
      }
      ctx.stdout.write(
        table([
          ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
          ...rows.map((r) => [
            idOf(r.id),
            human ? formatAgo(r.created) : (r.created ?? ''),
            opts.trunc === false ? r.createdBy : ellipsis(r.createdBy.replace(/\s+/g, ' '), 45),
            human ? formatSize(r.size) : String(r.size),
            r.comment,
          ]),
        ]),
      );
    });
}
