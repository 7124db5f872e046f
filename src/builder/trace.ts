/**
 * `build --trace`: the build's steps as spans of a BuildTrace (src/phases.ts). The reporter every
 * step already reports to is wrapped, so a step's span is its progress task (`#N` as the plain
 * progress numbers it), on the track of its stage, with the phases its clock recorded inside;
 * without `--trace` nothing is wrapped and nothing is recorded.
 */
import type { BuildTrace, PhaseClock, TraceSpan } from '../phases.js';
import type { BuildReporter, StepReporter } from './dispatch/stage.js';

/**
 * The track of a task by its label: `[name 2/5] RUN ...` and `[name ONBUILD] ...` are steps of
 * stage `name`; other bracketed tasks (`[internal] ...`, `[context x] ...`) have their own track;
 * the rest (pulls, the export) are the build's.
 */
export function trackOf(label: string): string {
  const m = /^\[([^\]]*)\]/.exec(label);
  if (!m) return 'build';
  const step = /^(.*) (?:\d+\/\d+|ONBUILD)$/.exec(m[1]!);
  return step ? `stage ${step[1]}` : m[1]!;
}

/** `inner`, with each task also a span of `trace`. */
export function tracedReporter(inner: BuildReporter, trace: BuildTrace): BuildReporter {
  let n = 0;
  return {
    // Warnings are also moments of the trace, on the build's track or their step's.
    ...(inner.warn ? {
      warn: (line: string) => {
        trace.instant('warning', { args: { line } });
        inner.warn!(line);
      },
    } : {}),
    task(label: string): StepReporter {
      const id = ++n;
      const t = inner.task(label);
      const track = trackOf(label);
      const span = trace.begin(`#${id} ${label}`, { track, cat: /^\[[^\]]* (?:\d+\/\d+|ONBUILD)\]/.test(label) ? 'step' : 'task', args: { id } });
      return {
        log: (line) => t.log(line),
        ...(t.update ? { update: (d: string) => t.update!(d) } : {}),
        ...(t.warn ? {
          warn: (line: string) => {
            trace.instant('warning', { track, args: { line, step: id } });
            t.warn!(line);
          },
        } : {}),
        done(note) {
          span.finish(note === 'CACHED' ? { cached: true } : {});
          t.done(note);
        },
        fail(msg) {
          span.finish({ error: msg ?? 'failed' });
          t.fail(msg);
        },
        phases(clock: PhaseClock) {
          span.attach(clock);
          t.phases?.(clock);
        },
      };
    },
  };
}

/** What a push reports of a blob (src/registry/progress.ts), as far as the trace reads it. */
interface BlobEvent {
  type: string;
  phase?: string;
  kind?: string;
  digest?: string;
  size?: number;
}

/**
 * A push's progress events as spans of `trace` on track `push <ref>`: a layer's compression
 * (`compressing` to `compressed`) and each blob's upload (from `waiting` to `done`, `exists`
 * or `mounted`), which run several at once.
 */
export function tracePush(trace: BuildTrace, ref: string): { onEvent(e: BlobEvent): void; finish(error?: string): void } {
  const track = `push ${ref}`;
  const all = trace.begin(`push ${ref}`, { track, cat: 'push' });
  const open = new Map<string, TraceSpan>();
  const short = (d: string): string => d.replace(/^sha256:/, '').slice(0, 12);
  const begin = (key: string, name: string, e: BlobEvent): void => {
    if (!open.has(key)) open.set(key, trace.begin(name, { parent: all, cat: 'push', args: { digest: e.digest, size: e.size, kind: e.kind } }));
  };
  const end = (key: string, args: Record<string, unknown>): void => {
    open.get(key)?.finish(args);
    open.delete(key);
  };
  return {
    onEvent(e) {
      if (e.type !== 'blob' || !e.digest) return;
      const up = `upload ${e.digest}`;
      switch (e.phase) {
        case 'compressing':
          return begin(`compress ${e.digest}`, `compress ${short(e.digest)}`, e);
        case 'compressed':
          return end(`compress ${e.digest}`, {});
        case 'waiting':
          return begin(up, `upload ${e.kind ?? 'blob'} ${short(e.digest)}`, e);
        case 'exists':
        case 'mounted':
          if (!open.has(up)) begin(up, `upload ${e.kind ?? 'blob'} ${short(e.digest)}`, e);
          return end(up, { result: e.phase });
        case 'done':
          return end(up, { result: 'uploaded' });
        default:
      }
    },
    finish(error) {
      all.finish(error ? { error } : {});
    },
  };
}
