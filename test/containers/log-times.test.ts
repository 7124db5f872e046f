/** Docker's `--since`/`--until` values and `-t` format (moby api/types/time GetTimestamp cases). */
import { describe, expect, it } from 'vitest';
import { formatNano, parseLogTime } from '../../src/containers/log-times.js';

const now = new Date('2026-12-07T04:00:00.000Z');
const at = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;

describe('parseLogTime', () => {
  it('takes Go durations before now', () => {
    expect(parseLogTime('10m', 'since', now)).toBe(at('2026-12-07T03:50:00Z'));
    expect(parseLogTime('1h30m', 'since', now)).toBe(at('2026-12-07T02:30:00Z'));
    expect(parseLogTime('1.5s', 'since', now)).toBe(at('2026-12-07T03:59:58.500Z'));
    expect(parseLogTime('250ms', 'since', now)).toBe(at('2026-12-07T03:59:59.750Z'));
  });

  it('takes unix seconds with an optional fraction', () => {
    expect(parseLogTime('1700000000', 'since', now)).toBe(1_700_000_000_000_000_000n);
    expect(parseLogTime('1700000000.5', 'since', now)).toBe(1_700_000_000_500_000_000n);
    expect(parseLogTime('1700000000.000000001', 'since', now)).toBe(1_700_000_000_000_000_001n);
  });

  it('takes RFC 3339 times, with nanoseconds and offsets, and dates', () => {
    expect(parseLogTime('2026-12-07T03:00:00Z', 'since', now)).toBe(at('2026-12-07T03:00:00Z'));
    expect(parseLogTime('2026-12-07T03:00:00.123456789Z', 'since', now)).toBe(at('2026-12-07T03:00:00Z') + 123_456_789n);
    expect(parseLogTime('2026-12-07T05:00:00+02:00', 'since', now)).toBe(at('2026-12-07T03:00:00Z'));
    expect(parseLogTime('2026-12-07', 'since', now)).toBe(at('2026-12-07T00:00:00Z'));
  });

  it('refuses anything else naming the flag', () => {
    for (const bad of ['', 'yesterday', '10x', '2026-13', '12:00']) expect(() => parseLogTime(bad, 'until', now)).toThrow(/--until/);
  });
});

describe('formatNano', () => {
  it('prints nine fraction digits in UTC, as docker logs -t', () => {
    expect(formatNano(at('2026-12-07T03:00:00Z') + 5n)).toBe('2026-12-07T03:00:00.000000005Z');
    expect(formatNano(1_700_000_000_123_456_789n)).toBe('2023-11-14T22:13:20.123456789Z');
  });
});
