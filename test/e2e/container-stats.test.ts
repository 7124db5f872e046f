/** `stats` on real containers (cgroup v1 here): Docker's columns, units and redraws. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupEnv, waitFor, type Env } from './containers-env.js';
import { expectOneLineError } from '../helpers/cli.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
  // Busy on one CPU, a 64 MiB limit, traffic on its own bridge interface.
  expect((await env.cli(['run', '-d', '--name', 'busy', '-m', '64m', '--network', 'bridge', 'busybox', 'sh', '-c',
    'ping -c 3 -i 0.2 10.88.0.1 >/dev/null 2>&1; while :; do :; done'])).code).toBe(0);
  expect((await env.cli(['run', '-d', '--name', 'idle', '--network', 'none', 'busybox', 'sleep', '300'])).code).toBe(0);
});
afterAll(async () => {
  await env?.cli(['rm', '-f', 'busy', 'idle', 'gone']);
  await env?.cleanup();
});

describe('stats', () => {
  it('prints one reading with Docker\'s columns and units', async () => {
    await new Promise((r) => setTimeout(r, 1000)); // the pings
    const r = await env.cli(['stats', '--no-stream', 'busy', 'idle']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CONTAINER ID {3}NAME {6}CPU % {5}MEM USAGE \/ LIMIT {3}MEM % {5}NET I\/O {5,}BLOCK I\/O {3,}PIDS$/);
    const cells = (l: string): string[] => l.split(/ {3,}/);
    const [id, name, cpu, mem, memPct, net, block, pids] = cells(lines[1]!);
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(name).toBe('busy');
    expect(Number(cpu!.replace('%', ''))).toBeGreaterThan(1);
    expect(mem).toMatch(/^\d+(\.\d+)?(B|KiB|MiB) \/ 64MiB$/);
    expect(memPct).toMatch(/^\d+\.\d\d%$/);
    // Received and sent on its eth0: non-zero both ways after the pings.
    expect(net).toMatch(/^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/);
    expect(net).not.toMatch(/^0B|\/ 0B$/);
    expect(block).toMatch(/^\d+(\.\d+)?[kMG]?B \/ \d+(\.\d+)?[kMG]?B$/);
    expect(pids).toBe('1');
    const idle = cells(lines[2]!);
    expect(idle[1]).toBe('idle');
    expect(idle[2]).toBe('0.00%');
    expect(idle[5]).toBe('0B / 0B'); // only lo in a `none` network
  });

  it('takes --format and --no-trunc, and lists every running container by default', async () => {
    const r = await env.cli(['stats', '--no-stream', '--no-trunc', '--format', '{{.ID}} {{.Name}} {{.PIDs}}']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ').slice(1).join(' ')).sort()).toEqual(['busy 1', 'idle 1']);
    expect(r.stdout.split(' ')[0]).toMatch(/^[0-9a-f]{64}$/);
    const t = await env.cli(['stats', '--no-stream', '--format', 'table {{.Name}}\\t{{.MemUsage}}', 'idle']);
    expect(t.stdout).toMatch(/^NAME {6}MEM USAGE \/ LIMIT\nidle {6}\S+ \/ \S+\n$/);
    expectOneLineError(await env.cli(['stats', '--no-stream', '--format', '{{.Nope}}', 'idle']), /can't evaluate field Nope/);
    expectOneLineError(await env.cli(['stats', '--no-stream', 'nosuch']), /no such container: nosuch/);
  });

  it('shows a stopped container as zeros, and lists it with -a only', async () => {
    expect((await env.cli(['run', '--name', 'gone', 'busybox', 'true'])).code).toBe(0);
    const r = await env.cli(['stats', '--no-stream', '--format', '{{.CPUPerc}} {{.MemUsage}} {{.PIDs}}', 'gone']);
    expect(r.stdout).toBe('0.00% 0B / 0B 0\n');
    const names = async (args: string[]): Promise<string[]> =>
      (await env.cli(['stats', '--no-stream', ...args, '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean).sort();
    expect(await names([])).toEqual(['busy', 'idle']);
    expect(await names(['-a'])).toEqual(['busy', 'gone', 'idle']);
  });

  it('redraws the table in place until interrupted', async () => {
    const child = env.spawnCli(['stats', 'idle']);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(() => (out.split('\u001b[2J\u001b[H').length >= 3 ? true : undefined), 20_000);
    const code = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    child.kill('SIGINT');
    await code;
    const frames = out.split('\u001b[2J\u001b[H').filter(Boolean);
    for (const f of frames) expect(f).toMatch(/^CONTAINER ID .*\n[0-9a-f]{12} {3}idle /);
  });
});
