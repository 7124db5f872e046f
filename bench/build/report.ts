/**
 * The build bench's tables: every workload and build beside each peer with ratios, the cost per
 * file and per MB as the series grow, and the ratios over all workloads against issue 18's goals.
 */
import { median, type Timing } from './measure.js';
import type { Workload } from './workloads.js';

export const SCENARIOS = ['cold', 'no-op rebuild', 'one file changed'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** timings[workload][tool][scenario]: one Timing per repetition. */
export type Results = Map<string, Map<string, Map<Scenario, Timing[]>>>;

const out = (s: string): boolean => process.stdout.write(s);

export function record(res: Results, workload: string, tool: string, scenario: Scenario, t: Timing): void {
  const byTool = res.get(workload) ?? new Map<string, Map<Scenario, Timing[]>>();
  res.set(workload, byTool);
  const byScenario = byTool.get(tool) ?? new Map<Scenario, Timing[]>();
  byTool.set(tool, byScenario);
  byScenario.set(scenario, [...(byScenario.get(scenario) ?? []), t]);
}

function secs(res: Results, w: string, tool: string, s: Scenario): number | undefined {
  return median(res.get(w)?.get(tool)?.get(s)?.map((t) => t.secs) ?? []);
}

/** The highest peak RSS of a tool's repetitions of one build, in MiB. */
function rssMiB(res: Results, w: string, tool: string, s: Scenario): number | undefined {
  const xs = (res.get(w)?.get(tool)?.get(s) ?? []).map((t) => t.rssKiB).filter((k): k is number => k !== undefined);
  return xs.length ? Math.max(...xs) / 1024 : undefined;
}

const f = (x: number | undefined, digits = 2): string => (x === undefined ? '–' : x.toFixed(digits));
/** Three significant figures or so, for costs that span 0.05 to 50,000. */
const g3 = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '–' : `${(a / b).toFixed(2)}×`);
const fastest = (xs: (number | undefined)[]): number | undefined => {
  const ok = xs.filter((x): x is number => x !== undefined);
  return ok.length ? Math.min(...ok) : undefined;
};

const row = (cells: string[]): string => `| ${cells.join(' | ')} |\n`;

export function mainTable(res: Results, workloads: Workload[], peers: string[]): void {
  const head = ['workload', 'files', 'MB', 'build', 'imgbuild (s)', ...peers.map((p) => `${p} (s)`), ...peers.map((p) => `÷ ${p}`), '÷ fastest peer', 'imgbuild peak RSS (MiB)'];
  out(row(head));
  out(row(head.map((_, i) => (i === 0 || i === 3 ? '---' : '---:'))));
  for (const w of workloads) {
    for (const s of SCENARIOS) {
      const o = secs(res, w.name, 'imgbuild', s);
      const ps = peers.map((p) => secs(res, w.name, p, s));
      out(row([w.name, String(w.files), g3(w.bytes / 1e6), s, f(o), ...ps.map((p) => f(p)), ...ps.map((p) => ratio(o, p)), ratio(o, fastest(ps)), f(rssMiB(res, w.name, 'imgbuild', s), 0)]));
    }
  }
}

/** Cold builds along one series: total, cost per unit, and the marginal cost of each added unit. */
export function seriesTable(res: Results, workloads: Workload[], peers: string[], kind: 'files' | 'bytes', rssTools: string[]): void {
  const series = workloads.filter((w) => w.series?.kind === kind).sort((a, b) => a.series!.size - b.series!.size);
  if (series.length === 0) return;
  const unit = kind === 'files' ? 'file' : 'MB';
  // Per file in µs; per MB in ms.
  const scale = kind === 'files' ? 1e6 : 1e3;
  const per = kind === 'files' ? `µs/${unit}` : `ms/${unit}`;
  const tools = ['imgbuild', ...peers];
  out(`\n### Cold build cost per ${unit} as the work grows\n\n`);
  const head = [kind === 'files' ? 'files' : 'MB', ...tools.flatMap((t) => [`${t} (s)`, per, `marginal ${per}`]), 'imgbuild ÷ fastest peer', 'imgbuild no-op (s)', ...rssTools.map((t) => `${t} peak RSS (MiB)`)];
  out(row(head));
  out(row(head.map(() => '---:')));
  const prev = new Map<string, { size: number; t: number }>();
  for (const w of series) {
    const size = w.series!.size;
    const cells: string[] = [];
    for (const t of tools) {
      const c = secs(res, w.name, t, 'cold');
      const p = prev.get(t);
      const marginal = c !== undefined && p ? ((c - p.t) / (size - p.size)) * scale : undefined;
      cells.push(f(c), g3(c === undefined ? undefined : (c / size) * scale), g3(marginal));
      if (c !== undefined) prev.set(t, { size, t: c });
    }
    const o = secs(res, w.name, 'imgbuild', 'cold');
    const best = fastest(peers.map((p) => secs(res, w.name, p, 'cold')));
    out(row([String(size), ...cells, ratio(o, best), f(secs(res, w.name, 'imgbuild', 'no-op rebuild')), ...rssTools.map((t) => f(rssMiB(res, w.name, t, 'cold'), 0))]));
  }
}

/** Issue 18's goals, by geometric mean over the workloads of imgbuild's time over each peer's. */
const GOALS: Partial<Record<Scenario, Record<string, number>>> = {
  cold: { BuildKit: 0.7, buildah: 0.4 },
  'no-op rebuild': { BuildKit: 1.0 },
};

export function summary(res: Results, workloads: Workload[], peers: string[]): void {
  out('\n### Over all workloads (geometric mean of imgbuild ÷ peer)\n\n');
  for (const s of SCENARIOS) {
    const parts: string[] = [];
    for (const p of peers) {
      const rs = workloads.map((w) => [secs(res, w.name, 'imgbuild', s), secs(res, w.name, p, s)]).filter((x): x is [number, number] => x[0] !== undefined && x[1] !== undefined).map(([o, q]) => o / q);
      if (rs.length === 0) continue;
      const g = Math.exp(rs.reduce((a, r) => a + Math.log(r), 0) / rs.length);
      const goal = GOALS[s]?.[p];
      parts.push(`÷ ${p} ${g.toFixed(2)}× over ${rs.length}${goal === undefined ? '' : ` (goal ≤ ${goal.toFixed(2)}: ${g <= goal ? 'met' : 'NOT met'})`}`);
    }
    out(`- ${s}: ${parts.length ? parts.join('; ') : 'no peer measured'}\n`);
  }
}
