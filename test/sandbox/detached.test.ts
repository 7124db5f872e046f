import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execIn, runSandbox, startDetached } from '../../src/sandbox/sandbox.js';
import { SandboxError } from '../../src/sandbox/errors.js';
import { alive, killIfAlive, makeBox, waitGone, type Box, sh } from './fixture.js';

let box: Box;
const started: number[] = [];
beforeEach(async () => {
  box = await makeBox();
});
afterEach(async () => {
  for (const p of started.splice(0)) {
    killIfAlive(p);
    expect(await waitGone(p), `process ${p} left running`).toBe(true);
  }
  await box.cleanup();
});

async function waitFile(path: string, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path)) return readFileSync(path, 'utf8');
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${path} did not appear`);
}

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const parts: Buffer[] = [];
  stream.on('data', (c: Buffer) => parts.push(c));
  return { stream, text: () => Buffer.concat(parts).toString() };
}

describe('startDetached', () => {
  it('outlives the call, logs stdout+stderr and writes the exit status', async () => {
    const logPath = join(box.dir, 'log');
    const statusPath = join(box.dir, 'status.json');
    const d = await startDetached(box.spec(sh('echo', 'to out', '+', 'err', 'to err', '+', 'sleep', '0.3', '+', 'exit', '4')), {
      logPath,
      statusPath,
    });
    started.push(d.pid, d.monitorPid);
    expect(d.pid).toBeGreaterThan(0);
    expect(d.monitorPid).not.toBe(d.pid);
    expect(alive(d.pid)).toBe(true);
    expect(existsSync(statusPath)).toBe(false);
    const status = JSON.parse(await waitFile(statusPath));
    expect(status).toMatchObject({ exitCode: 4, signal: null, oomKilled: false });
    expect(Date.now() - Date.parse(status.finishedAt)).toBeLessThan(60_000);
    expect(readFileSync(logPath, 'utf8')).toBe('to out\nto err\n');
    expect(await waitGone(d.monitorPid)).toBe(true);
  });

  it('records death by signal', async () => {
    const statusPath = join(box.dir, 'status.json');
    const d = await startDetached(box.spec(sh('sleep', '30')), { logPath: join(box.dir, 'log'), statusPath });
    started.push(d.pid, d.monitorPid);
    process.kill(d.pid, 'SIGKILL');
    expect(JSON.parse(await waitFile(statusPath))).toMatchObject({ exitCode: 137, signal: 'SIGKILL' });
  });

  it('an abort during start kills the container, which the monitor then records', async () => {
    const statusPath = join(box.dir, 'status.json');
    const ac = new AbortController();
    const p = startDetached(box.spec(sh('sleep', '30')), { logPath: join(box.dir, 'log'), statusPath, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toThrow(/abort/);
    expect(JSON.parse(await waitFile(statusPath))).toMatchObject({ exitCode: 137, signal: 'SIGKILL' });
  });

  it('reports setup errors before returning', async () => {
    const e = await startDetached(box.spec(['/bin/none']), {
      logPath: join(box.dir, 'log'),
      statusPath: join(box.dir, 'status.json'),
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SandboxError);
    expect(e).toMatchObject({ stage: 'init', errnoCode: 'ENOENT', syscall: 'execve' });
  });
});

describe('execIn', () => {
  it('joins the pid namespace, hostname and mounts of a running container', async () => {
    const spec = box.spec(sh('sleep', '30'), {
      hostname: 'exec-target',
      mounts: [{ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: [] }],
    });
    const d = await startDetached(spec, { logPath: join(box.dir, 'log'), statusPath: join(box.dir, 'status.json') });
    started.push(d.pid, d.monitorPid);
    const out = collect();
    const r = await execIn(
      d.pid,
      { args: sh('pid', '+', 'hostname', '+', 'touch', '/scratch/f', '+', 'ls', '/proc/1/root/scratch', '+', 'status', 'CapEff', '+', 'id'), env: ['PATH=/bin'], cwd: '/scratch', user: { uid: 0, gid: 0 } },
      { stdout: out.stream },
    );
    expect(r.exitCode).toBe(0);
    const lines = out.text().split('\n');
    expect(lines[0]).toMatch(/^pid=\d+ ppid=0$/);
    expect(Number(lines[0]!.match(/pid=(\d+)/)![1])).toBeGreaterThan(1);
    expect(lines.slice(1)).toEqual(['exec-target', '/scratch/f: ok', 'f', 'CapEff:\t00000000a80425fb', 'uid=0 gid=0 euid=0 groups=', '']);
    process.kill(d.pid, 'SIGKILL');
  });

  it('passes exit codes and setup errors', async () => {
    const d = await startDetached(box.spec(sh('sleep', '30')), { logPath: join(box.dir, 'log'), statusPath: join(box.dir, 's.json') });
    started.push(d.pid, d.monitorPid);
    const p = { env: ['PATH=/bin'], cwd: '/', user: { uid: 1000, gid: 1000 } };
    expect((await execIn(d.pid, { ...p, args: sh('exit', '9') }, {})).exitCode).toBe(9);
    await expect(execIn(d.pid, { ...p, args: ['nope'] }, {})).rejects.toMatchObject({ stage: 'init', syscall: 'execve' });
    await expect(execIn(d.pid, { ...p, args: sh('exit'), cwd: '/nope' }, {})).rejects.toMatchObject({ syscall: 'chdir' });
    process.kill(d.pid, 'SIGKILL');
  });
});

describe('terminal', () => {
  it('gives the process a real pty on /dev/pts', async () => {
    const out = collect();
    const r = await runSandbox(box.spec(sh('tty', '+', 'isatty', '+', 'echo', 'done'), { proc: { terminal: true } }), {
      stdout: out.stream,
      onStart: ({ pid }) => box.pids.push(pid),
    });
    expect(r.exitCode).toBe(0);
    expect(out.text().replace(/\r/g, '')).toBe('/dev/pts/0\nstdin=1 stdout=1\ndone\n');
  });

  it('passes input through the pty', async () => {
    const out = collect();
    const r = await runSandbox(box.spec(sh('cat'), { proc: { terminal: true } }), {
      stdout: out.stream,
      stdin: Readable.from([Buffer.from('typed\n\x04')]),
      onStart: ({ pid }) => box.pids.push(pid),
    });
    expect(r.exitCode).toBe(0);
    // the line discipline echoes the input, then cat prints it again
    expect(out.text().replace(/\r/g, '')).toMatch(/^typed\n(\^D\x08\x08)?typed\n/);
  });

  it('input the process never reads does not stall it', async () => {
    const out = collect();
    const r = await runSandbox(box.spec(sh('sleep', '0.3', '+', 'echo', 'done'), { proc: { terminal: true } }), {
      stdout: out.stream,
      stdin: Readable.from([Buffer.alloc(256 * 1024, 'x')]),
      onStart: ({ pid }) => box.pids.push(pid),
    });
    expect(r.exitCode).toBe(0);
    expect(out.text()).toContain('done');
  });

  it('resizes the terminal while the process runs', async () => {
    const out = collect();
    let resize: ((rows: number, cols: number) => void) | undefined;
    const p = runSandbox(box.spec(sh('winch'), { proc: { terminal: true } }), {
      stdout: out.stream,
      terminalSize: { rows: 24, cols: 80 },
      onStart: (i) => {
        box.pids.push(i.pid);
        resize = i.resize;
      },
    });
    while (!out.text().includes('size')) await new Promise((r) => setTimeout(r, 10));
    expect(resize).toBeTypeOf('function');
    resize!(50, 132);
    expect((await p).exitCode).toBe(0);
    expect(out.text().replace(/\r/g, '')).toBe('size 24 80\nsize 50 132\n');
  });

  it('exec with a terminal', async () => {
    const d = await startDetached(box.spec(sh('sleep', '30')), { logPath: join(box.dir, 'log'), statusPath: join(box.dir, 's.json') });
    started.push(d.pid, d.monitorPid);
    const out = collect();
    const r = await execIn(d.pid, { args: sh('tty'), env: [], cwd: '/', user: { uid: 0, gid: 0 }, terminal: true }, { stdout: out.stream });
    expect(r.exitCode).toBe(0);
    expect(out.text().trim()).toMatch(/^\/dev\/pts\/\d+$/);
    process.kill(d.pid, 'SIGKILL');
  });
});

describe('signals', () => {
  it('relays forwarded signals to the container', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const p = runSandbox(box.spec(sh('wait-signal')), {
      stdout: out,
      forwardSignals: ['SIGUSR2'],
      onStart: ({ pid }) => box.pids.push(pid),
    });
    while (!text.includes('ready')) await new Promise((r) => setTimeout(r, 10));
    process.kill(process.pid, 'SIGUSR2');
    const r = await p;
    expect(r.exitCode).toBe(0);
    expect(text).toBe('ready\ngot USR2\n');
  });
});
