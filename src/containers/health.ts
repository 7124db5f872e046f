/**
 * HEALTHCHECK as Docker has it: the container's check (the image's HEALTHCHECK with the `run
 * --health-*` flags over it), Go's duration syntax for its times, and the health state a probe's
 * result moves (Status starting → healthy / unhealthy, FailingStreak, the last 5 results). The
 * state lives in the container's `health.json`, written only by its keeper (keeper-main.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { HealthConfig } from '../image/types.js';
import { InvalidArgumentError } from '../errors.js';
import { pathOf, type ContainerRecord } from './record.js';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** One probe's result, as docker's inspect shows it. */
export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

const MS = 1e6; // nanoseconds
export const DEFAULT_INTERVAL_NS = 30_000 * MS;
export const DEFAULT_TIMEOUT_NS = 30_000 * MS;
export const DEFAULT_RETRIES = 3;
export const MAX_LOG_ENTRIES = 5;
export const MAX_OUTPUT_BYTES = 4096;

const UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration (`1m30s`, `1.5s`, `500ms`), in nanoseconds. */
export function parseDuration(v: string, flag: string): number {
  const bad = (): never => {
    throw new InvalidArgumentError(`invalid argument "${v}" for "${flag}" flag: time: invalid duration "${v}"`);
  };
  let s = v;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') bad();
  let total = 0;
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = re.exec(s);
    if (!m) bad();
    total += Number(m![1]) * UNITS[m![2]!]!;
    s = s.slice(m![0].length);
  }
  return sign * Math.round(total);
}

/** Go's Duration.String() (`50ms`, `1.5s`, `2m0s`) of `ns` nanoseconds. */
export function formatDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0 ? '-' : '';
  const d = Math.abs(ns);
  const frac = (n: number, unit: number): string => {
    const whole = Math.floor(n / unit);
    const rest = n - whole * unit;
    if (rest === 0) return String(whole);
    const digits = String(unit).length - 1;
    return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
  };
  if (d < 1e3) return `${neg}${d}ns`;
  if (d < 1e6) return `${neg}${frac(d, 1e3)}µs`;
  if (d < 1e9) return `${neg}${frac(d, 1e6)}ms`;
  const h = Math.floor(d / 3600e9);
  const m = Math.floor((d - h * 3600e9) / 60e9);
  const sec = d - h * 3600e9 - m * 60e9;
  return `${neg}${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${frac(sec, 1e9)}s`;
}

/** The `run` flags about health checks, as given (durations still text). */
export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthRetries?: string | number;
  noHealthcheck?: boolean;
}

/** The HealthConfig the flags ask for (docker's CLI and daemon checks), or undefined for none. */
export function healthConfigFromFlags(f: HealthFlags): HealthConfig | undefined {
  const dur = (v: string | undefined, flag: string, what: string): number => {
    if (v === undefined) return 0;
    const n = parseDuration(v, flag);
    if (n < 0) throw new InvalidArgumentError(`${flag} cannot be negative`);
    if (n !== 0 && n < MS) throw new InvalidArgumentError(`${what} in Healthcheck cannot be less than 1ms`);
    return n;
  };
  const any =
    f.healthCmd !== undefined || f.healthInterval !== undefined || f.healthTimeout !== undefined || f.healthStartPeriod !== undefined || f.healthRetries !== undefined;
  if (f.noHealthcheck) {
    if (any) throw new InvalidArgumentError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!any) return undefined;
  let retries = 0;
  if (f.healthRetries !== undefined) {
    retries = Number(f.healthRetries);
    if (!Number.isInteger(retries)) throw new InvalidArgumentError(`invalid argument "${f.healthRetries}" for "--health-retries" flag`);
    if (retries < 0) throw new InvalidArgumentError('--health-retries cannot be negative');
  }
  const c: HealthConfig = {
    ...(f.healthCmd !== undefined && f.healthCmd !== '' ? { Test: ['CMD-SHELL', f.healthCmd] } : {}),
    Interval: dur(f.healthInterval, '--health-interval', 'Interval'),
    Timeout: dur(f.healthTimeout, '--health-timeout', 'Timeout'),
    StartPeriod: dur(f.healthStartPeriod, '--health-start-period', 'StartPeriod'),
    Retries: retries,
  };
  return c;
}

