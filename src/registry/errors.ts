/**
 * Registry errors. A registry answers failures with an HTTP status and a JSON body
 * `{"errors":[{"code","message","detail"}]}` (distribution-spec "Error Codes"); RegistryError keeps
 * both, maps them onto imgbuild's error categories, and says whether trying again may help
 * (ggcr transport.Error.Temporary).
 */
import { ImgbuildError, type ErrorCode } from '../errors.js';

/** The distribution-spec error codes plus the ones Docker registries add (ggcr transport.ErrorCode). */
export const OCI_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  'UNKNOWN',
  'UNAVAILABLE',
] as const;

export type OciErrorCode = (typeof OCI_ERROR_CODES)[number] | (string & {});

export interface Diagnostic {
  code: OciErrorCode;
  message?: string;
  detail?: unknown;
}

/** Codes after which a retry can succeed (ggcr temporaryErrorCodes). */
const TEMPORARY_CODES = new Set<string>(['BLOB_UPLOAD_INVALID', 'TOOMANYREQUESTS', 'UNKNOWN', 'UNAVAILABLE']);
/** Answers that another attempt will not change. */
const FINAL_STATUS = new Set<number>([401, 403, 404]);

/**
 * Statuses after which a retry can succeed: a timeout, too many requests, and server failures
 * except 501 and 505 (the server will never do it).
 */
export function isTemporaryStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

function category(status: number, codes: readonly string[]): ErrorCode {
  if (codes.includes('UNAUTHORIZED') || status === 401) return 'UNAUTHORIZED';
  if (codes.includes('DENIED') || status === 403) return 'PERMISSION_DENIED';
  if (codes.some((c) => c === 'MANIFEST_UNKNOWN' || c === 'BLOB_UNKNOWN' || c === 'NAME_UNKNOWN') || status === 404) return 'NOT_FOUND';
  if (codes.includes('UNSUPPORTED') || status === 405 || status === 501) return 'NOT_IMPLEMENTED';
  if (status === 429 || status >= 500 || codes.includes('TOOMANYREQUESTS') || codes.includes('UNAVAILABLE')) return 'UNAVAILABLE';
  if (codes.some((c) => c.endsWith('_INVALID')) || status === 400) return 'INVALID_ARGUMENT';
  return 'FAILED_PRECONDITION';
}

/** Parses a registry error body; tolerant of non-JSON bodies (proxies, load balancers). */
export function parseDiagnostics(body: string): Diagnostic[] {
  if (!body) return [];
  try {
    const doc = JSON.parse(body) as { errors?: unknown; details?: unknown };
    if (Array.isArray(doc.errors)) {
      return doc.errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .map((e) => ({
          code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
          ...(typeof e.message === 'string' ? { message: e.message } : {}),
          ...(e.detail !== undefined ? { detail: e.detail } : {}),
        }));
    }
  } catch {
    /* not JSON: fall through */
  }
  return [];
}

export class RegistryError extends ImgbuildError {
  readonly codes: OciErrorCode[];
  readonly temporary: boolean;
  /** How long the registry asked us to wait before trying again (Retry-After), in ms. */
  readonly retryAfter: number | undefined;

  constructor(
    readonly status: number,
    readonly diagnostics: Diagnostic[],
    readonly what: string,
    options?: { cause?: unknown; body?: string; retryAfter?: number | undefined },
  ) {
    const codes = diagnostics.map((d) => d.code);
    const detail = diagnostics.length
      ? diagnostics.map((d) => `${d.code}${d.message ? `: ${d.message}` : ''}${d.detail !== undefined && d.detail !== null ? ` (${JSON.stringify(d.detail)})` : ''}`).join('; ')
      : (options?.body?.trim().slice(0, 200) || 'no error details');
    super(category(status, codes), `${what}: HTTP ${status}: ${detail}`, options);
    this.name = 'RegistryError';
    this.codes = codes;
    // By the status, or by codes that are all temporary (ggcr's Error.Temporary); never an
    // authentication, permission or not-found answer, whatever code it carries.
    this.temporary = isTemporaryStatus(status)
      || (!FINAL_STATUS.has(status) && codes.length > 0 && codes.every((c) => TEMPORARY_CODES.has(c)));
    this.retryAfter = options?.retryAfter;
  }
}

/** Authentication failed or was refused; names the realm (token server or Basic realm) involved. */
export class AuthError extends RegistryError {
  constructor(
    status: number,
    diagnostics: Diagnostic[],
    what: string,
    readonly realm: string | undefined,
    options?: { cause?: unknown; body?: string; retryAfter?: number | undefined },
  ) {
    super(status, diagnostics, `${what}${realm ? ` (realm ${realm})` : ''}`, options);
    this.name = 'AuthError';
  }
}

/** The registry spoke something that is not the distribution protocol (bad Location, huge manifest...). */
export class ProtocolError extends ImgbuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
    this.name = 'ProtocolError';
  }
}

/** A credential helper program (`docker-credential-<x>`) failed. */
export class CredentialHelperError extends ImgbuildError {
  constructor(readonly helper: string, message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', `credential helper docker-credential-${helper}: ${message}`, options);
    this.name = 'CredentialHelperError';
  }
}

/** Network-level failure after all retries (connection refused, reset, TLS). */
export class TransportError extends ImgbuildError {
  constructor(readonly url: string, message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', `${url}: ${message}`, options);
    this.name = 'TransportError';
  }
}

/** A network failure and its causes in one line (`ECONNRESET: read ECONNRESET: ...`). */
export function describeNetworkError(e: unknown): string {
  if (!e) return 'unknown error';
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    const err = cur as { code?: unknown; message?: unknown; cause?: unknown };
    const msg = typeof err.message === 'string' ? err.message : String(cur);
    const code = typeof err.code === 'string' ? err.code : undefined;
    const s = code && !msg.includes(code) ? `${code}: ${msg}` : msg;
    if (!parts.includes(s)) parts.push(s);
    cur = err.cause;
  }
  return parts.join(': ');
}
