/**
 * `imgbuild network ls`: the networks a container can join (`--network`): none, host and bridge
 * (imgbuild's own bridge, made when a container first joins it). There are no user-defined
 * networks; the ids are stable digests of the names so that scripts can match them.
 */
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatRows } from '../template/index.js';
import { InvalidArgumentError } from '../../errors.js';

const NETWORKS = [
  { Name: 'bridge', Driver: 'bridge', Scope: 'local' },
  { Name: 'host', Driver: 'host', Scope: 'local' },
  { Name: 'none', Driver: 'null', Scope: 'local' },
];

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('ls')
    .description('list networks')
    .option('-q, --quiet', 'only show network ids')
    .option('--no-trunc', 'do not truncate ids')
    .option('-f, --filter <filter>', 'name=NAME or driver=DRIVER (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--format <template>', 'format each network with a template ({{.Name}}, {{json .}})')
    .action((f: { quiet?: boolean; trunc?: boolean; filter: string[]; format?: string }) => {
      let rows = NETWORKS.map((n) => {
        const id = createHash('sha256').update(`imgbuild-network:${n.Name}`).digest('hex');
        return { ID: f.trunc === false ? id : id.slice(0, 12), ...n, IPv6: 'false', Internal: 'false', Labels: '' };
      });
      for (const filter of f.filter) {
        const [k, v = ''] = filter.split('=', 2) as [string, string?];
        if (k === 'name') rows = rows.filter((r) => r.Name.includes(v));
        else if (k === 'driver') rows = rows.filter((r) => r.Driver === v);
        else throw new InvalidArgumentError(`unsupported filter ${JSON.stringify(filter)}: use name=NAME or driver=DRIVER`);
      }
      if (f.quiet) {
        for (const r of rows) ctx.stdout.write(`${r.ID}\n`);
        return;
      }
      ctx.stdout.write(
        formatRows(f.format ?? 'table', rows, {
          headers: { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS' },
          defaultTable: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
        }),
      );
    });
}
