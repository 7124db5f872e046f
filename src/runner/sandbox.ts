/**
 * The sandbox facade: runs a SandboxSpec through the native helper (native/build/imgbuild-sandbox).
 */
import type { Readable, Writable } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxSpec } from './spec.js';

export interface SandboxIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  signal?: AbortSignal;
}

export interface SandboxResult {
  exitCode: number;
  signal?: NodeJS.Signals;
}

export interface Detached {
  /** Host pid of the container's pid 1. */
  pid: number;
  /** Host pid of the monitor that waits for the container and writes the status file. */
  monitorPid: number;
}

export interface ExecProcess {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  terminal?: boolean;
  capabilities?: string[];
  noNewPrivileges?: boolean;
}

/** Path of the native helper binary. */
export function helperPath(): string {
  // dist/runner/sandbox.js and src/runner/sandbox.ts both sit two levels below the package root.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'imgbuild-sandbox');
}

export function runSandbox(spec: SandboxSpec, io: SandboxIO): Promise<SandboxResult> {
  void spec;
  void io;
  return Promise.reject(new Error('not implemented yet'));
}

export function startDetached(
  spec: SandboxSpec,
  o: { logPath: string; statusPath: string; signal?: AbortSignal },
): Promise<Detached> {
  void spec;
  void o;
  return Promise.reject(new Error('not implemented yet'));
}

export function execIn(pid: number, p: ExecProcess, io: SandboxIO): Promise<SandboxResult> {
  void pid;
  void p;
  void io;
  return Promise.reject(new Error('not implemented yet'));
}

export { toOciConfig } from './oci-config.js';
