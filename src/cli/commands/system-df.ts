/**
 * `imgbuild system df [-v] [--format]`: disk usage as Docker prints it: images, containers, local
 * volumes and build cache, each with TOTAL, ACTIVE, SIZE and RECLAIMABLE; `-v` lists each object.
 * The figures come from containers/disk-usage.ts and builder/cache-usage.ts.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ellipsis, formatAgo, shortId } from '../format.js';
import { tabwrite } from '../template/tabwriter.js';
import { formatRows } from '../template/index.js';
import { familiarName, parseReference } from '../../image/reference.js';

/** Rows as Docker's tabwriter aligns its tables (min width 10, padding 3). */
const table = (rows: readonly (readonly string[])[]): string => tabwrite(rows.map((r) => `${r.join('\t')}\n`).join(''));

/** Docker's units.HumanSize: four significant digits, decimal units (`16.43MB`). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let n = Math.max(0, bytes);
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${parseFloat(n.toPrecision(4))}${units[i]}`;
}

const reclaimable = (bytes: number, total: number): string => (total > 0 ? `${humanSize(bytes)} (${Math.trunc((bytes * 100) / total)}%)` : humanSize(bytes));

/** A local volume as df counts it. */
interface VolumeRow {
  name: string;
  /** The containers using it. */
  users: string[];
  size: number;
}

async function volumeRows(root: string): Promise<VolumeRow[]> {
  const [{ volumeUsage }, { liveContainerIds }] = await Promise.all([import('../../volumes/store.js'), import('../../containers/volumes.js')]);
  const vols = await volumeUsage(root, { live: () => liveContainerIds(root) });
  return vols.map((v) => ({ name: v.Name, users: v.users, size: Math.max(0, v.size) }));
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('df')
    .description('show disk usage')
    .option('-v, --verbose', 'show detailed information on space usage')
    .option('--format <template>', 'format each row with a template ({{.Type}}, {{json .}})')
    .action(async (f: { verbose?: boolean; format?: string }) => {
      const [{ diskUsage }, { buildCacheUsage }] = await Promise.all([import('../../containers/disk-usage.js'), import('../../builder/cache-usage.js')]);
      const store = await ctx.store();
      const du = await diskUsage(store, { signal: ctx.signal });
      const [cache, volumes] = await Promise.all([buildCacheUsage(store, du.imageBlobs, { signal: ctx.signal }), volumeRows(store.root)]);
      const containersSize = du.containers.reduce((n, c) => n + c.size, 0);
      const stoppedSize = du.containers.filter((c) => c.record.state.status !== 'running').reduce((n, c) => n + c.size, 0);
      const volumesSize = volumes.reduce((n, v) => n + v.size, 0);
      const unusedVolumes = volumes.filter((v) => v.users.length === 0).reduce((n, v) => n + v.size, 0);
      const rows = [
        { Type: 'Images', TotalCount: du.images.length, Active: du.images.filter((i) => i.containers > 0).length, Size: humanSize(du.imagesSize), Reclaimable: reclaimable(du.imagesReclaimable, du.imagesSize) },
        { Type: 'Containers', TotalCount: du.containers.length, Active: du.containers.filter((c) => c.record.state.status === 'running').length, Size: humanSize(containersSize), Reclaimable: reclaimable(stoppedSize, containersSize) },
        { Type: 'Local Volumes', TotalCount: volumes.length, Active: volumes.filter((v) => v.users.length > 0).length, Size: humanSize(volumesSize), Reclaimable: reclaimable(unusedVolumes, volumesSize) },
        { Type: 'Build Cache', TotalCount: cache.entries.length, Active: 0, Size: humanSize(cache.size), Reclaimable: humanSize(cache.size) },
      ];
      if (!f.verbose || f.format !== undefined) {
        ctx.stdout.write(
          formatRows(f.format ?? 'table', rows, {
            headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
            defaultTable: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
          }),
        );
        return;
      }
      const imageRows: string[][] = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS']];
      for (const i of du.images) {
        const names = i.refs.length > 0 ? i.refs.map((r) => parseReference(r)) : [undefined];
        for (const n of names) {
          imageRows.push([n ? familiarName(n) : '<none>', n?.tag ?? '<none>', shortId(i.id), formatAgo(i.created), humanSize(i.size), humanSize(i.sharedSize), humanSize(i.size - i.sharedSize), String(i.containers)]);
        }
      }
      const containerRows: string[][] = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES']];
      for (const { record: r, size } of du.containers) {
        const cmd = [r.path ?? '', ...(r.args ?? [])].join(' ');
        const status = r.state.status === 'running' ? `Up ${formatAgo(r.state.startedAt).replace(/ ago$/, '')}` : r.state.status === 'exited' ? `Exited (${r.state.exitCode ?? 0}) ${formatAgo(r.state.finishedAt)}` : 'Created';
        containerRows.push([r.id.slice(0, 12), r.imageName, JSON.stringify(ellipsis(cmd, 20)), String(volumes.filter((v) => v.users.includes(r.id)).length), humanSize(size), formatAgo(r.created), status, r.name]);
      }
      const cacheRows: string[][] = [['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED']];
      for (const c of cache.entries) cacheRows.push([c.id.slice(0, 12), c.type, humanSize(c.size), formatAgo(c.created), formatAgo(c.lastUsed), '1', String(c.shared)]);
      ctx.stdout.write(
        `Images space usage:\n\n${table(imageRows)}\n` +
          `Containers space usage:\n\n${table(containerRows)}\n` +
          `Local Volumes space usage:\n\n${table([['VOLUME NAME', 'LINKS', 'SIZE'], ...volumes.map((v) => [v.name, String(v.users.length), humanSize(v.size)])])}\n` +
          `Build cache usage: ${humanSize(cache.size)}\n\n${table(cacheRows)}`,
      );
    });
}
