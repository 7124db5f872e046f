/**
 * `export` output is what `docker import` takes: a private dockerd (its own data root, socket and
 * no networking) imports the tar, and the image holds the container's files. Skipped where
 * dockerd is not installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setupEnv, waitFor, type Env } from './containers-env.js';

const hasDocker = spawnSync('sh', ['-c', 'command -v dockerd && command -v docker']).status === 0;

let env: Env;
let dockerd: ChildProcess | undefined;
let sock: string;
const docker = (args: string[]): { code: number; out: string; err: string } => {
  const r = spawnSync('docker', ['-H', `unix://${sock}`, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
};

beforeAll(async () => {
  env = await setupEnv();
  if (!hasDocker) return;
  const d = join(env.dir, 'docker');
  sock = join(d, 'sock');
  dockerd = spawn('dockerd', ['--data-root', join(d, 'data'), '--exec-root', join(d, 'exec'), '-H', `unix://${sock}`, '--pidfile', join(d, 'pid'),
    '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false'], { stdio: 'ignore' });
  await waitFor(() => (existsSync(sock) && docker(['version']).code === 0 ? true : undefined), 60_000);
}, 90_000);
afterAll(async () => {
  if (dockerd?.pid) {
    docker(['rmi', '-f', 'exported:docker']);
    dockerd.kill('SIGTERM');
    await new Promise((r) => dockerd!.once('exit', r));
    // dockerd unmounts its own; anything left under the data root goes before the tree does.
    const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(join(env.dir, 'docker')));
    for (const m of left.reverse()) spawnSync('umount', ['-l', m!]);
  }
  await env?.cli(['rm', '-f', 'made']);
  await env?.cleanup();
}, 60_000);

describe.skipIf(!hasDocker)('export and docker import', () => {
  it('docker imports the exported filesystem', async () => {
    expect((await env.cli(['run', '--name', 'made', '--network', 'none', 'busybox', 'sh', '-c', 'echo from-imgbuild > /made; rm /bin/ls'])).code).toBe(0);
    const tar = join(env.dir, 'made.tar');
    expect((await env.cli(['export', '-o', tar, 'made'])).code).toBe(0);
    const imp = docker(['import', tar, 'exported:docker']);
    expect(imp.err).toBe('');
    expect(imp.code).toBe(0);
    // The image's one layer, saved back out, holds the container's file and not the deleted one.
    const saved = spawnSync('sh', ['-c', `docker -H unix://${sock} save exported:docker | tar -xOf - --wildcards '*/layer.tar' | tar -tf -`], { encoding: 'utf8' });
    expect(saved.stdout.split('\n')).toContain('made');
    expect(saved.stdout.split('\n')).toContain('bin/busybox');
    expect(saved.stdout.split('\n')).not.toContain('bin/ls');
  });
});
