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
/** Statuses after which a retry can succeed. */
const TEMPORARY_STATUS = new Set<number>([408, 429, 500, 502, 503, 504]);

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

  constructor(
    readonly status: number,
    readonly diagnostics: Diagnostic[],
    readonly what: string,
    options?: { cause?: unknown; body?: string },
  ) {
    const codes = diagnostics.map((d) => d.code);
    const detail = diagnostics.length
      ? diagnostics.map((d) => `${d.code}${d.message ? `: ${d.message}` : ''}${d.detail !== undefined && d.detail !== null ? ` (${JSON.stringify(d.detail)})` : ''}`).join('; ')
      : (options?.body?.trim().slice(0, 200) || 'no error details');
    super(category(status, codes), `${what}: HTTP ${status}: ${detail}`, options);
    this.name = 'RegistryError';
    this.codes = codes;
    this.temporary = TEMPORARY_STATUS.has(status) || codes.some((c) => TEMPORARY_CODES.has(c));
  }
}

/** Authentication failed or was refused; names the realm (token server or Basic realm) involved. */
export class AuthError extends RegistryError {
  constructor(
    status: number,
    diagnostics: Diagnostic[],
    what: string,
    readonly realm: string | undefined,
    options?: { cause?: unknown; body?: string },
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
