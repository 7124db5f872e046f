/**
 * Runs the native helper once: writes the bootstrap to its fd 3, reads status records from its
 * fd 4 as they arrive (the container pid comes before execve), wires stdio and cancellation.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { AbortedError } from '../errors.js';
import { SandboxError, type SandboxStage } from './errors.js';
import { BootstrapWriter, RecordDecoder, Stage, Tag, type StatusRecord } from './protocol.js';

export interface HelperOptions {
  helper: string;
  bootstrap: Buffer;
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  signal?: AbortSignal;
  /** Called once with the host pid of the container process, before it execs. */
  onPid?: (pid: number) => void;
  /** Called once the process has exec'd, with when (`monotonicMs()` milliseconds; foreground run). */
  onExec?: (atMs: number) => void;
  /** Open the control stream (fd 5) for terminal resizes; `onPid` then also gets `resize`. */
  control?: boolean;
  onControl?: (resize: (rows: number, cols: number) => void) => void;
  /** Node signals relayed to the helper, which passes them on to the container process. */
  forwardSignals?: readonly NodeJS.Signals[];
  /** Detached mode: resolve as soon as fd 4 reaches EOF and the helper exited. */
  detached?: boolean;
  /** Given to the helper as its fd 6 (the bootstrap says so: SandboxIO.lifeline). */
  lifeline?: Socket;
}

export interface HelperOutcome {
  pid?: number;
  monitorPid?: number;
  /** Raw wait status of the container process (REC_EXIT). */
  waitStatus?: number;
}

const STAGES: Record<number, SandboxStage> = { [Stage.PARENT]: 'parent', [Stage.CHILD]: 'child', [Stage.INIT]: 'init' };

export function recordToError(r: StatusRecord): SandboxError {
  const i = r.message.indexOf(': ');
  const syscall = i < 0 ? r.message : r.message.slice(0, i);
  const detail = i < 0 ? '' : r.message.slice(i + 2);
  return new SandboxError({ stage: STAGES[r.stage] ?? 'parent', errno: r.value, syscall, detail });
}

/** Decodes a raw wait status into an exit code (128+n for signals, as shells report it). */
export function mapWaitStatus(st: number): { exitCode: number; signal?: NodeJS.Signals } {
  const sig = st & 0x7f;
  if (sig === 0) return { exitCode: (st >> 8) & 0xff };
  const name = (Object.entries(constants.signals).find(([, n]) => n === sig)?.[0] ?? undefined) as NodeJS.Signals | undefined;
  return name ? { exitCode: 128 + sig, signal: name } : { exitCode: 128 + sig };
}

export function runHelper(o: HelperOptions): Promise<HelperOutcome> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new AbortedError('sandbox aborted before start', { cause: o.signal.reason }));
      return;
    }
    const child = spawn(o.helper, [], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', ...(o.control ? (['pipe'] as const) : o.lifeline ? (['ignore'] as const) : []), ...(o.lifeline ? [o.lifeline] : [])],
    });
    const outcome: HelperOutcome = {};
    let error: SandboxError | undefined;
    let spawnError: Error | undefined;
    let aborted = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let statusEnded = false;
    let settled = false;
    const decoder = new RecordDecoder();

    const stdio = child.stdio as unknown as [Writable, Readable, Readable, Writable, Readable, Writable | undefined];
    const [stdinPipe, stdoutPipe, stderrPipe, bootPipe, statusPipe, controlPipe] = stdio;
    if (controlPipe) {
      controlPipe.on('error', () => {}); // the helper is gone; a late resize is moot
      o.onControl?.((rows, cols) => {
        if (exited === undefined && !controlPipe.destroyed) controlPipe.write(new BootstrapWriter().winsize(rows, cols).finish());
      });
    }

    const killContainer = (sig: NodeJS.Signals) => {
      if (outcome.pid !== undefined && outcome.waitStatus === undefined) {
        try {
          process.kill(outcome.pid, sig);
        } catch {
          /* already gone */
        }
      }
    };
    const onAbort = () => {
      aborted = true;
      if (outcome.pid !== undefined) killContainer('SIGKILL');
      // Before the pid is known: a foreground helper takes its child along (PDEATHSIG); a
      // detached monitor is not our child, so its container is killed when its pid arrives.
      else if (!o.detached) child.kill('SIGKILL');
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const relays = (o.forwardSignals ?? []).map((sig) => {
      const fn = () => {
        if (exited === undefined) child.kill(sig);
      };
      process.on(sig, fn);
      return [sig, fn] as const;
    });

    const finish = () => {
      if (settled || exited === undefined || !statusEnded) return;
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      for (const [sig, fn] of relays) process.off(sig, fn);
      o.stdin?.unpipe(stdinPipe);
      controlPipe?.destroy();
      if (spawnError) reject(spawnError);
      else if (error) reject(error);
      else if (aborted) reject(new AbortedError('sandbox aborted', { cause: o.signal?.reason }));
      else if (o.detached ? outcome.pid === undefined : outcome.waitStatus === undefined)
        reject(
          new SandboxError({
            stage: 'parent',
            errno: 0,
            syscall: 'helper',
            detail: `${o.helper} ended without a status (exit ${exited.code ?? exited.signal})`,
          }),
        );
      else resolve(outcome);
    };

    child.on('error', (e) => {
      spawnError = e;
      exited ??= { code: null, signal: null };
      statusEnded = true;
      finish();
    });
    // 'close' (not 'exit'): the helper has exited and stdout/stderr are drained.
    child.on('close', (code, signal) => {
      exited = { code, signal };
      finish();
    });
    statusPipe.on('data', (chunk: Buffer) => {
      for (const r of decoder.push(chunk)) {
        if (r.stage < Stage.REC_FIRST_INFO) error ??= recordToError(r);
        else if (r.stage === Stage.REC_PID) {
          outcome.pid = r.value;
          if (aborted) killContainer('SIGKILL');
          else o.onPid?.(r.value);
        } else if (r.stage === Stage.REC_MONITOR) outcome.monitorPid = r.value;
        else if (r.stage === Stage.REC_EXIT) outcome.waitStatus = r.value;
        else if (r.stage === Stage.REC_EXECED && o.onExec && /^\d+$/.test(r.message)) {
          // The helper's CLOCK_MONOTONIC is process.hrtime's, the clock of monotonicMs.
          o.onExec(Number(BigInt(r.message)) / 1e6);
        }
      }
    });
    statusPipe.on('end', () => {
      statusEnded = true;
      finish();
    });
    statusPipe.on('error', () => {
      statusEnded = true;
      finish();
    });

    bootPipe.on('error', () => {}); // the helper failing early shows up as a status record
    // The helper closes an fd 5 it is not told about: it may be a descriptor leaked to us.
    bootPipe.end(o.control ? Buffer.concat([o.bootstrap, new BootstrapWriter().u32(Tag.CONTROL, 1).finish()]) : o.bootstrap);

    stdinPipe.on('error', () => {}); // EPIPE: the container stopped reading
    if (o.stdin) o.stdin.pipe(stdinPipe);
    else stdinPipe.end();
    if (o.stdout) stdoutPipe.pipe(o.stdout, { end: false });
    else stdoutPipe.resume();
    if (o.stderr) stderrPipe.pipe(o.stderr, { end: false });
    else stderrPipe.resume();
  });
}
