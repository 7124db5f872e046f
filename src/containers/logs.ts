/**
 * Container output: the `log` file a detached container writes (stdout and stderr interleaved),
 * and `log.times`, when each part of it arrived (log-times.ts), for `-t`, `--since` and `--until`.
 */
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { getContainer, refreshState } from './state.js';
import type { LifecycleOptions } from './types.js';
import { pathOf, readRecord } from './record.js';
import { formatNano, LogTimes } from './log-times.js';

export interface LogOptions extends LifecycleOptions {
  follow?: boolean;
  /** Only the last N lines (before --since/--until apply, as Docker's json-file does). */
  tail?: number;
  /** `-t`: each line prefixed with the time it arrived (RFC 3339, nanoseconds). */
  timestamps?: boolean;
  /** ns since the epoch: only lines that arrived at or after it. */
  since?: bigint;
  /** ns since the epoch: only lines that arrived at or before it (and `follow` stops there). */
  until?: bigint;
}

async function writeOut(out: Writable, b: Buffer): Promise<void> {
  if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
}

/** Where the last `n` lines of `all` start. */
function tailStart(all: Buffer, n: number): number {
  if (n === 0) return all.length;
  let end = all.length;
  if (end > 0 && all[end - 1] === 0x0a) end--;
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (all[i] === 0x0a && ++seen === n) return i + 1;
  }
  return 0;
}

/** Writes whole lines, dated and filtered; a line without a known time is left out by a filter. */
class LinePrinter {
  private pending: Buffer = Buffer.alloc(0);
  private pendingAt = 0;
  /** Set once a line past `until` is seen: nothing later can qualify. */
  done = false;

  constructor(
    private readonly out: Writable,
    private readonly times: LogTimes,
    private readonly o: LogOptions,
  ) {}

  async feed(chunk: Buffer, at: number): Promise<void> {
    if (this.pending.length === 0) this.pendingAt = at;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    await this.times.refresh();
    let start = 0;
    const parts: Buffer[] = [];
    for (let nl = this.pending.indexOf(0x0a); nl >= 0 && !this.done; nl = this.pending.indexOf(0x0a, start)) {
      this.line(this.pending.subarray(start, nl + 1), this.pendingAt + start, parts);
      start = nl + 1;
    }
    this.pending = this.pending.subarray(start);
    this.pendingAt += start;
    if (parts.length) await writeOut(this.out, Buffer.concat(parts));
  }

  /** The last line when it has no newline (the container ended mid-line). */
  async flush(): Promise<void> {
    if (this.pending.length === 0 || this.done) return;
    const parts: Buffer[] = [];
    this.line(this.pending, this.pendingAt, parts);
    this.pending = Buffer.alloc(0);
    if (parts.length) await writeOut(this.out, Buffer.concat(parts));
  }

  private line(line: Buffer, at: number, parts: Buffer[]): void {
    const t = this.times.at(at);
    if (this.o.since !== undefined && (t === undefined || t < this.o.since)) return;
    if (this.o.until !== undefined && (t === undefined || t > this.o.until)) {
      if (t !== undefined) this.done = true;
      return;
    }
    if (this.o.timestamps && t !== undefined) parts.push(Buffer.from(`${formatNano(t)} `));
    parts.push(line);
  }
}

/** Copies the log to `out`; with `follow`, keeps copying until the container stops (or `signal`, or `until`). */
export async function streamLogs(root: string, nameOrId: string, out: Writable, o: LogOptions = {}): Promise<void> {
  const rec = await getContainer(root, nameOrId, o);
  let fh;
  try {
    fh = await open(pathOf(root, rec.id, 'log'), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // a foreground container logs to the terminal
    throw e;
  }
  // Plain output is copied as bytes; lines are only looked at when they are dated or filtered.
  const lines = o.timestamps || o.since !== undefined || o.until !== undefined;
  const printer = lines ? new LinePrinter(out, new LogTimes(`${pathOf(root, rec.id, 'log')}.times`), o) : undefined;
  const emit = async (b: Buffer, at: number): Promise<void> => (printer ? printer.feed(b, at) : writeOut(out, b));
  try {
    let pos = 0;
    if (o.tail !== undefined && o.tail >= 0) {
      const all = await fh.readFile();
      pos = tailStart(all, o.tail);
      if (pos < all.length) {
        const rest = Buffer.from(all.subarray(pos));
        await emit(rest[rest.length - 1] === 0x0a || printer ? rest : Buffer.concat([rest, Buffer.from('\n')]), pos);
      }
      pos = all.length;
    }
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      if (printer?.done) return;
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead > 0) {
        await emit(Buffer.from(buf.subarray(0, bytesRead)), pos);
        pos += bytesRead;
        continue;
      }
      const pastUntil = o.until !== undefined && BigInt(Date.now()) * 1_000_000n > o.until;
      if (!o.follow || o.signal?.aborted || pastUntil) return await printer?.flush();
      const cur = await readRecord(root, rec.id);
      if (!cur || (await refreshState(root, cur, o)).state.status !== 'running') {
        // One last read: output written just before the exit.
        const last = await fh.read(buf, 0, buf.length, pos);
        if (last.bytesRead > 0) {
          await emit(Buffer.from(buf.subarray(0, last.bytesRead)), pos);
          pos += last.bytesRead;
          continue;
        }
        return await printer?.flush();
      }
      await sleep(50);
    }
  } finally {
    await fh.close();
  }
}
