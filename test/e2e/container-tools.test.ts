/** `diff`, `export`, `top` and `port` on real containers (busybox), compared with what Docker prints. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, setupEnv, type Env } from './containers-env.js';
import { CLI_EXE, REPO_ROOT, expectOneLineError } from '../helpers/cli.js';

let env: Env;

function tarNames(buf: Buffer): string[] {
  return spawnSync('tar', ['-tf', '-'], { input: buf, maxBuffer: 64 * 1024 * 1024 }).stdout.toString().split('\n').filter(Boolean);
}

beforeAll(async () => {
  env = await setupEnv();
  const r = await env.cli(['run', '-d', '--name', 'changed', '-v', `${env.dir}:/vol`, '-v', '/srv/anon/data', '--tmpfs', '/scratch', 'busybox', 'sh', '-c',
    'echo hi > /tmp/x; rm /bin/ls; touch /srv/anon/data/in-volume /scratch/in-tmpfs; mkdir -p /etc/foo/bar; echo >> /etc/passwd; touch /vol/inside; echo ready > /tmp/ready; exec sleep 300']);
  expect(r.code).toBe(0);
  for (let i = 0; i < 100; i++) {
    if ((await env.cli(['exec', 'changed', 'cat', '/tmp/ready'])).stdout === 'ready\n') break;
    await new Promise((res) => setTimeout(res, 50));
  }
});
afterAll(async () => {
  await env?.cli(['rm', '-f', 'changed', 'ported']);
  await env?.cleanup();
});

function mountsLeft(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => /imgbuild-(rootfs|export)-/.test(l));
}

describe('diff', () => {
  it('lists A/C/D like Docker, sorted, without the init layer\'s files or the volume', async () => {
    const r = await env.cli(['diff', 'changed']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(['C /bin', 'D /bin/ls', 'C /etc', 'A /etc/foo', 'A /etc/foo/bar', 'C /etc/passwd', 'C /tmp', 'A /tmp/ready', 'A /tmp/x', ''].join('\n'));
  });

  it('fails in one line for an unknown container', async () => {
    expectOneLineError(await env.cli(['diff', 'nosuch']), /no such container: nosuch/);
  });
});

describe('export', () => {
  it('writes the flattened filesystem (not the volume), importable as an image', async () => {
    const out = join(env.dir, 'exported.tar');
    expect((await env.cli(['export', '-o', out, 'changed'])).code).toBe(0);
    const names = tarNames(readFileSync(out));
    expect(names).toContain('tmp/x');
    expect(names).toContain('etc/foo/bar/');
    expect(names).toContain('bin/busybox');
    expect(names).not.toContain('bin/ls');
    expect(names.filter((n) => n.startsWith('vol/') && n !== 'vol/')).toEqual([]);
    expect(names.filter((n) => n.includes('in-volume') || n.includes('in-tmpfs'))).toEqual([]);
    expect(names.some((n) => n.includes('.wh.'))).toBe(false);
    // To stdout: the same entries.
    const std = spawnSync(CLI_EXE, ['--root', env.root, 'export', 'changed'], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
    expect(std.status).toBe(0);
    expect(tarNames(std.stdout)).toEqual(names);
    expect(mountsLeft()).toEqual([]);
    // A reader that stops early ends it quietly, and the container is thawed and running.
    const cut = spawnSync('bash', ['-c', `'${CLI_EXE}' --root '${env.root}' export changed | head -c 100 >/dev/null; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    expect([cut.stdout, cut.stderr]).toEqual(['0\n', '']);
    expect((await env.cli(['inspect', '-f', '{{.State.Status}}', 'changed'])).stdout).toBe('running\n');
    const id = (await env.cli(['inspect', '-f', '{{.Id}}', 'changed'])).stdout.trim();
    expect(readFileSync(`/sys/fs/cgroup/freezer/imgbuild/${id}/freezer.state`, 'utf8').trim()).toBe('THAWED');
    expect(mountsLeft()).toEqual([]);
    const imp = await env.cli(['import', out, 'exported:1']);
    expect(imp.code).toBe(0);
    const run = await env.cli(['run', '--rm', 'exported:1', 'sh', '-c', 'cat /tmp/x; test -e /bin/ls || echo no-ls']);
    expect(run.stdout).toBe('hi\nno-ls\n');
  });
});

describe('top', () => {
  it('prints the container\'s processes with Docker\'s default columns', async () => {
    const r = await env.cli(['top', 'changed']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]!.split(/\s+/)).toEqual(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(7).join(' '))).toEqual(['sleep 300']);
  });

  it('passes ps options through', async () => {
    const r = await env.cli(['top', 'changed', '-o', 'pid,comm']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PID\s+COMMAND\n\d+\s+sleep\n$/);
    expectOneLineError(await env.cli(['top', 'changed', '-o', 'comm']), /PID field/);
  });
});

describe('port', () => {
  it('prints the published mappings, all or one', async () => {
    const [a, b] = [await freePort(), await freePort()];
    expect((await env.cli(['run', '-d', '--name', 'ported', '-p', `${a}:80`, '-p', `${b}:8080`, 'busybox', 'sleep', '300'])).code).toBe(0);
    expect((await env.cli(['port', 'ported'])).stdout).toBe(`80/tcp -> 0.0.0.0:${a}\n80/tcp -> [::]:${a}\n8080/tcp -> 0.0.0.0:${b}\n8080/tcp -> [::]:${b}\n`);
    expect((await env.cli(['port', 'ported', '8080/tcp'])).stdout).toBe(`0.0.0.0:${b}\n[::]:${b}\n`);
    expectOneLineError(await env.cli(['port', 'ported', '81']), /No public port '81' published for ported/);
    expectOneLineError(await env.cli(['port', 'ported', '80/udp']), /No public port '80\/udp' published for ported/);
    expectOneLineError(await env.cli(['port', 'ported', 'abc']), /invalid port \(abc\)/);
    expect((await env.cli(['port', 'changed'])).stdout).toBe('');
  });
});
