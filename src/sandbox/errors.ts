/**
 * Errors of the sandbox. A status record from the native helper becomes a SandboxError that
 * keeps the stage, the errno (number and name) and the failing syscall.
 */
import { constants } from 'node:os';
import { ImgbuildError, type ErrorCode } from '../errors.js';

export type SandboxStage = 'parent' | 'child' | 'init';

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, n]) => [n, name] as [number, string]),
);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

function category(errnoCode: string): ErrorCode {
  switch (errnoCode) {
    case 'ENOENT':
    case 'ESRCH':
      return 'NOT_FOUND';
    case 'EPERM':
    case 'EACCES':
    case 'EROFS':
      return 'PERMISSION_DENIED';
    case 'EINVAL':
    case 'ENOTDIR':
    case 'ENAMETOOLONG':
    case 'E2BIG':
      return 'INVALID_ARGUMENT';
    case 'EEXIST':
      return 'ALREADY_EXISTS';
    case 'ENOSYS':
    case 'EOPNOTSUPP':
      return 'NOT_IMPLEMENTED';
    default:
      return 'INTERNAL';
  }
}

/**
 * The sandbox could not be set up (or the program not exec'd). `code` is the error category;
 * `errnoCode` is the errno name (`ENOENT`), `syscall` the call that failed (`mount`, `execve`).
 */
export class SandboxError extends ImgbuildError {
  readonly stage: SandboxStage;
  readonly errno: number;
  readonly errnoCode: string;
  readonly syscall: string;
  readonly detail: string;

  constructor(o: { stage: SandboxStage; errno: number; syscall: string; detail: string }) {
    const errnoCode = errnoName(o.errno);
    super(category(errnoCode), `sandbox ${o.stage}: ${o.syscall}: ${o.detail ? `${o.detail}: ` : ''}${errnoCode}`);
    this.name = 'SandboxError';
    this.stage = o.stage;
    this.errno = o.errno;
    this.errnoCode = errnoCode;
    this.syscall = o.syscall;
    this.detail = o.detail;
  }
}

/** The sandboxed process ran but failed (for callers that treat a non-zero exit as an error). */
export class SandboxExitError extends ImgbuildError {
  constructor(
    readonly exitCode: number,
    readonly signal?: NodeJS.Signals,
    what = 'process',
  ) {
    super('FAILED_PRECONDITION', signal ? `${what} killed by ${signal}` : `${what} exited with status ${exitCode}`);
    this.name = 'SandboxExitError';
  }
}
