/**
 * The retry policy every registry request goes through (src/registry/retry.ts): what is retried,
 * how many times, how long it waits, and that progress between failures earns fresh attempts.
 * The registry-level behaviour (Range resume, Retry-After on a real 429) is in faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { RetryPolicy, isRetryable, retryAfterMs } from '../../src/registry/retry.js';
import { AuthError, RegistryError, TransportError } from '../../src/registry/errors.js';
import { AbortedError } from '../../src/errors.js';

const quick = new RetryPolicy({ attempts: 4, baseDelay: 1, maxDelay: 5 });

function reset(): Error {
  return Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
}

/** Runs `fail` under the policy and counts the attempts it got. */
async function attemptsFor(fail: (attempt: number) => unknown, policy = quick): Promise<{ attempts: number; err: unknown }> {
  let attempts = 0;
  const err = await policy
    .run(async (n) => {
      attempts = n;
      throw fail(n);
    })
    .catch((e: unknown) => e);
  return { attempts, err };
}

describe('what is retried', () => {
  it('connection failures, also wrapped in a TransportError', () => {
    expect(isRetryable(reset())).toBe(true);
    expect(isRetryable(new TransportError('http://x/', 'broke', { cause: reset() }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }))).toBe(true);
    // a certificate the host refuses stays refused
    expect(isRetryable(new TransportError('https://x/', 'bad cert', { cause: Object.assign(new Error('x'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }) }))).toBe(false);
  });

  it('429, 408 and server failures, but not 501 or 505', () => {
    for (const s of [408, 429, 500, 502, 503, 504, 507]) expect(isRetryable(new RegistryError(s, [], 'x')), String(s)).toBe(true);
    for (const s of [501, 505]) expect(isRetryable(new RegistryError(s, [], 'x')), String(s)).toBe(false);
  });

  it('never 401, 403 or 404, whatever code the body carries', () => {
    for (const s of [401, 403, 404]) {
      expect(isRetryable(new RegistryError(s, [{ code: 'UNKNOWN' }], 'x')), String(s)).toBe(false);
      expect(isRetryable(new RegistryError(s, [{ code: 'TOOMANYREQUESTS' }], 'x')), String(s)).toBe(false);
    }
    expect(isRetryable(new AuthError(401, [], 'x', 'realm'))).toBe(false);
  });

  it('another 4xx only when every code it carries is temporary', () => {
    expect(isRetryable(new RegistryError(400, [{ code: 'BLOB_UPLOAD_INVALID' }], 'x'))).toBe(true);
    expect(isRetryable(new RegistryError(400, [{ code: 'BLOB_UPLOAD_INVALID' }, { code: 'DIGEST_INVALID' }], 'x'))).toBe(false);
    expect(isRetryable(new RegistryError(400, [], 'x'))).toBe(false);
  });

  it('not an abort, nor an error of ours', () => {
    expect(isRetryable(new AbortedError())).toBe(false);
    expect(isRetryable(new Error('bug'))).toBe(false);
  });
});

describe('attempts', () => {
  it('a retryable failure is tried `attempts` times, and the last failure is thrown', async () => {
    const errors: Error[] = [];
    const { attempts, err } = await attemptsFor(() => {
      const e = reset();
      errors.push(e);
      return e;
    });
    expect(attempts).toBe(4);
    expect(err).toBe(errors[3]);
  });

  it('a final failure is thrown at once', async () => {
    const { attempts, err } = await attemptsFor(() => new RegistryError(404, [{ code: 'MANIFEST_UNKNOWN' }], 'GET manifest'));
    expect(attempts).toBe(1);
    expect((err as RegistryError).status).toBe(404);
  });

  it('attempts: 1 turns retries off', async () => {
    let n = 0;
    await quick.run(async () => { n++; throw reset(); }, { attempts: 1 }).catch(() => {});
    expect(n).toBe(1);
  });

  it('progress between failures earns fresh attempts; failures without it use them up', async () => {
    let done = 0; // a transfer of 10 units that gets 1 unit further before each of its first 9 failures
    let startedAt = 0;
    const retries: number[] = [];
    const result = await quick.run(
      async () => {
        startedAt = done;
        if (done < 10) {
          done++;
          throw reset();
        }
        return 'complete';
      },
      { progressed: () => done > startedAt, onRetry: (_e, attempt) => { retries.push(attempt); } },
    );
    expect(result).toBe('complete');
    expect(retries.length).toBe(10); // more than the 4 attempts, as each failure made progress
    let stuck = 0;
    const { attempts } = await attemptsFor(() => { stuck++; return reset(); });
    expect(attempts).toBe(4);
    expect(stuck).toBe(4);
  });

  it('an abort during the wait ends the retries with ABORTED', async () => {
    const slow = new RetryPolicy({ attempts: 5, baseDelay: 10_000, maxDelay: 10_000 });
    const ac = new AbortController();
    const p = slow.run(async () => { throw reset(); }, { signal: ac.signal, onRetry: () => { ac.abort(); } });
    await expect(p).rejects.toBeInstanceOf(AbortedError);
  });
});

describe('waits', () => {
  it('back off exponentially with jitter, up to maxDelay', () => {
    const p = new RetryPolicy({ attempts: 10, baseDelay: 100, maxDelay: 1000 });
    for (let i = 0; i < 50; i++) {
      const d1 = p.backoff(1);
      expect(d1).toBeGreaterThanOrEqual(50);
      expect(d1).toBeLessThanOrEqual(150);
      const d3 = p.backoff(3);
      expect(d3).toBeGreaterThanOrEqual(200);
      expect(d3).toBeLessThanOrEqual(600);
      expect(p.backoff(9)).toBeLessThanOrEqual(1500);
      expect(p.backoff(9)).toBeGreaterThanOrEqual(500);
    }
  });

  it("honour the server's Retry-After, within maxDelay", () => {
    const p = new RetryPolicy({ attempts: 4, baseDelay: 1, maxDelay: 5000 });
    expect(p.delay(new RegistryError(429, [], 'x', { retryAfter: 2000 }), 1)).toBe(2000);
    expect(p.delay(new RegistryError(503, [], 'x', { retryAfter: 60_000 }), 1)).toBe(5000);
    expect(p.delay(new RegistryError(503, [], 'x'), 1)).toBeLessThanOrEqual(2);
  });

  it('Retry-After is read as seconds or as an HTTP date', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(retryAfterMs('1', now)).toBe(1000);
    expect(retryAfterMs('0', now)).toBe(0);
    expect(retryAfterMs('Mon, 01 Jan 2024 00:00:03 GMT', now)).toBe(3000);
    expect(retryAfterMs('Sun, 31 Dec 2023 23:00:00 GMT', now)).toBe(0); // in the past: at once
    expect(retryAfterMs(undefined, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('', now)).toBeUndefined();
  });
});
