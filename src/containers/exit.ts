/** How a container's end is told: Docker's exit statuses, and the record's `exited` state. */
import { constants as osConstants } from 'node:os';
import { ContainerStartError } from './errors.js';
import { updateRecord, writeExitStatus, type ContainerRecord, type ExitStatus } from './record.js';

/** A process killed by a signal exits 128 + its number, as a shell reports it. */
export function normaliseExit(r: { exitCode: number; signal?: string | undefined }): { exitCode: number; signal?: string } {
  if (r.signal) {
    const n = osConstants.signals[r.signal as keyof typeof osConstants.signals] ?? 9;
    return { exitCode: 128 + n, signal: r.signal };
  }
  return { exitCode: r.exitCode };
}

/** Maps the sandbox's pre-exec failure to Docker's statuses: 127 not found, 126 not executable, else 125. */
export function mapStartError(e: unknown, argv0: string): ContainerStartError {
  // SandboxError keeps the errno name in errnoCode (its `code` is the error category).
  const err = e as { code?: string; errnoCode?: string; syscall?: string; message?: string };
  const msg = err?.message ?? String(e);
  const code = err?.errnoCode ?? (typeof err?.code === 'string' ? err.code : '');
  const isExec = err?.syscall === 'execve' || /exec/i.test(msg);
  if (isExec && (code === 'ENOENT' || code === 'ENOTDIR')) return new ContainerStartError(`${argv0}: executable file not found (${msg})`, 127, { cause: e });
  if (isExec && ['EACCES', 'ENOEXEC', 'EISDIR', 'EPERM', 'ETXTBSY'].includes(code))
    return new ContainerStartError(`${argv0}: permission denied or not executable (${msg})`, 126, { cause: e });
  return new ContainerStartError(`starting the container: ${msg}`, 125, { cause: e });
}

/** The record state of a container that has ended with `status`. */
export function exitedState(state: ContainerRecord['state'], status: ExitStatus, error?: string): ContainerRecord['state'] {
  const { paused: _paused, ...rest } = state;
  return {
    ...rest,
    status: 'exited',
    exitCode: status.exitCode,
    signal: status.signal,
    oomKilled: status.oomKilled ?? false,
    finishedAt: status.finishedAt,
    ...(error ? { error } : {}),
  };
}

/** Records a container's end: status file plus `exited` state. */
export async function finish(root: string, id: string, status: ExitStatus, error?: string): Promise<void> {
  await writeExitStatus(root, id, status).catch(() => {});
  await updateRecord(root, id, (r) => {
    r.state = { ...exitedState(r.state, status, error), pid: undefined };
  });
}
