/**
 * When each part of a container's log arrived: the monitor (native/sandbox.c `note_time`) appends
 * `{u64 log offset; i64 ns since the epoch}` little-endian records to `log.times` before the bytes
 * they date, at most one a millisecond. A line's time is that of the last record at or before its
 * first byte. Logs written before this file existed have no times: they are printed as they are.
 * Also Docker's `--since`/`--until` values (moby api/types/time GetTimestamp) and `-t` format.
 */
import { open } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';

export interface TimeRecord {
  offset: number;
  ns: bigint;
}

const RECORD = 16;

/** An incrementally read `log.times` (missing: no records). */
export class LogTimes {
  readonly records: TimeRecord[] = [];
  private read = 0;
  private next = 0;

  constructor(private readonly path: string) {}

  /** Reads the records appended since the last call. */
  async refresh(): Promise<void> {
    let fh;
    try {
      fh = await open(this.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    try {
      const size = (await fh.stat()).size;
      const want = Math.floor((size - this.read) / RECORD) * RECORD;
      if (want <= 0) return;
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, this.read);
      for (let i = 0; i + RECORD <= bytesRead; i += RECORD) {
        this.records.push({ offset: Number(buf.readBigUInt64LE(i)), ns: buf.readBigInt64LE(i + 8) });
      }
      this.read += bytesRead - (bytesRead % RECORD);
    } finally {
      await fh.close();
    }
  }

  /**
   * The time of the byte at `offset` (undefined when nothing dates it). Offsets are asked in
   * increasing order, so a cursor walks the records once.
   */
  at(offset: number): bigint | undefined {
    const r = this.records;
    if (this.next > 0 && r[this.next - 1]!.offset > offset) this.next = 0;
    while (this.next < r.length && r[this.next]!.offset <= offset) this.next++;
    return this.next > 0 ? r[this.next - 1]!.ns : undefined;
  }
}

/** Docker's `-t` prefix: RFC 3339 with nine fraction digits, UTC. */
export function formatNano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = String(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).padStart(9, '0');
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * `--since`/`--until`: a Go duration before `now` (`10m`, `1h30m`), unix seconds (`1700000000`,
 * `1700000000.5`), or an RFC 3339 date or time (`2026-12-07`, `2026-12-07T03:00:00Z`, with a
 * fraction or an offset; without a zone, local time). Returns ns since the epoch.
 */
export function parseLogTime(value: string, flag: string, now: Date = new Date()): bigint {
  const v = value.trim();
  const fail = (): never => {
    throw new InvalidArgumentError(`invalid value for --${flag}: failed to parse ${JSON.stringify(value)} as a time or a duration`);
  };
  if (v === '') fail();
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    let ns = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ns += Number(m[1]) * UNIT_NS[m[2]!]!;
    return BigInt(now.getTime()) * 1_000_000n - BigInt(Math.round(ns));
  }
  const unix = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (unix) return BigInt(unix[1]!) * 1_000_000_000n + BigInt((unix[2] ?? '').padEnd(9, '0') || '0');
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$/.exec(v);
  if (!m) return fail();
  const base = Date.parse(`${m[1]}${m[2] ? `T${m[2]}` : m[4] ? 'T00:00:00' : ''}${m[4] ?? ''}`);
  if (Number.isNaN(base)) return fail();
  return BigInt(base) * 1_000_000n + BigInt((m[3] ?? '').padEnd(9, '0') || '0');
}
