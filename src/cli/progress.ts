/**
 * Build progress on the terminal. Two views:
 *  - plain: one line per event, BuildKit style (`#3 [build 2/4] RUN make`, output lines as
 *    `#3 0.125 line`, `#3 CACHED`, `#3 DONE 0.3s`), suitable for logs and CI, and at the end the
 *    slowest steps that ran (`slowest steps: #3 RUN make 12.3s, ...`);
 *  - tty: one line per running step with its elapsed time, redrawn in place; output lines of a
 *    step are printed above the live block, after the step's `[stage n/N]`, so nothing is lost and
 *    concurrent steps' lines stay attributed; finished steps stay as one line.
 * `quiet` prints nothing. Library code never imports this: it reports through callbacks that the
 * CLI maps onto these tasks.
 */
import type { Writable } from 'node:stream';
import { monotonicMs } from '../phases.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'quiet';

export interface ProgressTask {
  log(line: string): void;
  update(detail: string): void;
  /** A warning of the step (`#N WARN: line` in the plain view). */
  warn(line: string): void;
  done(note?: string): void;
  fail(msg?: string): void;
}

export interface Progress {
  task(label: string): ProgressTask;
  /** A warning line of its own, not tied to a task. */
  warn(line: string): void;
  close(): void;
}

export interface ProgressOptions {
  mode: ProgressMode;
  out: Writable;
  isTTY: boolean;
  /** Clock, injectable so that tests can give fixed durations. */
  now?: () => number;
  /** Redraw interval of the tty view in ms. */
  interval?: number;
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** A log line's time since its step started, as BuildKit prints it: 3 decimals under 10 s, 2 under 100 s, then 1. */
export function logStamp(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s.toFixed(s < 10 ? 3 : s < 100 ? 2 : 1);
}

/** What a tty output line is prefixed with: the step's `[stage n/N]`, else its whole label. */
function stepTag(label: string): string {
  const m = /^\[[^\]]*\]/.exec(label);
  return m ? m[0] : label;
}

export function createProgress(o: ProgressOptions): Progress {
  const mode = o.mode === 'auto' ? (o.isTTY ? 'tty' : 'plain') : o.mode;
  const now = o.now ?? monotonicMs;
  if (mode === 'quiet') {
    const noop: ProgressTask = { log() {}, update() {}, warn() {}, done() {}, fail() {} };
    return { task: () => noop, warn() {}, close() {} };
  }
  if (mode === 'plain') return plainProgress(o.out, now);
  return ttyProgress(o.out, now, o.interval ?? 100);
}

/**
 * BuildKit's plain format: a step's title as `#N title` after a blank line, each output line as
 * `#N <seconds since the step started> line` (so concurrent steps' lines stay attributed), and the
 * step's end as `#N DONE 0.3s`, `#N CACHED` or `#N ERROR: ...`.
 */
function plainProgress(out: Writable, now: () => number): Progress {
  let n = 0;
  let closed = false;
  const ran: { id: number; label: string; ms: number }[] = [];
  return {
    task(label: string): ProgressTask {
      const id = ++n;
      const start = now();
      let finished = false;
      out.write(`${id > 1 ? '\n' : ''}#${id} ${label}\n`);
      return {
        log(line) {
          out.write(`#${id} ${logStamp(now() - start)} ${line}\n`);
        },
        update(detail) {
          out.write(`#${id} ${detail}\n`);
        },
        warn(line) {
          out.write(`#${id} WARN: ${line}\n`);
        },
        done(note) {
          if (finished) return;
          finished = true;
          const ms = now() - start;
          if (!note) ran.push({ id, label, ms });
          out.write(note ? `#${id} ${note}\n` : `#${id} DONE ${secs(ms)}\n`);
        },
        fail(msg) {
          if (finished) return;
          finished = true;
          out.write(`#${id} ERROR${msg ? `: ${msg}` : ''}\n`);
        },
      };
    },
    warn(line) {
      out.write(`${line}\n`);
    },
    close() {
      if (closed) return;
      closed = true;
      const top = slowest(ran);
      if (top) out.write(`\nslowest steps: ${top}\n`);
    },
  };
}

/**
 * The `SLOWEST` longest steps that ran, or '' for none: cache hits and failures are not listed,
 * nor steps under 50 ms (a cached rebuild's FROM and export would be all it says).
 */
export function slowest(ran: readonly { id: number; label: string; ms: number }[], count = SLOWEST): string {
  return ran.filter((r) => r.ms >= 50).sort((a, b) => b.ms - a.ms || a.id - b.id).slice(0, count)
    .map((r) => `#${r.id} ${clipLabel(r.label.replace(/^\[[^\]]*\] /, ''))} ${secs(r.ms)}`).join(', ');
}

/** Steps listed by `slowest steps:`. */
const SLOWEST = 5;

function clipLabel(s: string): string {
  const line = s.replace(/\s+/g, ' ');
  return line.length > 40 ? `${line.slice(0, 39)}…` : line;
}

interface LiveTask {
  id: number;
  label: string;
  detail: string;
  start: number;
}

function ttyProgress(out: Writable, now: () => number, interval: number): Progress {
  let n = 0;
  const live: LiveTask[] = [];
  let drawn = 0; // lines of the live block currently on screen
  let timer: NodeJS.Timeout | undefined;
  const width = (): number => (out as unknown as { columns?: number }).columns ?? 100;
  const clip = (s: string): string => (s.length > width() - 1 ? `${s.slice(0, width() - 2)}…` : s);

  const erase = (): string => (drawn > 0 ? `\x1b[${drawn}A\x1b[0J` : '');
  const block = (): string => {
    const t = now();
    return live.map((l) => `${clip(`=> ${l.label}${l.detail ? ` ${l.detail}` : ''} ${secs(t - l.start)}`)}\n`).join('');
  };
  const redraw = (above = ''): void => {
    const text = erase() + above + block();
    drawn = live.length;
    out.write(text);
  };
  const ensureTimer = (): void => {
    if (timer || live.length === 0) return;
    timer = setInterval(() => redraw(), interval);
    timer.unref();
  };
  const stopTimerIfIdle = (): void => {
    if (live.length === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    task(label: string): ProgressTask {
      const t: LiveTask = { id: ++n, label, detail: '', start: now() };
      live.push(t);
      redraw();
      ensureTimer();
      let finished = false;
      const finish = (line: string): void => {
        if (finished) return;
        finished = true;
        const i = live.indexOf(t);
        if (i >= 0) live.splice(i, 1);
        redraw(`${line}\n`);
        stopTimerIfIdle();
      };
      return {
        log(line) {
          // Printed above the live block, so nothing is lost, with the step it belongs to.
          redraw(`${stepTag(label)} ${line}\n`);
        },
        update(detail) {
          t.detail = detail;
          redraw();
        },
        warn(line) {
          redraw(`WARN: ${line}\n`);
        },
        done(note) {
          finish(`=> ${note ? `${note} ` : ''}${label} ${secs(now() - t.start)}`);
        },
        fail(msg) {
          finish(`=> ERROR ${label}${msg ? `: ${msg}` : ''}`);
        },
      };
    },
    warn(line) {
      redraw(`${line}\n`);
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (live.length) redraw();
    },
  };
}