/** The image's check with the run's over it: a field the run leaves zero keeps the image's (docker's merge). */
export function mergeHealthConfig(image: HealthConfig | undefined, run: HealthConfig | undefined): HealthConfig | undefined {
  if (!run) return image;
  if (!image) return run;
  return {
    ...image,
    ...run,
    Test: run.Test && run.Test.length > 0 ? run.Test : image.Test,
    Interval: run.Interval || image.Interval,
    Timeout: run.Timeout || image.Timeout,
    StartPeriod: run.StartPeriod || image.StartPeriod,
    Retries: run.Retries || image.Retries,
  };
}

/** The argv of the check, or undefined when there is none to run (no check, NONE, an unknown kind). */
export function probeCommand(c: HealthConfig | undefined, shell: string[] | undefined): string[] | undefined {
  const t = c?.Test;
  if (!t || t.length === 0) return undefined;
  if (t[0] === 'CMD' && t.length > 1) return t.slice(1);
  if (t[0] === 'CMD-SHELL' && t.length > 1) return [...(shell && shell.length > 0 ? shell : ['/bin/sh', '-c']), ...t.slice(1)];
  return undefined;
}

/** Whether a container with config `c` has a check to run. */
export function hasHealthcheck(c: HealthConfig | undefined): boolean {
  return probeCommand(c, undefined) !== undefined;
}

/** The state a (re)started container's check begins in: starting, no streak, the log kept. */
export function initialHealth(prev?: HealthState): HealthState {
  return { Status: 'starting', FailingStreak: 0, Log: prev?.Log ?? [] };
}

/**
 * The state after a probe's result (docker's handleProbeResult): a success makes the container
 * healthy; a failure within the start period, before any success, does not count; otherwise
 * `retries` failures in a row make it unhealthy.
 */
export function applyProbeResult(h: HealthState, r: HealthResult, o: { startedAt: string; startPeriodNs: number; retries: number }): HealthState {
  const log = [...h.Log, r].slice(-MAX_LOG_ENTRIES);
  if (r.ExitCode === 0) return { Status: 'healthy', FailingStreak: 0, Log: log };
  const inStart = h.Status === 'starting' && (Date.parse(r.Start) - Date.parse(o.startedAt)) * MS < o.startPeriodNs;
  if (inStart) return { ...h, Log: log };
  const streak = h.FailingStreak + 1;
  const retries = o.retries > 0 ? o.retries : DEFAULT_RETRIES;
  return { Status: streak >= retries ? 'unhealthy' : h.Status, FailingStreak: streak, Log: log };
}

/** Collects a probe's output up to docker's 4096 bytes, with `...` when some was dropped. */
export class LimitedOutput {
  private chunks: Buffer[] = [];
  private size = 0;
  private truncated = false;
  write(b: Buffer): void {
    const keep = Math.min(MAX_OUTPUT_BYTES - this.size, b.length);
    if (keep > 0) {
      this.chunks.push(b.subarray(0, keep));
      this.size += keep;
    }
    if (keep < b.length) this.truncated = true;
  }
  toString(): string {
    return Buffer.concat(this.chunks).toString('utf8') + (this.truncated ? '...' : '');
  }
}

export async function readHealth(root: string, id: string): Promise<HealthState | undefined> {
  try {
    const v = JSON.parse(await readFile(pathOf(root, id, 'health'), 'utf8')) as HealthState;
    return typeof v?.Status === 'string' && Array.isArray(v.Log) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces health.json whole (its only writer is the container's keeper). */
export async function writeHealth(root: string, id: string, h: HealthState): Promise<void> {
  const p = pathOf(root, id, 'health');
  // Named as the store's temp-file sweep recognises (record.ts).
  const tmp = `${p}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(h)}\n`);
    await rename(tmp, p);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** The health status `ps` shows for a container with a check (undefined without one). */
export async function healthStatusOf(root: string, rec: ContainerRecord): Promise<HealthStatus | undefined> {
  if (!hasHealthcheck(rec.config.Healthcheck)) return undefined;
  return (await readHealth(root, rec.id))?.Status ?? 'starting';
}
