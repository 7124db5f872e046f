/**
 * The error base of the whole project. Every error imgbuild throws on purpose is an
 * ImgbuildError carrying one of a closed set of category codes (containerd errdefs style);
 * domain subclasses add structured fields next to the code that throws them.
 * Only src/cli/main.ts turns these into text and an exit status.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'UNAUTHORIZED'
  | 'PERMISSION_DENIED'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL'
  | 'ABORTED';

const BRAND = Symbol.for('imgbuild.error');

export class ImgbuildError extends Error {
  readonly code: ErrorCode;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ImgbuildError';
  }

  /**
   * Branded so that errors from a second copy of the module are still recognised. Only the base
   * class answers by brand; subclasses keep ordinary prototype checks (the static is inherited).
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    if (this !== ImgbuildError) return Function.prototype[Symbol.hasInstance].call(this, v);
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
  }
}

export function isImgbuildError(e: unknown): e is ImgbuildError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/** Thrown to leave the CLI quietly with a given status (e.g. `run` passing on the app's exit code). */
export class ExitError extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitError';
  }
}

export class NotFoundError extends ImgbuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
    this.name = 'NotFoundError';
  }
}

export class InvalidArgumentError extends ImgbuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
    this.name = 'InvalidArgumentError';
  }
}

export class AbortedError extends ImgbuildError {
  constructor(message = 'operation aborted', options?: { cause?: unknown }) {
    super('ABORTED', message, options);
    this.name = 'AbortedError';
  }
}

/** Throws AbortedError when the signal has fired; call between units of work. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
}

/** What an errno name means in the codes above (containerd's errdefs map them alike). */
const ERRNO_CODES: Readonly<Record<string, ErrorCode>> = {
  ENOENT: 'NOT_FOUND', ENOTFOUND: 'NOT_FOUND', ESRCH: 'NOT_FOUND', ENXIO: 'NOT_FOUND', ENODEV: 'NOT_FOUND',
  EEXIST: 'ALREADY_EXISTS',
  ENOTDIR: 'INVALID_ARGUMENT', EISDIR: 'INVALID_ARGUMENT', EINVAL: 'INVALID_ARGUMENT', ELOOP: 'INVALID_ARGUMENT',
  ENAMETOOLONG: 'INVALID_ARGUMENT', EXDEV: 'INVALID_ARGUMENT', EBADF: 'INVALID_ARGUMENT',
  EACCES: 'PERMISSION_DENIED', EPERM: 'PERMISSION_DENIED', EROFS: 'PERMISSION_DENIED',
  ENOTEMPTY: 'FAILED_PRECONDITION', EBUSY: 'FAILED_PRECONDITION', ETXTBSY: 'FAILED_PRECONDITION',
  ENOSPC: 'UNAVAILABLE', EDQUOT: 'UNAVAILABLE', EMFILE: 'UNAVAILABLE', ENFILE: 'UNAVAILABLE', ENOMEM: 'UNAVAILABLE',
  EIO: 'UNAVAILABLE', EAGAIN: 'UNAVAILABLE', ECONNREFUSED: 'UNAVAILABLE', ECONNRESET: 'UNAVAILABLE',
  ETIMEDOUT: 'UNAVAILABLE', EPIPE: 'UNAVAILABLE', EHOSTUNREACH: 'UNAVAILABLE', ENETUNREACH: 'UNAVAILABLE', EAI_AGAIN: 'UNAVAILABLE',
  ENOSYS: 'NOT_IMPLEMENTED', EOPNOTSUPP: 'NOT_IMPLEMENTED', ENOTSUP: 'NOT_IMPLEMENTED',
};

/**
 * A Node system error (from fs, net or child_process: it has an errno `code` and a `syscall`) as
 * an ImgbuildError with the matching code, or an abort as AbortedError; undefined for anything
 * else. Node's message repeats the errno name (`ENOENT: no such file or directory, open '/x'`);
 * the result reads `open /x: no such file or directory`.
 */
export function fromSystemError(e: unknown): ImgbuildError | undefined {
  const err = e as (NodeJS.ErrnoException & { dest?: string }) | null | undefined;
  if (typeof err !== 'object' || err === null) return undefined;
  if (err.name === 'AbortError' || err.code === 'ABORT_ERR') return new AbortedError('operation aborted', { cause: e });
  if (typeof err.code !== 'string' || typeof err.syscall !== 'string' || typeof err.message !== 'string') return undefined;
  let message = err.message.startsWith(`${err.code}: `) ? err.message.slice(err.code.length + 2) : err.message;
  const tail = `, ${err.syscall}${err.path !== undefined ? ` '${err.path}'` : ''}${err.dest !== undefined ? ` -> '${err.dest}'` : ''}`;
  if (message.endsWith(tail)) {
    const what = [err.syscall, err.path, err.dest !== undefined ? `-> ${err.dest}` : undefined].filter((x) => x !== undefined).join(' ');
    message = `${what}: ${message.slice(0, -tail.length)}`;
  }
  return new ImgbuildError(ERRNO_CODES[err.code] ?? 'FAILED_PRECONDITION', message, { cause: e });
}
