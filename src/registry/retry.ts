/**
 * The one retry policy of every registry request (ggcr's retry transport and its IsTemporary
 * predicate): how many attempts, how long to wait between them, and which failures are worth
 * another one.
 *
 * Retryable: a dropped, reset or refused connection (the codes below), an answer the registry
 * calls temporary (408, 429, a 5xx other than 501 and 505, or a temporary distribution error code:
 * see RegistryError.temporary). Never another 4xx such as 401, 403 or 404: asking again gets the
 * same answer. The wait doubles per attempt from `baseDelay` with ±50% jitter, up to `maxDelay`; a
 * server's Retry-After is honoured instead, within the same cap. An operation that advances
 * between failures (a download resumed with Range, a chunked upload resumed where the registry got
 * to) counts its attempts afresh: only failures without progress use them up.
 */
import { AbortedError } from '../errors.js';
import { RegistryError, TransportError } from './errors.js';

export interface RetryOptions {
  /** Total attempts, including the first (default 5). */
  attempts: number;
  /** First backoff in ms (default 200); doubles per attempt, ±50% jitter. */
  baseDelay: number;
  /** Largest wait in ms, also caps Retry-After (default 10 s). */
  maxDelay: number;
}

export const DEFAULT_RETRY: Readonly<RetryOptions> = { attempts: 5, baseDelay: 200, maxDelay: 10_000 };

const RETRY_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** A network failure (its code, or a cause's) that another attempt may not meet. */
export function isRetryableNetworkError(e: unknown): boolean {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && RETRY_NETWORK_CODES.has(code)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether another attempt may succeed where this failure happened. */
export function isRetryable(e: unknown): boolean {
  if (e instanceof AbortedError) return false;
  if (e instanceof RegistryError) return e.temporary;
  if (e instanceof TransportError) return isRetryableNetworkError(e.cause);
  return isRetryableNetworkError(e);
}

/** A Retry-After header (seconds, or an HTTP date) in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const secs = Number(value);
  if (value.trim() !== '' && Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const when = Date.parse(value);
  return Number.isFinite(when) ? Math.max(0, when - now) : undefined;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('operation aborted', { cause: signal.reason }));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new AbortedError('operation aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryRun {
  signal?: AbortSignal | undefined;
  /** Attempts for this operation instead of the policy's (1: no retry). */
  attempts?: number;
  /** Which failures are worth another attempt (default isRetryable). */
  retryable?: (e: unknown) => boolean;
  /** Whether the operation advanced since the last failure: then the attempts count from one again. */
  progressed?: () => boolean | Promise<boolean>;
  /** Told of each failure that will be retried, before the wait (progress events). */
  onRetry?: (e: unknown, attempt: number, delay: number) => void | Promise<void>;
}

export class RetryPolicy implements RetryOptions {
  readonly attempts: number;
  readonly baseDelay: number;
  readonly maxDelay: number;

  constructor(o: Partial<RetryOptions> = {}) {
    ({ attempts: this.attempts, baseDelay: this.baseDelay, maxDelay: this.maxDelay } = { ...DEFAULT_RETRY, ...o });
  }

  /** The wait before attempt `attempt + 1`, without a word from the server. */
  backoff(attempt: number): number {
    const d = Math.min(this.maxDelay, this.baseDelay * 2 ** (attempt - 1));
    return Math.round(d * (0.5 + Math.random()));
  }

  /** The wait after failure `e` of attempt `attempt`: the server's Retry-After when it gave one. */
  delay(e: unknown, attempt: number): number {
    const ra = e instanceof RegistryError ? e.retryAfter : undefined;
    return ra !== undefined ? Math.min(this.maxDelay, ra) : this.backoff(attempt);
  }

  /** Runs `op` until it succeeds, fails for good, or has used its attempts; the last failure is thrown. */
  async run<T>(op: (attempt: number) => Promise<T>, o: RetryRun = {}): Promise<T> {
    const attempts = o.attempts ?? this.attempts;
    const retryable = o.retryable ?? isRetryable;
    for (let attempt = 1; ; attempt++) {
      try {
        return await op(attempt);
      } catch (e) {
        if (o.signal?.aborted || !retryable(e)) throw e;
        if (attempts > 1 && o.progressed && (await o.progressed())) attempt = 0;
        else if (attempt >= attempts) throw e;
        const delay = this.delay(e, Math.max(1, attempt));
        await o.onRetry?.(e, attempt, delay);
        await sleep(delay, o.signal);
      }
    }
  }
}
