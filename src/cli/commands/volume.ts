/**
 * `imgbuild volume create|ls|inspect|rm|prune`: Docker's volume commands over the volume store
 * (src/volumes/); which containers exist is the containers area's answer.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatSize } from '../format.js';
import { formatRows, inspectTemplate, type RowFormat } from '../template/index.js';
import { liveContainerIds } from '../../containers/volumes.js';
import { keyValues } from '../../volumes/local-driver.js';
import { createVolume, getVolume, pruneVolumes, removeVolume, volumeFilter, volumeUsage, type Volume } from '../../volumes/store.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Docker's tabwriter for `volume ls` (min width 10, padding 3). */
function lsTable(rows: [string, string][]): string {
  const w = Math.max(10, ...rows.map(([d]) => d.length + 3));
  return rows.map(([d, n]) => `${d.padEnd(w)}${n}`.trimEnd()).join('\n') + '\n';
}

/** What `volume ls --format` templates see (docker's volume context: Labels as `k=v,k=v`). */
function lsFields(v: Volume & { users: string[] }): Record<string, unknown> {
  return {
    Name: v.Name,
    Driver: v.Driver,
    Scope: v.Scope,
    Mountpoint: v.Mountpoint,
    Labels: Object.entries(v.Labels).map(([k, x]) => `${k}=${x}`).join(','),
    // Docker fills in links (and size) only for `system df -v`.
    Links: 'N/A',
    Size: 'N/A',
  };
}

/** Docker's `volume ls` columns, for `--format 'table ...'`. */
const VOLUME_FORMAT: RowFormat = {
  headers: { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE' },
  defaultTable: 'table {{.Driver}}\t{{.Name}}',
};

export default function register(program: Command, ctx: CliContext): void {
  const live = (): Promise<Set<string>> => liveContainerIds(ctx.root());
  const volume = program.command('volume').description('manage volumes');

  volume
    .command('create')
    .description('create a volume (a random name when none is given)')
    .argument('[name]', 'volume name')
    .option('-d, --driver <driver>', 'volume driver (local)', 'local')
    .option('-o, --opt <key=value>', 'driver option: type, device, o (repeatable)', collect, [])
    .option('--label <key=value>', 'set a label (repeatable)', collect, [])
    .action(async (name: string | undefined, f: { driver: string; opt: string[]; label: string[] }) => {
      const v = await createVolume(ctx.root(), { ...(name !== undefined ? { name } : {}), driver: f.driver, options: keyValues(f.opt), labels: keyValues(f.label), signal: ctx.signal });
      ctx.stdout.write(`${v.Name}\n`);
    });

  volume
    .command('ls')
    .alias('list')
    .description('list volumes')
    .option('-q, --quiet', 'only display volume names')
    .option('-f, --filter <filter>', 'dangling=true|false, name=, label=key[=value], driver= (repeatable)', collect, [])
    .option('--format <template>', 'format each volume with a template ({{.Name}}, {{.Driver}}, {{.Mountpoint}}, {{.Labels}})')
    .action(async (f: { quiet?: boolean; filter: string[]; format?: string }) => {
      const keep = volumeFilter(f.filter);
      const vols = (await volumeUsage(ctx.root(), { live, withSize: false })).filter(keep);
      if (f.quiet) ctx.stdout.write(vols.map((v) => `${v.Name}\n`).join(''));
      else if (f.format !== undefined) ctx.stdout.write(formatRows(f.format, vols.map(lsFields), VOLUME_FORMAT));
      else ctx.stdout.write(lsTable([['DRIVER', 'VOLUME NAME'], ...vols.map((v): [string, string] => [v.Driver, v.Name])]));
    });

  volume
    .command('inspect')
    .description('show details of volumes as JSON')
    .argument('<names...>', 'volume names')
    .option('-f, --format <template>', 'format each volume with a template')
    .action(async (names: string[], f: { format?: string }) => {
      const out: (Omit<Volume, 'Labels' | 'Options'> & { Labels: Record<string, string> | null; Options: Record<string, string> | null })[] = [];
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          const v = await getVolume(ctx.root(), n);
          // As Docker prints them: no labels or options is null.
          out.push({ ...v, Labels: Object.keys(v.Labels).length > 0 ? v.Labels : null, Options: Object.keys(v.Options).length > 0 ? v.Options : null });
        } catch (e) {
          failures.push(e);
        }
      }
      const render = f.format !== undefined ? inspectTemplate(f.format) : undefined;
      if (render) ctx.stdout.write(out.map((v) => `${render(v)}\n`).join(''));
      else ctx.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });

  volume
    .command('rm')
    .alias('remove')
    .description('remove volumes (never one a container uses)')
    .argument('<names...>', 'volume names')
    .option('-f, --force', 'a missing volume is no error')
    .action(async (names: string[], f: { force?: boolean }) => {
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await removeVolume(ctx.root(), n, { force: f.force, live, signal: ctx.signal });
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });

  volume
    .command('prune')
    .description('remove anonymous volumes no container uses (all unused ones with -a)')
    .option('-a, --all', 'remove named volumes no container uses too')
    .option('-f, --force', 'do not prompt for confirmation (imgbuild never prompts)')
    .option('--filter <filter>', 'label=key[=value], label!=..., all=true (repeatable)', collect, [])
    .action(async (f: { all?: boolean; filter: string[] }) => {
      // docker 23+ takes `--filter all=true` for -a too.
      const all = f.all || f.filter.some((x) => /^all=(true|1)$/i.test(x));
      const filters = f.filter.filter((x) => !/^all=/i.test(x));
      const r = await pruneVolumes(ctx.root(), { all, filters, live, signal: ctx.signal });
      if (r.removed.length > 0) ctx.stdout.write(`Deleted Volumes:\n${r.removed.join('\n')}\n\n`);
      ctx.stdout.write(`Total reclaimed space: ${formatSize(r.bytes)}\n`);
    });
}
