/** The restart policy arithmetic (docker's restart manager) and the health-check rules, without containers. */
import { describe, expect, it } from 'vitest';
import { parseRestartPolicy, restartDecision, formatRestartPolicy, type RestartPolicy } from '../../src/containers/restart-policy.js';
import {
  applyProbeResult,
  formatDuration,
  healthConfigFromFlags,
  initialHealth,
  LimitedOutput,
  mergeHealthConfig,
  parseDuration,
  probeCommand,
  type HealthState,
} from '../../src/containers/health.js';

describe('restart policy', () => {
  it('parses the four policies and refuses what docker 20.10 refuses', () => {
    expect(parseRestartPolicy('no')).toEqual({ name: 'no', maximumRetryCount: 0 });
    expect(parseRestartPolicy('on-failure:5')).toEqual({ name: 'on-failure', maximumRetryCount: 5 });
    expect(parseRestartPolicy('on-failure')).toEqual({ name: 'on-failure', maximumRetryCount: 0 });
    expect(parseRestartPolicy('always').name).toBe('always');
    expect(parseRestartPolicy('unless-stopped').name).toBe('unless-stopped');
    expect(parseRestartPolicy('always:0').name).toBe('always');
    expect(() => parseRestartPolicy('always:1')).toThrow(/maximum retry count cannot be used with restart policy 'always'/);
    expect(() => parseRestartPolicy('on-failure:x')).toThrow(/maximum retry count must be an integer/);
    expect(() => parseRestartPolicy('on-failure:-2')).toThrow(/cannot be negative/);
    expect(() => parseRestartPolicy('a:b:c')).toThrow(/invalid restart policy format/);
    expect(() => parseRestartPolicy('never')).toThrow(/invalid restart policy 'never'/);
    expect(formatRestartPolicy({ name: 'on-failure', maximumRetryCount: 2 })).toBe('on-failure:2');
  });

  const base = { exitCode: 1, ranMs: 50, restartCount: 0, lastDelayMs: 0, manuallyStopped: false };

  it('backs off from 100 ms, doubling to a minute, and starts over after 10 s up', () => {
    const p: RestartPolicy = { name: 'always', maximumRetryCount: 0 };
    const delays: number[] = [];
    let last = 0;
    for (let i = 0; i < 12; i++) {
      const d = restartDecision(p, { ...base, restartCount: i, lastDelayMs: last });
      expect(d.restart).toBe(true);
      delays.push(d.delayMs);
      last = d.delayMs;
    }
    expect(delays.slice(0, 6)).toEqual([100, 200, 400, 800, 1600, 3200]);
    expect(delays.at(-1)).toBe(60_000);
    expect(restartDecision(p, { ...base, lastDelayMs: 60_000, ranMs: 10_000 }).delayMs).toBe(100);
    expect(restartDecision(p, { ...base, lastDelayMs: 400, ranMs: 9_999 }).delayMs).toBe(800);
  });

  it('restarts on-failure only on a non-zero status and up to its count; never after a user stop', () => {
    const p: RestartPolicy = { name: 'on-failure', maximumRetryCount: 2 };
    expect(restartDecision(p, { ...base, exitCode: 0 }).restart).toBe(false);
    expect(restartDecision(p, { ...base, restartCount: 1 }).restart).toBe(true);
    expect(restartDecision(p, { ...base, restartCount: 2 }).restart).toBe(false);
    expect(restartDecision({ name: 'on-failure', maximumRetryCount: 0 }, { ...base, restartCount: 99 }).restart).toBe(true);
    expect(restartDecision({ name: 'always', maximumRetryCount: 0 }, { ...base, exitCode: 0 }).restart).toBe(true);
    for (const name of ['always', 'unless-stopped', 'on-failure'] as const) {
      expect(restartDecision({ name, maximumRetryCount: 0 }, { ...base, manuallyStopped: true }).restart).toBe(false);
    }
    expect(restartDecision({ name: 'no', maximumRetryCount: 0 }, base).restart).toBe(false);
  });
});

