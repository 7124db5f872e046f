/** `imgbuild ps [-a] [-n N] [-l] [-s] [-q] [--no-trunc] [--format FORMAT] [-f KEY=VALUE]...` */
import { type Command, InvalidArgumentError as UsageError } from 'commander';
import type { CliContext } from '../context.js';
import { collectFilter, parseFilters } from '../filters.js';
import { CONTAINER_FORMAT, containerRow } from '../rows.js';
import { formatRows } from '../template/index.js';
import { CONTAINER_FILTER_KEYS, filterContainers } from '../../containers/filter.js';
import { healthStatusOf } from '../../containers/health.js';
import { listContainers } from '../../containers/list.js';
import { containerSizes } from '../../containers/size.js';

interface Opts {
  all?: boolean;
  size?: boolean;
  last?: number;
  latest?: boolean;
  quiet?: boolean;
  trunc?: boolean;
  format?: string;
  filter: string[];
}

/** Docker's `raw` format for containers. */
const RAW = 'container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('ps')
    .description('list containers')
    .option('-a, --all', 'show all containers (default: running ones)')
    .option('-n, --last <n>', 'show the n last created containers (all states)', (v: string) => {
      if (!/^-?\d+$/.test(v)) throw new UsageError(`invalid syntax: ${JSON.stringify(v)}`);
      return Number(v);
    })
    .option('-l, --latest', 'show the latest created container (all states)')
    .option('-s, --size', 'show sizes (the writable layer, and with the image)')
    .option('-q, --quiet', 'only print container ids')
    .option('--no-trunc', 'do not truncate ids and commands')
    .option('--format <format>', "'table', 'table TEMPLATE', 'json', 'raw' or a Go template ({{.ID}} {{.Names}} {{.Status}} {{.Label \"k\"}} ...)")
    .option('-f, --filter <filter>', 'filter: status=, name=, id=, label=k[=v], ancestor=, exited=N, before=, since=, health=, network=, publish=, expose=, volume= (repeatable)', collectFilter, [] as string[])
    .action(async (f: Opts) => {
      const filters = parseFilters(f.filter, CONTAINER_FILTER_KEYS);
      const records = (await listContainers(ctx.root())).sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
      const health = new Map(await Promise.all(records.map(async (r) => [r.id, r.state.status === 'running' ? await healthStatusOf(ctx.root(), r) : undefined] as const)));
      const shown = await filterContainers(records, filters, { all: f.all === true, ...(f.latest ? { limit: 1 } : f.last !== undefined ? { limit: f.last } : {}), store: () => ctx.store(), health: (r) => health.get(r.id) });
      const trunc = f.trunc !== false;
      if (f.quiet) {
        if (f.format !== undefined && f.format !== 'table') ctx.stderr.write('WARNING: Ignoring custom format, because both --format and --quiet are set.\n');
        for (const r of shown) ctx.stdout.write(`${trunc ? r.id.slice(0, 12) : r.id}\n`);
        return;
      }
      const table = f.format === undefined || f.format === '' || f.format === 'table';
      const format = table ? CONTAINER_FORMAT.defaultTable + (f.size ? '\t{{.Size}}' : '') : f.format === 'raw' ? RAW + (f.size ? 'size: {{.Size}}\n' : '') : f.format!;
      // Sizes are measured only when shown (-s, or a format naming .Size), as docker does.
      const sizes = f.size || /\.Size\b/.test(format) ? await containerSizes(await ctx.store(), shown, { signal: ctx.signal }) : undefined;
      const now = new Date();
      ctx.stdout.write(formatRows(format, shown.map((r) => containerRow(r, { trunc, now, health: health.get(r.id), ...(sizes?.has(r.id) ? { size: sizes.get(r.id)! } : {}) })), CONTAINER_FORMAT));
    });
}
