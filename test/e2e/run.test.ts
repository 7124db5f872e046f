/** `imgbuild run`: commands, exit codes, env, user, mounts, flags (privileged; real sandbox). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setupEnv, type Env } from './containers-env.js';
import { onPty } from './pty.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

describe('run', () => {
  it('runs the command and passes its output and exit status', async () => {
    const r = await env.cli(['run', '--rm', 'busybox', 'echo', 'hello', 'world']);
    expect(r).toMatchObject({ code: 0, stdout: 'hello world\n' });
    const e = await env.cli(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(e.code).toBe(3);
    expect(e.stdout).toBe('out\n');
    expect(e.stderr).toBe('err\n');
  });

  it('uses the image CMD when no command is given, and reports a signal death as 128+n', async () => {
    const r = await env.cli(['run', '--rm', 'busybox'], { input: 'echo from-cmd\n' });
    expect(r.code).toBe(0); // sh with stdin closed (no -i) exits at once
    const k = await env.cli(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'kill -KILL $$']);
    expect(k.code).toBe(137);
  });

  it('maps failures: 127 not found, 126 not executable, 125 for its own errors', async () => {
    const nf = await env.cli(['run', '--rm', 'busybox', 'no-such-command']);
    expect(nf.code).toBe(127);
    expect(nf.stderr).toMatch(/no-such-command/);
    const ne = await env.cli(['run', '--rm', 'busybox', '/etc/passwd']);
    expect(ne.code).toBe(126);
    const ni = await env.cli(['run', '--rm', 'no-such-image:1', 'true']);
    expect(ni.code).toBe(125);
    expect(ni.stderr).toMatch(/no-such-image/);
    const bad = await env.cli(['run', '--rm', '--network', 'weird', 'busybox', 'true']);
    expect(bad.code).toBe(125);
  });

  it('composes the environment: image < --env-file < -e, -e NAME from the caller', async () => {
    const f = join(env.dir, 'env.list');
    await writeFile(f, '# comment\nA=file\nB=file\n\nPASSED\n');
    const r = await env.cli(['run', '--rm', '--env-file', f, '-e', 'B=flag', '-e', 'PASSED', 'busybox', 'sh', '-c', 'echo $A $B $PASSED $PATH $HOME'], {
      env: { PASSED: 'from-host' },
    });
    expect(r.stdout).toBe('file flag from-host /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /root\n');
  });

  it('sets the working directory, user and groups', async () => {
    expect((await env.cli(['run', '--rm', '-w', '/tmp/new/dir', 'busybox', 'pwd'])).stdout).toBe('/tmp/new/dir\n');
    expect((await env.cli(['run', '--rm', '-u', '1000:1001', 'busybox', 'id'])).stdout).toBe('uid=1000 gid=1001\n');
    expect((await env.cli(['run', '--rm', '-u', 'nobody', 'busybox', 'id', '-u'])).stdout).toBe('65534\n');
    expect((await env.cli(['run', '--rm', '-u', 'daemon:tty', 'busybox', 'id'])).stdout).toMatch(/^uid=1\(daemon\) gid=5\(tty\)/);
    const missing = await env.cli(['run', '--rm', '-u', 'ghost', 'busybox', 'id']);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/ghost/);
  });

  it('sets the hostname (default: the short id) and writes /etc/hosts and /etc/resolv.conf', async () => {
    expect((await env.cli(['run', '--rm', '--hostname', 'box1', 'busybox', 'sh', '-c', 'hostname; cat /etc/hostname'])).stdout).toBe('box1\nbox1\n');
    const r = await env.cli(['run', '--name', 'hn', 'busybox', 'sh', '-c', 'hostname; grep -c localhost /etc/hosts; test -f /etc/resolv.conf && echo ok']);
    const id = (await env.cli(['ps', '-aq', '--no-trunc'])).stdout.trim();
    expect(r.stdout).toBe(`${id.slice(0, 12)}\n2\nok\n`);
    await env.cli(['rm', 'hn']);
  });

  it('bind-mounts volumes read-write and read-only, and mounts tmpfs', async () => {
    const host = join(env.dir, 'vol');
    await mkdir(host);
    await writeFile(join(host, 'in.txt'), 'from host\n');
    const r = await env.cli([
      'run', '--rm', '-v', `${host}:/data`, '-v', `${host}:/ro:ro`, '--tmpfs', '/scratch',
      'busybox', 'sh', '-c', 'cat /data/in.txt; echo new > /data/out.txt; echo x > /ro/y 2>/dev/null || echo ro-refused; grep -c " /scratch tmpfs" /proc/mounts',
    ]);
    expect(r.stdout).toBe('from host\nro-refused\n1\n');
    expect(await readFile(join(host, 'out.txt'), 'utf8')).toBe('new\n');
  });

  it('--read-only makes the rootfs read-only (tmpfs still writable)', async () => {
    const r = await env.cli(['run', '--rm', '--read-only', '--tmpfs', '/tmp', 'busybox', 'sh', '-c', 'touch /x 2>/dev/null || echo refused; touch /tmp/x && echo tmp-ok']);
    expect(r.stdout).toBe('refused\ntmp-ok\n');
  });

  it('--entrypoint replaces the entrypoint and the image CMD', async () => {
    expect((await env.cli(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'a', 'b'])).stdout).toBe('a b\n');
    expect((await env.cli(['run', '--rm', '--entrypoint', 'pwd', 'busybox'])).stdout).toBe('/\n');
  });

  it('keeps Docker\'s default capabilities and honours --cap-drop / --cap-add', async () => {
    const capEff = async (...flags: string[]): Promise<bigint> => {
      const r = await env.cli(['run', '--rm', ...flags, 'busybox', 'sh', '-c', 'grep CapEff /proc/self/status']);
      return BigInt(`0x${r.stdout.trim().split(/\s+/)[1]}`);
    };
    const CHOWN = 1n << 0n;
    const NET_ADMIN = 1n << 12n;
    const SYS_ADMIN = 1n << 21n;
    const def = await capEff();
    expect(def & CHOWN).toBe(CHOWN);
    expect(def & SYS_ADMIN).toBe(0n);
    expect((await capEff('--cap-drop', 'CHOWN')) & CHOWN).toBe(0n);
    expect((await capEff('--cap-add', 'NET_ADMIN')) & NET_ADMIN).toBe(NET_ADMIN);
    expect(await capEff('--cap-drop', 'ALL')).toBe(0n);
    const chown = await env.cli(['run', '--rm', '--cap-drop', 'CHOWN', 'busybox', 'sh', '-c', 'touch /f; chown 5 /f']);
    expect(chown.code).not.toBe(0);
  });

  it('--init puts a reaper at pid 1 and the app below it', async () => {
    const plain = await env.cli(['run', '--rm', 'busybox', 'sh', '-c', 'echo $$']);
    expect(plain.stdout).toBe('1\n');
    const init = await env.cli(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'echo $$']);
    expect(init.code).toBe(0);
    expect(Number(init.stdout.trim())).toBeGreaterThan(1);
  });

  it('-i passes stdin; without -i the container gets none', async () => {
    expect((await env.cli(['run', '--rm', '-i', 'busybox', 'cat'], { input: 'piped\n' })).stdout).toBe('piped\n');
    expect((await env.cli(['run', '--rm', 'busybox', 'cat'], { input: 'ignored\n' })).stdout).toBe('');
  });

  it('-t gives the container a real terminal', async () => {
    const r = await env.cli(['run', '--rm', '-t', 'busybox', 'sh', '-c', 'tty; test -t 1 && echo is-a-tty']);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\r/g, '')).toBe('/dev/pts/0\nis-a-tty\n');
  });

  it('-t on a terminal: the container starts with its size and follows a resize (SIGWINCH)', async () => {
    const out = await onPty(['--root', env.root, 'run', '--rm', '-t', 'busybox', 'sh', '-c',
      'stty size; trap "stty size; exit 3" WINCH; echo ready; while :; do sleep 0.05; done']);
    expect(out).toBe('30 100\nready\n42 132\nEXIT 3');
  });

  it('--ulimit sets resource limits', async () => {
    const r = await env.cli(['run', '--rm', '--ulimit', 'nofile=512:1024', 'busybox', 'sh', '-c', 'ulimit -n; ulimit -Hn']);
    expect(r.stdout).toBe('512\n1024\n');
  });

  it('forwards signals sent to imgbuild to the container', async () => {
    const child = env.spawnCli(['run', '--rm', 'busybox', 'sh', '-c',
      'trap "echo got-usr1" USR1; trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.1; done']);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    const until = async (s: string): Promise<void> => {
      for (let i = 0; i < 200 && !out.includes(s); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain(s);
    };
    await until('ready');
    child.kill('SIGUSR1');
    await until('got-usr1');
    child.kill('SIGTERM');
    expect(await exited).toBe(7);
    expect(out).toContain('got-term');
  });

  it('is registered lazily yet listed: --help names every command, `help run` and `run --help` show run\'s flags', async () => {
    const { commandModules } = await import('../../src/cli/commands/table.js');
    const help = await env.cli(['--help']);
    expect(help.code).toBe(0);
    for (const name of commandModules.keys()) expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    for (const args of [['help', 'run'], ['run', '--help']]) {
      const r = await env.cli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('--runtime <name>');
    }
    const unknown = await env.cli(['rn', 'busybox']);
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toMatch(/unknown command: imgbuild rn \(did you mean one of rm, run\?\)/);
  });

  it('leaves no container behind with --rm and keeps one without it', async () => {
    await env.cli(['run', '--rm', 'busybox', 'true']);
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');
    await env.cli(['run', '--name', 'kept', 'busybox', 'true']);
    const ps = await env.cli(['ps', '-a']);
    expect(ps.stdout).toMatch(/kept/);
    expect(ps.stdout).toMatch(/Exited \(0\)/);
    expect((await env.cli(['rm', 'kept'])).code).toBe(0);
  });
});
