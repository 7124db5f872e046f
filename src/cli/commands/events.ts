/**
 * `imgbuild events [--since T] [--until T] [--filter K=V]... [--format TPL]`: what happened to
 * containers, images and the rest, from the journal every imgbuild process appends to
 * (store/events.ts). Without --since and --until it prints what happens from now on until
 * interrupted; with --since, what happened since then first; with --until, it stops at that time.
 * Times are Unix seconds (fractions allowed), RFC 3339 dates, or durations before now (`10m`, `1h30m`).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { formatRows } from '../template/index.js';
import type { StoredEvent } from '../../store/events.js';

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A time flag as nanoseconds since the epoch (Docker's timetypes.GetTimestamp). */
export function parseEventTime(value: string, flag: string, nowMs = Date.now()): bigint {
  const v = value.trim();
  if (/^\d+(\.\d{1,9})?$/.test(v)) {
    const [s, frac = ''] = v.split('.');
    return BigInt(s!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0') || '0');
  }
  const dur = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(v) ? v.match(/\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)/g) : null;
  if (dur) {
    let ms = 0;
    for (const part of dur) {
      const m = /^(\d+(?:\.\d+)?)(\D+)$/.exec(part)!;
      ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    }
    return BigInt(Math.round(nowMs - ms)) * 1_000_000n;
  }
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isNaN(t)) return BigInt(t) * 1_000_000n;
  throw new InvalidArgumentError(`invalid ${flag} ${JSON.stringify(value)}: use Unix seconds, an RFC 3339 date or a duration such as 10m`);
}

const FILTER_KEYS = new Set(['type', 'event', 'container', 'image', 'volume', 'network']);

/** Docker's event filters: the same key ORed, different keys ANDed. */
export function eventFilter(specs: readonly string[]): (e: StoredEvent) => boolean {
  const by = new Map<string, string[]>();
  for (const s of specs) {
    const eq = s.indexOf('=');
    const k = eq > 0 ? s.slice(0, eq) : '';
    if (!FILTER_KEYS.has(k) || eq === s.length - 1) throw new InvalidArgumentError(`invalid filter ${JSON.stringify(s)}: use type=, event=, container=, image=, volume= or network=`);
    by.set(k, [...(by.get(k) ?? []), s.slice(eq + 1)]);
  }
  const stripLatest = (x: string): string => x.replace(/:latest$/, '');
  const tests: Record<string, (e: StoredEvent, v: string) => boolean> = {
    type: (e, v) => e.Type === v,
    // `exec_start: sh -c date` is an exec_start.
    event: (e, v) => e.Action === v || e.Action.split(':')[0] === v,
    container: (e, v) => e.Type === 'container' && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v),
    image: (e, v) => {
      const names = e.Type === 'image' ? [e.Actor.ID, e.Actor.Attributes.name] : e.Type === 'container' ? [e.Actor.Attributes.image] : [];
      return names.some((n) => n !== undefined && (n === v || stripLatest(n) === stripLatest(v) || (v.length >= 12 && n.replace(/^sha256:/, '').startsWith(v.replace(/^sha256:/, '')))));
    },
    volume: (e, v) => e.Type === 'volume' && (e.Actor.ID === v || e.Actor.Attributes.name === v),
    network: (e, v) => e.Type === 'network' && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v),
  };
  return (e) => [...by].every(([k, vs]) => vs.some((v) => tests[k]!(e, v)));
}

/** `2026-12-07T03:12:13.123456789Z` from nanoseconds since the epoch. */
function isoNano(nano: string): string {
  const n = BigInt(nano);
  const iso = new Date(Number(n / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${(n % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/** Docker's default line: time, type, action, actor id and the attributes sorted by name. */
export function formatEvent(e: StoredEvent): string {
  const attrs = Object.entries(e.Actor.Attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${isoNano(e.timeNano)} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs.length ? ` (${attrs.map(([k, v]) => `${k}=${v}`).join(', ')})` : ''}`;
}

/** The event as Docker's API serialises it: timeNano is a number there. */
function asJsonData(e: StoredEvent): unknown {
  return { ...e, timeNano: Number(e.timeNano) };
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('events')
    .description('show events (from now on until interrupted, unless --until is given)')
    .option('--since <time>', 'show events since this time (Unix seconds, RFC 3339 date, or a duration before now: 10m)')
    .option('--until <time>', 'stop at this time (same forms)')
    .option('-f, --filter <filter>', 'type=, event=, container=, image=, volume=, network= (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--format <template>', 'format each event with a template ({{.Action}}, {{json .}})')
    .action(async (f: { since?: string; until?: string; filter: string[]; format?: string }) => {
      const now = Date.now();
      const since = f.since !== undefined ? parseEventTime(f.since, '--since', now) : undefined;
      const until = f.until !== undefined ? parseEventTime(f.until, '--until', now) : undefined;
      const keep = eventFilter(f.filter);
      const { readEvents } = await import('../../store/events.js');
      // A reader that goes away (`events | head -1`) ends the stream, as an interrupt does.
      const gone = new AbortController();
      const stop = (): void => gone.abort();
      ctx.stdout.once('error', stop);
      ctx.stdout.once('close', stop);
      const signal = AbortSignal.any([ctx.signal, gone.signal]);
      const json = f.format !== undefined && /^\s*(?:json|\{\{\s*json\s+\.\s*\}\})\s*$/.test(f.format);
      for await (const e of readEvents(ctx.root(), {
        follow: true,
        // With only --until, Docker shows what it has kept from the start.
        ...(since !== undefined ? { sinceNano: since } : until !== undefined ? { sinceNano: 0n } : {}),
        ...(until !== undefined ? { untilNano: until } : {}),
        signal,
      })) {
        if (!keep(e)) continue;
        // The exact nanoseconds (a double cannot hold them) for {{json .}}.
        if (f.format === undefined) ctx.stdout.write(`${formatEvent(e)}\n`);
        else if (json) ctx.stdout.write(`${JSON.stringify(e).replace(/"timeNano":"(\d+)"/, '"timeNano":$1')}\n`);
        else ctx.stdout.write(formatRows(f.format, [asJsonData(e)], { headers: {}, defaultTable: '{{json .}}' }));
      }
    });
}
