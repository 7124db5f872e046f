/** `imgbuild stats [--no-stream] [--no-trunc] [--format T] [CONTAINER...]` */
import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliContext } from '../context.js';
import { formatSize } from '../format.js';
import { formatRows, GO_TYPE } from '../template/index.js';
import { listContainers } from '../../containers/list.js';
import { getContainer } from '../../containers/state.js';
import { computeStats, sampleStats, type StatsFigures, type StatsSample } from '../../containers/stats.js';
import type { ContainerRecord } from '../../containers/record.js';

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** Docker's `units.BytesSize`: binary units, `%.4g` (`1.434MiB`, `7.772GiB`, `0B`). */
export function bytesSize(n: number): string {
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < BINARY.length - 1) {
    v /= 1024;
    i++;
  }
  return `${String(parseFloat(v.toPrecision(4)))}${BINARY[i]}`;
}

const HEADERS: Record<string, string> = {
  Container: 'CONTAINER',
  ID: 'CONTAINER ID',
  Name: 'NAME',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};
const DEFAULT_FORMAT = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';

/** The row a format is tried on before anything is listed (a bad field fails even then). */
const EMPTY = { id: '', name: '' } as ContainerRecord;

/** A stopped container reads as zeros, as in Docker. */
const ZERO: StatsFigures = { cpuPercent: 0, memUsage: 0, memLimit: 0, memPercent: 0, netRx: 0, netTx: 0, blockRead: 0, blockWrite: 0, pids: 0 };

/** A row as Docker's `container.statsContext`: a struct, so an unknown field fails as there. */
function fields(arg: string, r: ContainerRecord, s: StatsFigures = ZERO, trunc = true): Record<string, string> {
  const row: Record<string, string> = {
    Container: arg,
    ID: trunc ? r.id.slice(0, 12) : r.id,
    Name: r.name,
    CPUPerc: `${s.cpuPercent.toFixed(2)}%`,
    MemUsage: `${bytesSize(s.memUsage)} / ${bytesSize(s.memLimit)}`,
    MemPerc: `${s.memPercent.toFixed(2)}%`,
    NetIO: `${formatSize(s.netRx)} / ${formatSize(s.netTx)}`,
    BlockIO: `${formatSize(s.blockRead)} / ${formatSize(s.blockWrite)}`,
    PIDs: String(s.pids),
  };
  Object.defineProperty(row, GO_TYPE, { value: '*container.statsContext' });
  return row;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('stats')
    .description("show containers' resource use (CPU, memory, network, block I/O, pids)")
    .argument('[containers...]', 'container names or ids (default: every running container)')
    .option('-a, --all', 'show every container (default: running ones)')
    .option('--no-stream', 'print one reading and exit')
    .option('--no-trunc', 'do not truncate ids')
    .option('--format <template>', 'Go template (table for a header, json), e.g. "table {{.Name}}\\t{{.CPUPerc}}"')
    .action(async (names: string[], f: { all?: boolean; stream?: boolean; trunc?: boolean; format?: string }) => {
      const root = ctx.root();
      const o = { signal: ctx.signal };
      const format = f.format ?? DEFAULT_FORMAT;
      const targets = async (): Promise<{ arg: string; rec: ContainerRecord }[]> =>
        names.length > 0
          ? Promise.all(names.map(async (n) => ({ arg: n, rec: await getContainer(root, n, o) })))
          : (await listContainers(root)).filter((r) => f.all || r.state.status === 'running').map((r) => ({ arg: r.id.slice(0, 12), rec: r }));
      const prev = new Map<string, StatsSample>();
      const sample = async (list: { rec: ContainerRecord }[]): Promise<Map<string, StatsSample | undefined>> =>
        new Map(await Promise.all(list.map(async (t) => [t.rec.id, await sampleStats(t.rec, o).catch(() => undefined)] as const)));
      // CPU % needs two readings: the first is taken a second before anything is printed.
      for (const [id, s] of await sample(await targets())) if (s) prev.set(id, s);
      for (;;) {
        try {
          await sleep(1000, undefined, { signal: ctx.signal });
        } catch {
          return;
        }
        const list = await targets();
        const cur = await sample(list);
        const rows = list.map((t) => {
          const s = cur.get(t.rec.id);
          const figures = s ? computeStats(s, prev.get(t.rec.id)) : undefined;
          if (s) prev.set(t.rec.id, s);
          return fields(t.arg, t.rec, figures, f.trunc !== false);
        });
        const text = formatRows(format, rows, { headers: HEADERS, defaultTable: DEFAULT_FORMAT, emptyRow: () => fields('', EMPTY) });
        if (f.stream === false) {
          ctx.stdout.write(text);
          return;
        }
        // Docker's redraw: clear the screen, cursor home, the table.
        ctx.stdout.write(`\u001b[2J\u001b[H${text}`);
      }
    });
}
