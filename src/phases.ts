/**
 * Where a step's time went: named phases (copy, pack, hash, write, sync, mount, sandbox, ...)
 * timed as spans. A clock is made per step and handed down through options, so the areas that
 * do the work (tar, store, snapshots) record their own phases without knowing who reads them;
 * `build --progress plain` prints the totals as one line per step, and `build --trace` lays the
 * spans out as Chrome trace events (`chrome://tracing`, Perfetto) inside their step's span
 * (BuildTrace below).
 */

/**
 * Milliseconds on a monotonic clock (process.hrtime's, which is CLOCK_MONOTONIC, as the sandbox
 * helper reports it): what every duration and trace timestamp here is measured on. Not
 * `performance.now()`: its first call loads Node's perf_hooks, 1.5-2.7 ms of every build, a
 * no-op one included.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** One timed span of a phase (milliseconds of `monotonicMs()`). */
export interface PhaseSpan {
  phase: string;
  start: number;
  dur: number;
  /** A span grouping other phases (a layer's whole diff pass): shown in a trace, not summed. */
  group?: boolean;
}

/** A Chrome trace event (the Trace Event Format's JSON Object Format), times in microseconds. */
export type TraceEvent =
  | { name: string; cat: string; ph: 'X'; ts: number; dur: number; pid: number; tid: number; args?: Record<string, unknown> }
  | { name: string; cat: string; ph: 'i'; s: 't' | 'p' | 'g'; ts: number; pid: number; tid: number; args?: Record<string, unknown> }
  | { name: 'process_name' | 'thread_name' | 'process_sort_index' | 'thread_sort_index'; ph: 'M'; pid: number; tid: number; args: Record<string, unknown> };

/** A trace file as chrome://tracing and Perfetto open it. */
export interface TraceFile {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

/** Spans kept per clock; past this only the totals grow (a trace of 100k tiny spans helps nobody). */
const MAX_SPANS = 4096;
/** Pieces of one phase this close together (ms) are one span: a stream's chunks back to back. */
const JOIN_MS = 0.02;

export class PhaseClock {
  private readonly totals = new Map<string, number>();
  private readonly spans: PhaseSpan[] = [];
  /** Spans not kept past MAX_SPANS (their time is in the totals). */
  dropped = 0;

  /** `now`: a monotonic clock in milliseconds (monotonicMs by default). */
  constructor(private readonly now: () => number = monotonicMs) {}

  /** Records `ms` more of `phase` that ended now. */
  add(phase: string, ms: number): void {
    const end = this.now();
    this.span(phase, end - ms, end);
  }

  /** Records a span of `phase` from `start` to `end` (this clock's milliseconds). */
  span(phase: string, start: number, end: number): void {
    const ms = Math.max(0, end - start);
    this.totals.set(phase, (this.totals.get(phase) ?? 0) + ms);
    const last = this.spans[this.spans.length - 1];
    // Joined only when it follows the last one: two at once (parallel compressions) stay two.
    const gap = last ? start - (last.start + last.dur) : -1;
    if (last && last.phase === phase && !last.group && gap >= 0 && gap < JOIN_MS) {
      last.dur = end - last.start;
    } else if (this.spans.length < MAX_SPANS) this.spans.push({ phase, start, dur: ms });
    else this.dropped++;
  }

  /**
   * Adds `ms` to the total of `phase` without a span: time that is not one interval (what a
   * streaming pass spent waiting for the disk between its other phases).
   */
  addTotal(phase: string, ms: number): void {
    this.totals.set(phase, (this.totals.get(phase) ?? 0) + ms);
  }

  /** Starts a span of `phase`; the returned function ends it. */
  start(phase: string): () => void {
    const t = this.now();
    return () => this.span(phase, t, this.now());
  }

  /** Runs `fn` as a span of `phase` (synchronous or not). */
  async time<T>(phase: string, fn: () => Promise<T> | T): Promise<T> {
    const end = this.start(phase);
    try {
      return await fn();
    } finally {
      end();
    }
  }

