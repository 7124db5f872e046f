/**
 * `imgbuild images [REPOSITORY[:TAG]]`: the local images as Docker lists them
 * (REPOSITORY TAG IMAGE ID CREATED SIZE), newest first; `-q` ids only, `--digests` adds the manifest
 * digest, `--format` takes `table [TEMPLATE]`, `json` (one object per line) or a Go template, and
 * `--filter` Docker's image filters.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { collectFilter, parseFilters } from '../filters.js';
import { IMAGE_DIGESTS_TABLE, IMAGE_FORMAT, imageRow, type ImageRowInput } from '../rows.js';
import { formatRows } from '../template/index.js';
import { shortId } from '../format.js';
import { imageId, imageSize } from '../../image/model.js';
import { familiarName, parseReference, repositoryName } from '../../image/reference.js';
import { IMAGE_FILTER_KEYS, imageFilter } from '../../store/image-filter.js';
import { listImages } from '../../store/images.js';
import { allRepoDigests } from '../../store/repo-digests.js';

interface Opts {
  quiet?: boolean;
  digests?: boolean;
  trunc?: boolean;
  all?: boolean;
  format?: string;
  filter: string[];
}

/** Docker's `raw` format for images. */
const RAW = 'repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';
const RAW_DIGESTS = 'repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('images')
    .description('list images in the local store')
    .argument('[repository]', 'only images of this repository (optionally with :tag)')
    .option('-q, --quiet', 'only show image ids')
    .option('--digests', 'show manifest digests')
    .option('--no-trunc', 'do not truncate ids')
    .option('-a, --all', 'show all images (accepted for compatibility; there are no intermediate images)')
    .option('--format <format>', "'table', 'table TEMPLATE', 'json', 'raw' or a Go template ({{.Repository}} {{.Tag}} {{.ID}} ...)")
    .option('-f, --filter <filter>', 'filter: dangling=true|false, label=k[=v], before=IMAGE, since=IMAGE, reference=PATTERN (repeatable)', collectFilter, [] as string[])
    .action(async (repository: string | undefined, opts: Opts) => {
      const filters = parseFilters(opts.filter, IMAGE_FILTER_KEYS);
      const store = await ctx.store();
      const keep = await imageFilter(store, filters);
      let only: { repo: string; tag?: string } | undefined;
      if (repository) {
        const r = parseReference(repository);
        const explicitTag = /:[\w][\w.-]*$/.test(repository.split('/').pop() ?? '');
        only = { repo: repositoryName(r), ...(explicitTag && r.tag ? { tag: r.tag } : {}) };
      }
      const rows: ImageRowInput[] = [];
      const repoDigests = await allRepoDigests(store.root);
      // A row's digest is the one its repository served (Docker's `<none>` for an image never pushed or pulled).
      const digestFor = (id: string, repo: string): string => {
        for (const r of repoDigests[id] ?? []) {
          const p = parseReference(r);
          if (familiarName(p) === repo && p.digest) return p.digest;
        }
        return '<none>';
      };
      for (const li of await listImages(store)) {
        if (!li.image) {
          ctx.stderr.write(`imgbuild: warning: cannot read image ${li.entry.ref ?? li.entry.descriptor.digest}: ${li.error?.message ?? 'unknown error'}\n`);
          continue;
        }
        let repo: string | undefined;
        let tag: string | undefined;
        if (li.entry.ref) {
          const r = parseReference(li.entry.ref);
          if (only && (repositoryName(r) !== only.repo || (only.tag !== undefined && r.tag !== only.tag))) continue;
          repo = familiarName(r);
          tag = r.tag ?? '<none>';
        } else if (only) continue;
        const created = li.image.config.created;
        if (!keep({ ...(repo !== undefined ? { repo, tag } : {}), ...(created !== undefined ? { created } : {}), labels: li.image.config.config?.Labels ?? {} })) continue;
        rows.push({
          repo: repo ?? '<none>',
          tag: tag ?? '<none>',
          digest: repo !== undefined ? digestFor(imageId(li.image), repo) : '<none>',
          id: imageId(li.image),
          ...(created !== undefined ? { created } : {}),
          size: imageSize(li.image),
        });
      }
      rows.sort((a, b) => (Date.parse(b.created ?? '') || 0) - (Date.parse(a.created ?? '') || 0) || a.repo.localeCompare(b.repo) || a.tag.localeCompare(b.tag));
      const trunc = opts.trunc !== false;
      if (opts.quiet) {
        if (opts.format !== undefined && opts.format !== 'table') ctx.stderr.write('WARNING: Ignoring custom format, because both --format and --quiet are set.\n');
        const seen = new Set<string>();
        for (const r of rows) {
          if (seen.has(r.id)) continue;
          seen.add(r.id);
          ctx.stdout.write(`${trunc ? shortId(r.id) : r.id}\n`);
        }
        return;
      }
      let format = opts.format === undefined || opts.format === '' || opts.format === 'table' ? (opts.digests ? IMAGE_DIGESTS_TABLE : IMAGE_FORMAT.defaultTable) : opts.format;
      if (format === 'raw') format = opts.digests ? RAW_DIGESTS : RAW;
      const now = new Date();
      ctx.stdout.write(formatRows(format, rows.map((r) => imageRow(r, { trunc, now })), IMAGE_FORMAT));
    });
}
