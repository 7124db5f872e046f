/**
 * Where a step's time went: named phases (copy, pack, hash, write, sync, mount, sandbox, ...)
 * timed as spans. A clock is made per step and handed down through options, so the areas that
 * do the work (tar, store, snapshots) record their own phases without knowing who reads them;
 * `build --progress plain` prints the totals as one line per step, and the spans convert to
 * Chrome trace events (`chrome://tracing`, Perfetto) for a trace file.
 */

/** One timed span of a phase (milliseconds since the clock's origin). */
export interface PhaseSpan {
  phase: string;
  start: number;
  dur: number;
}

/** A Chrome trace "complete" event (`ph: 'X'`), times in microseconds. */
export interface TraceEvent {
  name: string;
  cat: string;
  ph: 'X';
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

/** Spans kept per clock; past this only the totals grow (a trace of 100k tiny spans helps nobody). */
const MAX_SPANS = 4096;

export class PhaseClock {
  private readonly totals = new Map<string, number>();
  private readonly spans: PhaseSpan[] = [];

  /** `now`: a monotonic clock in milliseconds (performance.now by default). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records `ms` more of `phase` that ended now. */
  add(phase: string, ms: number): void {
    this.totals.set(phase, (this.totals.get(phase) ?? 0) + ms);
    if (this.spans.length < MAX_SPANS) this.spans.push({ phase, start: this.now() - ms, dur: ms });
  }

  /** Starts a span of `phase`; the returned function ends it. */
  start(phase: string): () => void {
    const t = this.now();
    return () => this.add(phase, this.now() - t);
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

  /** Runs a synchronous `fn` as a span of `phase`. */
  timeSync<T>(phase: string, fn: () => T): T {
    const t = this.now();
    try {
      return fn();
    } finally {
      this.add(phase, this.now() - t);
    }
  }

  /** Milliseconds recorded per phase, in the order phases were first seen. */
  get totalsMs(): ReadonlyMap<string, number> {
    return this.totals;
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
    return this.spans.map((s) => ({
      name: s.phase, cat: o.cat ?? 'phase', ph: 'X', ts: Math.round((s.start - origin) * 1000), dur: Math.round(s.dur * 1000),
      pid: o.pid ?? 1, tid: o.tid ?? 1,
    }));
  }
}