  /** Runs `fn` as a group span named `name`, around the phases it records (not in the totals). */
  async group<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const t = this.now();
    try {
      return await fn();
    } finally {
      if (this.spans.length < MAX_SPANS) this.spans.push({ phase: name, start: t, dur: this.now() - t, group: true });
    }
  }

  /** Runs a synchronous `fn` as a span of `phase`. */
  timeSync<T>(phase: string, fn: () => T): T {
    const t = this.now();
    try {
      return fn();
    } finally {
      this.span(phase, t, this.now());
    }
  }

  /** Milliseconds recorded per phase, in the order phases were first seen. */
  get totalsMs(): ReadonlyMap<string, number> {
    return this.totals;
  }

  /** The spans kept, in the order they ended (groups when they end). */
  get spanList(): readonly PhaseSpan[] {
    return this.spans;
  }

  /** `copy 1.21s, pack 0.80s, ...`: phases of at least 5 ms, or '' when none. */
  summary(): string {
    const parts: string[] = [];
    for (const [p, ms] of this.totals) if (ms >= 5) parts.push(`${p} ${(ms / 1000).toFixed(2)}s`);
    return parts.join(', ');
  }

  /** The spans as Chrome trace events of thread `tid`, shifted by `originMs`. */
  traceEvents(o: { pid?: number; tid?: number; originMs?: number; cat?: string } = {}): TraceEvent[] {
    const origin = o.originMs ?? 0;
    return this.spans.map((s) => {
      const ts = micros(s.start - origin);
      return { name: s.phase, cat: o.cat ?? 'phase', ph: 'X', ts, dur: micros(s.start + s.dur - origin) - ts, pid: o.pid ?? 1, tid: o.tid ?? 1 };
    });
  }
}

/** Runs `fn` as a span of `phase` on `clock`, or just runs it without a clock (no cost untraced). */
export function timed<T>(clock: PhaseClock | undefined, phase: string, fn: () => Promise<T>): Promise<T> {
  return clock ? clock.time(phase, fn) : fn();
}

/**
 * Whole microseconds, rounded the same way for every edge: a span inside another in real time
 * stays inside it once both ends are rounded (durations come from rounded ends, never rounded
 * on their own).
 */
function micros(ms: number): number {
  return Math.round(ms * 1000);
}

/** A span of a build trace: a step, a task, an upload; ended once. */
export class TraceSpan {
  end: number | undefined;
  readonly clocks: PhaseClock[] = [];

  constructor(
    readonly name: string,
    readonly track: string,
    readonly cat: string,
    readonly start: number,
    readonly args: Record<string, unknown>,
    private readonly now: () => number,
    /** The span this one is shown in (on the same track). */
    readonly parent?: TraceSpan,
  ) {}

  /** Ends the span now (the first call counts), adding `args`. */
  finish(args: Record<string, unknown> = {}): void {
    if (this.end !== undefined) return;
    this.end = this.now();
    Object.assign(this.args, args);
  }

  /** A clock whose phases are shown nested in this span. */
  attach(clock: PhaseClock): void {
    if (!this.clocks.includes(clock)) this.clocks.push(clock);
  }
}

/** A laid-out span (microseconds) and where it nests. */
interface Node {
  name: string;
  cat: string;
  ts: number;
  end: number;
  depth: number;
  track: string;
  parent: Node | undefined;
  args?: Record<string, unknown>;
  lane?: number;
}

/**
 * The timeline of one build as Chrome trace events: one process, a track (thread) for the build
 * itself and one per stage, since stages run in parallel. Steps and tasks are spans on their
 * track, their phases nested in them. The trace format wants the complete events of one thread
 * properly nested, so a span that only partly overlaps another of its track (two pulls at once,
 * two uploads) goes to a further lane of that track (`stage build (2)`).
 */
export class BuildTrace {
  readonly origin: number;
  /** The build's own phases (reading the inputs, the context), in the root span. */
  readonly clock: PhaseClock;
  private readonly root: TraceSpan;
  private readonly spans: TraceSpan[] = [];
  private readonly instants: { name: string; track: string; at: number; args: Record<string, unknown> }[] = [];