describe('health check', () => {
  it('reads and writes durations as Go does', () => {
    expect(parseDuration('1m30s', 'x')).toBe(90e9);
    expect(parseDuration('1.5s', 'x')).toBe(1.5e9);
    expect(parseDuration('100ms', 'x')).toBe(100e6);
    expect(parseDuration('0', 'x')).toBe(0);
    expect(() => parseDuration('10', '--health-interval')).toThrow(/invalid duration "10"/);
    expect(formatDuration(50e6)).toBe('50ms');
    expect(formatDuration(1.5e9)).toBe('1.5s');
    expect(formatDuration(30e9)).toBe('30s');
    expect(formatDuration(120e9)).toBe('2m0s');
    expect(formatDuration(3600e9 + 1e9)).toBe('1h0m1s');
    expect(formatDuration(1500)).toBe('1.5µs');
  });

  it('makes a check of the flags as docker does, and merges it over the image\'s', () => {
    expect(healthConfigFromFlags({})).toBeUndefined();
    expect(healthConfigFromFlags({ noHealthcheck: true })).toEqual({ Test: ['NONE'] });
    expect(() => healthConfigFromFlags({ noHealthcheck: true, healthRetries: '1' })).toThrow(/conflicts/);
    expect(() => healthConfigFromFlags({ healthInterval: '-1s' })).toThrow(/--health-interval cannot be negative/);
    expect(() => healthConfigFromFlags({ healthTimeout: '1us' })).toThrow(/less than 1ms/);
    const run = healthConfigFromFlags({ healthCmd: 'true', healthRetries: '2' });
    expect(run).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 0, Timeout: 0, StartPeriod: 0, Retries: 2 });
    const image = { Test: ['CMD', 'check'], Interval: 5e9, Retries: 7 };
    expect(mergeHealthConfig(image, run)).toMatchObject({ Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 });
    expect(mergeHealthConfig(image, healthConfigFromFlags({ healthTimeout: '1s' }))).toMatchObject({ Test: ['CMD', 'check'], Timeout: 1e9, Retries: 7 });
    expect(probeCommand({ Test: ['CMD-SHELL', 'x y'] }, undefined)).toEqual(['/bin/sh', '-c', 'x y']);
    expect(probeCommand({ Test: ['CMD-SHELL', 'x'] }, ['/bin/bash', '-ec'])).toEqual(['/bin/bash', '-ec', 'x']);
    expect(probeCommand({ Test: ['CMD', 'a', 'b'] }, undefined)).toEqual(['a', 'b']);
    expect(probeCommand({ Test: ['NONE'] }, undefined)).toBeUndefined();
  });

  const at = (ms: number): string => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
  const result = (ms: number, code: number) => ({ Start: at(ms), End: at(ms + 1), ExitCode: code, Output: '' });

  it('counts failures after the start period only, up to retries, and keeps the last 5 results', () => {
    const o = { startedAt: at(0), startPeriodNs: 1000e6, retries: 2 };
    let h: HealthState = initialHealth();
    h = applyProbeResult(h, result(100, 1), o);
    expect(h).toMatchObject({ Status: 'starting', FailingStreak: 0 });
    h = applyProbeResult(h, result(1500, 1), o);
    expect(h).toMatchObject({ Status: 'starting', FailingStreak: 1 });
    h = applyProbeResult(h, result(1600, 1), o);
    expect(h).toMatchObject({ Status: 'unhealthy', FailingStreak: 2 });
    h = applyProbeResult(h, result(1700, 0), o);
    expect(h).toMatchObject({ Status: 'healthy', FailingStreak: 0 });
    // Once healthy, a failure within the start period counts.
    const early = applyProbeResult({ ...initialHealth(), Status: 'healthy' }, result(10, 1), { ...o, retries: 1 });
    expect(early).toMatchObject({ Status: 'unhealthy', FailingStreak: 1 });
    for (let i = 0; i < 4; i++) h = applyProbeResult(h, result(2000 + i, 0), o);
    expect(h.Log).toHaveLength(5);
    expect(h.Log[0]!.Start).toBe(at(1700));
    // Retries 0 means docker's default of 3.
    let d: HealthState = initialHealth();
    for (let i = 0; i < 2; i++) d = applyProbeResult(d, result(5000 + i, 1), { startedAt: at(0), startPeriodNs: 0, retries: 0 });
    expect(d.Status).toBe('starting');
    expect(applyProbeResult(d, result(6000, 1), { startedAt: at(0), startPeriodNs: 0, retries: 0 }).Status).toBe('unhealthy');
  });

  it('keeps 4096 bytes of a probe\'s output and marks what was dropped', () => {
    const o = new LimitedOutput();
    o.write(Buffer.alloc(4000, 'a'));
    o.write(Buffer.alloc(200, 'b'));
    const s = o.toString();
    expect(s).toHaveLength(4096 + 3);
    expect(s.endsWith('b...')).toBe(true);
  });
});

describe('generate systemd', () => {
  it('writes a oneshot unit that starts and stops the container through the CLI, quoted for systemd', async () => {
    const { systemdUnit, unitName } = await import('../../src/containers/systemd-unit.js');
    const rec = { id: 'a'.repeat(64), name: 'web' };
    const u = systemdUnit(rec, { exe: '/opt/img build/bin/imgbuild', root: '/var/lib/imgbuild', useName: true, stopTimeout: 5 });
    expect(unitName(rec, true)).toBe('container-web.service');
    expect(unitName(rec)).toBe(`container-${'a'.repeat(64)}.service`);
    expect(u).toContain('\nType=oneshot\nRemainAfterExit=yes\n');
    expect(u).toContain('\nExecStart="/opt/img build/bin/imgbuild" --root /var/lib/imgbuild start web\n');
    expect(u).toContain('\nExecStop="/opt/img build/bin/imgbuild" --root /var/lib/imgbuild stop -t 5 web\n');
    expect(u).toContain('\nTimeoutStopSec=65\n');
    expect(u).toContain('\nRequiresMountsFor=/var/lib/imgbuild\n');
    expect(u).toMatch(/\[Install\]\nWantedBy=default.target\n$/);
    expect(systemdUnit(rec, { exe: '/x', root: '/r%1' })).toContain(`ExecStart=/x --root /r%%1 start ${'a'.repeat(64)}`);
  });
});
