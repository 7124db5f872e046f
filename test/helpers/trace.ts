/**
 * Checks a trace file against the Trace Event Format's rules as chrome://tracing and Perfetto
 * read them: the JSON Object Format (`traceEvents`, `displayTimeUnit` ms or ns), each event's
 * fields by its phase (`X`: ts and dur in microseconds, non-negative; `i`: a scope of g, p or t;
 * `M`: a known metadata name and its args), every thread used named by a `thread_name` event,
 * and the complete events of each thread properly nested (a slice ends inside the one it starts
 * in: Perfetto drops or misplaces one that does not).
 */

export interface Slice {
  name: string;
  cat: string;
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

export interface CheckedTrace {
  slices: Slice[];
  instants: { name: string; ts: number; pid: number; tid: number; args?: Record<string, unknown> }[];
  /** Thread names by tid (of pid 1, the only process imgbuild writes). */
  threads: Map<number, string>;
}

const METADATA = new Set(['process_name', 'process_labels', 'process_sort_index', 'thread_name', 'thread_sort_index']);

/** The problems found in `json` (empty when it is a valid trace) and what it holds. */
export function checkTrace(json: unknown): { problems: string[]; trace: CheckedTrace } {
  const problems: string[] = [];
  const trace: CheckedTrace = { slices: [], instants: [], threads: new Map() };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { problems: ['not the JSON Object Format'], trace };
  const o = json as Record<string, unknown>;
  if (!Array.isArray(o.traceEvents)) return { problems: ['traceEvents is not an array'], trace };
  if (o.displayTimeUnit !== undefined && o.displayTimeUnit !== 'ms' && o.displayTimeUnit !== 'ns') problems.push(`displayTimeUnit ${String(o.displayTimeUnit)}`);
  const int = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  for (const [i, e] of (o.traceEvents as Record<string, unknown>[]).entries()) {
    const at = `event ${i} (${JSON.stringify(e).slice(0, 120)})`;
    if (typeof e !== 'object' || e === null) {
      problems.push(`${at}: not an object`);
      continue;
    }
    if (typeof e.name !== 'string') problems.push(`${at}: name`);
    if (!int(e.pid) || !int(e.tid)) problems.push(`${at}: pid/tid`);
    if (e.args !== undefined && (typeof e.args !== 'object' || e.args === null || Array.isArray(e.args))) problems.push(`${at}: args is not an object`);
    switch (e.ph) {
      case 'X':
        if (typeof e.cat !== 'string') problems.push(`${at}: cat`);
        if (!num(e.ts) || !num(e.dur) || (e.dur as number) < 0 || (e.ts as number) < 0) problems.push(`${at}: ts/dur`);
        trace.slices.push(e as unknown as Slice);
        break;
      case 'i':
      case 'I':
        if (!num(e.ts)) problems.push(`${at}: ts`);
        if (e.s !== undefined && !['g', 'p', 't'].includes(e.s as string)) problems.push(`${at}: scope`);
        trace.instants.push(e as unknown as CheckedTrace['instants'][number]);
        break;
      case 'M': {
        if (!METADATA.has(e.name as string)) problems.push(`${at}: unknown metadata`);
        const args = e.args as Record<string, unknown> | undefined;
        if (String(e.name).endsWith('_name') && typeof args?.name !== 'string') problems.push(`${at}: args.name`);
        if (String(e.name).endsWith('_sort_index') && !int(args?.sort_index)) problems.push(`${at}: args.sort_index`);
        if (e.name === 'thread_name' && typeof args?.name === 'string') trace.threads.set(e.tid as number, args.name);
        break;
      }
      default:
        problems.push(`${at}: phase ${String(e.ph)}`);
    }
  }
  for (const s of [...trace.slices, ...trace.instants]) if (!trace.threads.has(s.tid)) problems.push(`tid ${s.tid} has no thread_name`);
  // Per thread: sorted by start (the longer first), each slice ends inside the one open above it.
  const byTid = new Map<number, Slice[]>();
  for (const s of trace.slices) byTid.set(s.tid, [...(byTid.get(s.tid) ?? []), s]);
  for (const [tid, slices] of byTid) {
    const open: Slice[] = [];
    for (const s of [...slices].sort((a, b) => a.ts - b.ts || b.dur - a.dur)) {
      while (open.length && open[open.length - 1]!.ts + open[open.length - 1]!.dur <= s.ts) open.pop();
      const top = open[open.length - 1];
      if (top && s.ts + s.dur > top.ts + top.dur) problems.push(`tid ${tid}: ${s.name} [${s.ts}, ${s.ts + s.dur}] overlaps ${top.name} [${top.ts}, ${top.ts + top.dur}]`);
      open.push(s);
    }
  }
  return { problems, trace };
}

/** Whether slice `inner` lies within `outer` in time. */
export function within(inner: Slice, outer: Slice): boolean {
  return inner.ts >= outer.ts && inner.ts + inner.dur <= outer.ts + outer.dur;
}
