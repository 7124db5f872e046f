/** `imgbuild ps [-a] [-q]` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ellipsis, formatAgo, table } from '../format.js';
import { listContainers } from '../../containers/list.js';
import { healthStatusOf } from '../../containers/health.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('ps')
    .description('list containers')
    .option('-a, --all', 'show all containers (default: running ones)')
    .option('-q, --quiet', 'only print container ids')
    .option('--no-trunc', 'do not truncate ids and commands')
    .action(async (f: { all?: boolean; quiet?: boolean; trunc?: boolean }) => {
      // A container waiting to be restarted counts as running, as in docker.
      const all = (await listContainers(ctx.root())).filter((r) => f.all || r.state.status === 'running' || r.state.restarting);
      all.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
      const trunc = f.trunc !== false;
      if (f.quiet) {
        for (const r of all) ctx.stdout.write(`${trunc ? r.id.slice(0, 12) : r.id}\n`);
        return;
      }
      const health = new Map(await Promise.all(all.map(async (r) => [r.id, r.state.status === 'running' ? await healthStatusOf(ctx.root(), r) : undefined] as const)));
      const status = (r: (typeof all)[number]): string => {
        const s = r.state;
        if (s.restarting && s.status !== 'running') return `Restarting (${s.exitCode ?? 0}) ${formatAgo(s.finishedAt)}`;
        const h = health.get(r.id);
        if (s.status === 'running') return `Up ${formatAgo(s.startedAt).replace(/ ago$/, '')}${s.paused ? ' (Paused)' : ''}${h ? (h === 'starting' ? ' (health: starting)' : ` (${h})`) : ''}`;
        if (s.status === 'exited') return `Exited (${s.exitCode ?? 0})${s.oomKilled ? ' OOMKilled' : ''} ${formatAgo(s.finishedAt)}`;
        if (s.status === 'created') return 'Created';
        return s.status;
      };
      const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']];
      for (const r of all) {
        const cmd = [r.path ?? '', ...(r.args ?? [])].join(' ');
        rows.push([
          trunc ? r.id.slice(0, 12) : r.id,
          r.imageName ?? r.image,
          JSON.stringify(trunc ? ellipsis(cmd, 20) : cmd),
          formatAgo(r.created),
          status(r),
          (r.hostConfig?.portBindings ?? []).map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', '),
          r.name,
        ]);
      }
      const text = table(rows);
      ctx.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    });
}
