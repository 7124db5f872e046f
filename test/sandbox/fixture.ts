/**
 * Shared setup of the runner tests: a tiny rootfs whose only program is the static test-init,
 * a spec builder, a runner that collects output, and leak checks (mounts, processes).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'vitest';
import { makeTmp, mountsUnder } from '../helpers/tmp.js';
import { runSandbox, type SandboxIO } from '../../src/sandbox/sandbox.js';
import type { SandboxSpec } from '../../src/sandbox/spec.js';

export const repo = join(import.meta.dirname, '..', '..');
export const testInit = join(repo, 'native', 'build', 'test-init');

/** argv of test-init (native/test-init.c, the sandbox tests' program) running `a`. */
export const sh = (...a: string[]): string[] => ['test-init', ...a];

export interface Box {
  dir: string;
  rootfs: string;
  spec(args: string[], over?: Partial<SandboxSpec> & { proc?: Partial<SandboxSpec['process']> }): SandboxSpec;
  run(spec: SandboxSpec, io?: Partial<SandboxIO> & { input?: string }): Promise<Ran>;
  /** Host pids of container processes started through run(). */
  pids: number[];
  cleanup(): Promise<void>;
}

export interface Ran {
  exitCode: number;
  signal?: NodeJS.Signals;
  stdout: string;
  stderr: string;
}

export function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st);
  } catch {
    return false;
  }
}

/** SIGKILLs a process this test started, if it is still there (it may exit between check and kill). */
export function killIfAlive(pid: number): void {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

export async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

/** A rootfs dir with /bin/test-init and the dirs the sandbox mounts over. */
export async function makeBox(): Promise<Box> {
  if (!existsSync(testInit)) throw new Error(`${testInit} missing: build native/ first`);
  const tmp = await makeTmp('imgbuild-runner-');
  const rootfs = join(tmp.dir, 'rootfs');
  for (const d of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev', 'work']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(testInit, join(rootfs, 'bin', 'test-init'));
  const pids: number[] = [];
  const box: Box = {
    dir: tmp.dir,
    rootfs,
    pids,
    spec(args, over = {}) {
      const { proc, ...rest } = over;
      return {
        process: { args, env: ['PATH=/bin', 'HOME=/'], cwd: '/', user: { uid: 0, gid: 0 }, ...proc },
        rootfs: [{ type: 'bind', source: rootfs, options: ['rbind'] }],
        mounts: [],
        namespaces: ['mount', 'pid', 'uts', 'ipc', 'net'],
        hostname: 'sandbox',
        ...rest,
      };
    },
    async run(spec, io = {}) {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      stdout.on('data', (c: Buffer) => out.push(c));
      stderr.on('data', (c: Buffer) => err.push(c));
      const { input, ...rest } = io;
      const r = await runSandbox(spec, {
        stdout,
        stderr,
        ...(input !== undefined ? { stdin: Readable.from([Buffer.from(input)]) } : {}),
        onStart: ({ pid }) => pids.push(pid),
        ...rest,
      });
      return { ...r, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
    },
    async cleanup() {
      for (const p of pids) expect(await waitGone(p), `container process ${p} still running`).toBe(true);
      expect(await mountsUnder(tmp.dir)).toEqual([]);
      await tmp.cleanup();
    },
  };
  return box;
}
