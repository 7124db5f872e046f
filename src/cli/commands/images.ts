/**
 * `imgbuild images [REPOSITORY[:TAG]]`: the local images as Docker lists them
 * (REPOSITORY TAG IMAGE ID CREATED SIZE), newest first; `-q` ids only, `--digests` adds the manifest
 * digest, `--format json` prints one JSON object per line with Docker's field names.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatAgo, formatSize, shortId, table } from '../format.js';
import { InvalidArgumentError } from '../../errors.js';
import { imageId, imageSize } from '../../image/model.js';
import { familiarName, parseReference, repositoryName } from '../../image/reference.js';
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

/** `reference=` patterns match the familiar name like Docker's: `*` within a path component. */
function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${esc}$`);
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('images')
    .description('list images in the local store')
    .argument('[repository]', 'only images of this repository (optionally with :tag)')
    .option('-q, --quiet', 'only show image ids')
    .option('--digests', 'show manifest digests')
    .option('--no-trunc', 'do not truncate ids')
    .option('-a, --all', 'show all images (accepted for compatibility; there are no intermediate images)')
    .option('--format <format>', "output format: 'table' (default) or 'json'")
    .option('-f, --filter <filter>', 'filter: dangling=true|false, reference=PATTERN (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (repository: string | undefined, opts: Opts) => {
      const format = opts.format ?? 'table';
      if (format !== 'table' && format !== 'json') throw new InvalidArgumentError(`unsupported --format ${JSON.stringify(format)}: use table or json`);
      let dangling: boolean | undefined;
      const refPatterns: RegExp[] = [];
      for (const f of opts.filter) {
        const eq = f.indexOf('=');
        const key = eq > 0 ? f.slice(0, eq) : f;
        const value = eq > 0 ? f.slice(eq + 1) : '';
        if (key === 'dangling' && (value === 'true' || value === 'false')) dangling = value === 'true';
        else if (key === 'reference' && value) refPatterns.push(globToRegExp(value));
        else throw new InvalidArgumentError(`unsupported filter ${JSON.stringify(f)}: use dangling=true|false or reference=PATTERN`);
      }
      const store = await ctx.store();
      let filter: { repo: string; tag?: string } | undefined;
      if (repository) {
        const r = parseReference(repository);
        const explicitTag = /:[\w][\w.-]*$/.test(repository.split('/').pop() ?? '');
        filter = { repo: repositoryName(r), ...(explicitTag && r.tag ? { tag: r.tag } : {}) };
      }
      const rows: { repo: string; tag: string; digest: string; id: string; created?: string; size: number }[] = [];
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
        let repo = '<none>';
        let tag = '<none>';
        if (li.entry.ref) {
          const r = parseReference(li.entry.ref);
          if (filter && (repositoryName(r) !== filter.repo || (filter.tag !== undefined && r.tag !== filter.tag))) continue;
          repo = familiarName(r);
          tag = r.tag ?? '<none>';
        } else if (filter) continue;
        if (dangling !== undefined && dangling !== (li.entry.ref === undefined)) continue;
        if (refPatterns.length > 0) {
          if (li.entry.ref === undefined) continue;
          const fam = `${repo}:${tag}`;
          if (!refPatterns.some((re) => re.test(repo) || re.test(fam))) continue;
        }
        const created = li.image.config.created;
        rows.push({
          repo,
          tag,
          digest: digestFor(imageId(li.image), repo),
          id: imageId(li.image),
          ...(created !== undefined ? { created } : {}),
          size: imageSize(li.image),
        });
      }
      rows.sort((a, b) => (Date.parse(b.created ?? '') || 0) - (Date.parse(a.created ?? '') || 0) || a.repo.localeCompare(b.repo) || a.tag.localeCompare(b.tag));
      const idOf = (id: string): string => (opts.trunc === false ? id : shortId(id));
      if (opts.quiet) {
        const seen = new Set<string>();
        for (const r of rows) {
          if (seen.has(r.id)) continue;
          seen.add(r.id);
          ctx.stdout.write(`${idOf(r.id)}\n`);
        }
        return;
      }
      if (format === 'json') {
        for (const r of rows) {
          ctx.stdout.write(
            `${JSON.stringify({
              Containers: 'N/A',
              CreatedAt: r.created ?? '',
              CreatedSince: formatAgo(r.created),
              Digest: r.digest,
              ID: idOf(r.id),
              Repository: r.repo,
              SharedSize: 'N/A',
              Size: formatSize(r.size),
              Tag: r.tag,
              UniqueSize: 'N/A',
              VirtualSize: formatSize(r.size),
            })}\n`,
          );
        }
        return;
      }
      const header = ['REPOSITORY', 'TAG', ...(opts.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
      ctx.stdout.write(
        table([
          header,
          ...rows.map((r) => [r.repo, r.tag, ...(opts.digests ? [r.digest] : []), idOf(r.id), formatAgo(r.created), formatSize(r.size)]),
        ]),
      );
    });
}
