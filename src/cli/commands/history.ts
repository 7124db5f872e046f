/**
 * `imgbuild history IMAGE`: the image's build steps newest first, as Docker shows them
 * (IMAGE CREATED CREATED BY SIZE COMMENT). Only the top step carries the image id; earlier steps
 * are `<missing>` because their intermediate images are not kept, exactly as with pulled images.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ellipsis, formatAgo, formatSize, shortId } from '../format.js';
import { goRFC3339 } from '../rows.js';
import { formatRows, GO_TYPE, type RowFormat } from '../template/index.js';
import { imageId } from '../../image/model.js';
import { findImage } from '../../store/images.js';

/** Docker's history columns (`docker history --format`). */
const HISTORY_FORMAT: RowFormat = {
  headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' },
  defaultTable: 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
};

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
    .option('-H, --human [bool]', 'print sizes and dates in human readable format', (v: string) => !/^=?(false|0)$/.test(v), true)
    .option('--format <format>', "'table', 'table TEMPLATE', 'json' or a Go template ({{.ID}} {{.CreatedBy}} {{.Size}} ...)")
    .action(async (input: string, opts: Opts) => {
      const format = opts.format === undefined || opts.format === '' ? HISTORY_FORMAT.defaultTable : opts.format;
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
      // Docker's history context: CreatedAt is RFC 3339, CreatedSince the same unless human, tabs in
      // CREATED BY made spaces and the command cut to 45 characters unless --no-trunc.
      const trunc = opts.trunc !== false;
      const objs = rows.map((r) => {
        const at = r.created ? goRFC3339(r.created) : '';
        const createdBy = r.createdBy.replace(/\t/g, ' ');
        const o: Record<string, string> = {
          Comment: r.comment,
          CreatedAt: at,
          CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
          CreatedSince: human ? formatAgo(r.created) : at,
          ID: idOf(r.id),
          Size: human ? formatSize(r.size) : String(r.size),
        };
        return Object.defineProperty(o, GO_TYPE, { value: '*formatter.historyContext' });
      });
      ctx.stdout.write(formatRows(format, objs, HISTORY_FORMAT));
    });
}
