/**
 * `logs -t/--since/--until` on real detached containers: the monitor dates the output as it arrives
 * (log.times), lines are printed with Docker's RFC 3339 nanosecond prefix and filtered by times
 * given as Docker takes them; `--tail` and `-f` keep working; a log without times stays readable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { setupEnv, waitFor, type Env } from './containers-env.js';
import { expectOneLineError, okOut } from '../helpers/cli.js';

let env: Env;
let id: string;
/** The lines' times (ns) as `logs -t` reports them. */
let times: bigint[] = [];

const RFC3339NANO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{9})Z (.*)$/;
const ns = (iso: string, frac: string): bigint => BigInt(Date.parse(`${iso}Z`)) * 1_000_000n + BigInt(frac);
const unixArg = (t: bigint): string => `${t / 1_000_000_000n}.${String(t % 1_000_000_000n).padStart(9, '0')}`;

beforeAll(async () => {
  env = await setupEnv();
  const r = await env.cli(['run', '-d', '--name', 'talker', 'busybox', 'sh', '-c', 'echo one; sleep 1.2; echo two; sleep 1.2; echo three']);
  expect(r.code).toBe(0);
  id = r.stdout.trim();
  await waitFor(async () => ((await env.cli(['inspect', '-f', '{{.State.Status}}', 'talker'])).stdout.trim() === 'exited' ? true : undefined), 20_000);
});
afterAll(async () => {
  await env?.cli(['rm', '-f', 'talker', 'follower']);
  await env?.cleanup();
});

describe('logs with times', () => {
  it('-t prefixes each line with the time it was written, in order', async () => {
    const r = await env.cli(['logs', '-t', 'talker']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => RFC3339NANO.exec(l)?.[3])).toEqual(['one', 'two', 'three']);
    times = lines.map((l) => {
      const m = RFC3339NANO.exec(l)!;
      return ns(m[1]!, m[2]!);
    });
    expect(times[0]! < times[1]! && times[1]! < times[2]!).toBe(true);
    const created = JSON.parse(okOut(await env.cli(['inspect', 'talker'])))[0].Created as string;
    expect(times[0]! >= BigInt(Date.parse(created)) * 1_000_000n).toBe(true);
    expect((await env.cli(['logs', '-t', '--tail', '1', 'talker'])).stdout).toMatch(/^\S+Z three\n$/);
  });

  it('--since and --until take unix times, RFC 3339 and durations as Docker does', async () => {
    const between = (a: bigint, b: bigint): bigint => (a + b) / 2n;
    const s = unixArg(between(times[0]!, times[1]!));
    const u = unixArg(between(times[1]!, times[2]!));
    expect((await env.cli(['logs', '--since', s, 'talker'])).stdout).toBe('two\nthree\n');
    expect((await env.cli(['logs', '--until', u, 'talker'])).stdout).toBe('one\ntwo\n');
    expect((await env.cli(['logs', '--since', s, '--until', u, 'talker'])).stdout).toBe('two\n');
    const iso = new Date(Number(between(times[0]!, times[1]!) / 1_000_000n)).toISOString();
    expect((await env.cli(['logs', '--since', iso, 'talker'])).stdout).toBe('two\nthree\n');
    expect((await env.cli(['logs', '--since', '1h', 'talker'])).stdout).toBe('one\ntwo\nthree\n');
    expect((await env.cli(['logs', '--until', '1h', 'talker'])).stdout).toBe('');
    // --tail counts lines before the time filter, as Docker's json-file reader does.
    expect((await env.cli(['logs', '--tail', '2', '--until', u, 'talker'])).stdout).toBe('two\n');
    expectOneLineError(await env.cli(['logs', '--since', 'yesterday', 'talker']), /invalid value for --since/);
  });

  it('-f -t dates lines as they come, and -f stops at --until', async () => {
    expect((await env.cli(['run', '-d', '--name', 'follower', 'busybox', 'sh', '-c', 'echo first; sleep 300'])).code).toBe(0);
    const child = env.spawnCli(['logs', '-f', '-t', 'follower']);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(() => (RFC3339NANO.test(out.split('\n')[0] ?? '') && out.endsWith('first\n') ? true : undefined), 20_000);
    await env.cli(['exec', 'follower', 'sh', '-c', 'echo second > /proc/1/fd/1']);
    await waitFor(() => (out.split('\n').filter(Boolean).length === 2 ? true : undefined), 20_000);
    expect(out.split('\n').filter(Boolean).map((l) => RFC3339NANO.exec(l)?.[3])).toEqual(['first', 'second']);
    child.kill('SIGINT');
    // An --until already past ends a follow at once, container still running.
    const now = (Date.now() / 1000).toFixed(3);
    const r = await env.cli(['logs', '-f', '--until', now, 'follower'], { timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('first\nsecond\n');
  });

  it('keeps a log written without times readable', async () => {
    rmSync(`${env.root}/containers/${id}/log.times`);
    expect((await env.cli(['logs', 'talker'])).stdout).toBe('one\ntwo\nthree\n');
    expect((await env.cli(['logs', '-t', 'talker'])).stdout).toBe('one\ntwo\nthree\n');
    expect((await env.cli(['logs', '--tail', '1', 'talker'])).stdout).toBe('three\n');
    expect((await env.cli(['logs', '--since', '1h', 'talker'])).stdout).toBe('');
  });
});