  constructor(o: { name?: string; args?: Record<string, unknown>; now?: () => number } = {}) {
    const now = o.now ?? monotonicMs;
    this.now = now;
    this.origin = now();
    this.clock = new PhaseClock(now);
    this.root = new TraceSpan(o.name ?? 'build', 'build', 'build', this.origin, { ...(o.args ?? {}) }, now);
    this.root.attach(this.clock);
  }

  private readonly now: () => number;

  /** Starts a span on `track` ('build', `stage NAME`, ...); finish() ends it. */
  begin(name: string, o: { track?: string; cat?: string; args?: Record<string, unknown>; parent?: TraceSpan } = {}): TraceSpan {
    const s = new TraceSpan(name, o.parent?.track ?? o.track ?? 'build', o.cat ?? 'task', this.now(), { ...(o.args ?? {}) }, this.now, o.parent);
    this.spans.push(s);
    return s;
  }

  /** A moment on `track` (an instant event). */
  instant(name: string, o: { track?: string; args?: Record<string, unknown> } = {}): void {
    this.instants.push({ name, track: o.track ?? 'build', at: this.now(), args: { ...(o.args ?? {}) } });
  }

  /** Ends the build's own span, adding `args` (an error, say). */
  finish(args: Record<string, unknown> = {}): void {
    this.root.finish(args);
  }

  /** Whether finish() was called. */
  get finished(): boolean {
    return this.root.end !== undefined;
  }

  /**
   * The trace as the JSON Object Format. Spans still open (an interrupted build) end now,
   * marked `unfinished`; a step's span grows to hold its phases (a COPY's context walk comes
   * before its progress line).
   */
  toJSON(): TraceFile {
    const now = this.now();
    const us = (ms: number): number => micros(ms - this.origin);
    const nodes: Node[] = [];
    const spanNode = (s: TraceSpan, parent: Node | undefined): Node => {
      let start = s.start;
      let end = s.end ?? now;
      for (const c of s.clocks) for (const p of c.spanList) {
        start = Math.min(start, p.start);
        end = Math.max(end, p.start + p.dur);
      }
      const dropped = s.clocks.reduce((n, c) => n + c.dropped, 0);
      // The totals too: a phase without a span of its own (write) or in many pieces shows there.
      const totals: Record<string, number> = {};
      for (const c of s.clocks) for (const [p, ms] of c.totalsMs) totals[p] = Math.round(((totals[p] ?? 0) + ms) * 1000) / 1000;
      const args = {
        ...s.args, ...(s.end === undefined ? { unfinished: true } : {}),
        ...(Object.keys(totals).length ? { phases_ms: totals } : {}), ...(dropped ? { phase_spans_dropped: dropped } : {}),
      };
      const n: Node = { name: s.name, cat: s.cat, ts: us(start), end: us(end), depth: parent ? parent.depth + 1 : 0, track: s.track, parent, args };
      nodes.push(n);
      for (const c of s.clocks) phaseNodes(c, n, us, nodes);
      return n;
    };
    const root = spanNode(this.root, undefined);
    const made = new Map<TraceSpan, Node>();
    for (const s of this.spans) made.set(s, spanNode(s, s.parent ? made.get(s.parent) : s.track === 'build' ? root : undefined));
    // A span holds what happened in it (a child left open by a failure ends after its parent).
    for (const n of [...nodes].reverse()) {
      if (!n.parent) continue;
      n.parent.ts = Math.min(n.parent.ts, n.ts);
      n.parent.end = Math.max(n.parent.end, n.end);
    }
    // The build holds everything that happened in it.
    for (const n of nodes) {
      root.ts = Math.min(root.ts, n.ts);
      root.end = Math.max(root.end, n.end);
    }
    const lanes = layout(nodes);
    // Tracks in the order they started (the build's first), each track's lanes together.
    const tracks = [...new Set(['build', ...[...nodes].sort((a, b) => a.ts - b.ts).map((n) => n.track), ...this.instants.map((i) => i.track)])];
    const tids = new Map<string, number>();
    const tidOf = (track: string, lane: number): number => {
      const key = `${track}\0${lane}`;
      let t = tids.get(key);
      if (t === undefined) tids.set(key, (t = tids.size + 1));
      return t;
    };
    const pid = 1;
    const events: TraceEvent[] = [];
    // Outer before inner in the file too, for a viewer that reads slices of equal start in order.
    for (const n of [...nodes].sort((a, b) => a.ts - b.ts || b.end - a.end || a.depth - b.depth)) {
      const lane = lanes.get(n) ?? 0;
      events.push({ name: n.name, cat: n.cat, ph: 'X', ts: n.ts, dur: n.end - n.ts, pid, tid: tidOf(n.track, lane), ...(n.args && Object.keys(n.args).length ? { args: n.args } : {}) });
    }
    for (const i of this.instants) events.push({ name: i.name, cat: 'mark', ph: 'i', s: 't', ts: us(i.at), pid, tid: tidOf(i.track, 0), args: i.args });
    const meta: TraceEvent[] = [{ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: this.root.name } }];
    for (const [key, tid] of tids) {
      const [track, lane] = key.split('\0') as [string, string];
      meta.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name: lane === '0' ? track : `${track} (${Number(lane) + 1})` } });
      meta.push({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tracks.indexOf(track) * 1000 + Number(lane) } });
    }
    return { traceEvents: [...meta, ...events], displayTimeUnit: 'ms', otherData: { producer: 'imgbuild' } };
  }
}

