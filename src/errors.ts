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