/** A clock's spans as nodes under `step`, each nested in the innermost span of the clock holding it. */
function phaseNodes(c: PhaseClock, step: Node, us: (ms: number) => number, out: Node[]): void {
  const spans = c.spanList.map((s) => ({ s, ts: us(s.start), end: us(s.start + s.dur) }));
  // Outer before inner: by start, then the longer first, then a group before what it holds.
  spans.sort((a, b) => a.ts - b.ts || b.end - a.end || Number(b.s.group ?? false) - Number(a.s.group ?? false));
  const open: Node[] = [];
  for (const p of spans) {
    while (open.length && !(open[open.length - 1]!.ts <= p.ts && p.end <= open[open.length - 1]!.end)) open.pop();
    // Not in one of its own phase: that is another run at the same time (a lane of its own).
    const parent = [...open].reverse().find((o) => o.name !== p.s.phase) ?? step;
    const n: Node = { name: p.s.phase, cat: p.s.group ? 'group' : 'phase', ts: p.ts, end: p.end, depth: parent.depth + 1, track: step.track, parent };
    out.push(n);
    open.push(n);
  }
}

/**
 * Lanes of each track such that the spans of a lane nest properly: a span goes into its
 * parent's lane when the parent is the innermost span open there, else into the first lane of
 * its track with nothing open.
 */
function layout(nodes: Node[]): Map<Node, number> {
  const lanes = new Map<string, Node[][]>();
  const placed = new Map<Node, number>();
  const sorted = [...nodes].sort((a, b) => a.ts - b.ts || b.end - a.end || a.depth - b.depth);
  const isAncestor = (a: Node, n: Node): boolean => {
    for (let p = n.parent; p; p = p.parent) if (p === a) return true;
    return false;
  };
  for (const n of sorted) {
    let ls = lanes.get(n.track);
    if (!ls) lanes.set(n.track, (ls = []));
    for (const stack of ls) while (stack.length && stack[stack.length - 1]!.end <= n.ts && !isAncestor(stack[stack.length - 1]!, n)) stack.pop();
    const home = n.parent !== undefined && n.parent.track === n.track ? placed.get(n.parent) : undefined;
    let lane = home !== undefined && ls[home]![ls[home]!.length - 1] === n.parent && n.end <= n.parent!.end ? home : ls.findIndex((st) => st.length === 0);
    if (lane < 0) lane = ls.push([]) - 1;
    ls[lane]!.push(n);
    placed.set(n, lane);
  }
  return placed;
}
