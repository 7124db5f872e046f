import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseDigest, digestOf, HashingTransform, createHasher, isDigest, blake3Of } from '../../src/image/digest.js';
import { InvalidDigestError } from '../../src/image/errors.js';
import { isImgbuildError } from '../../src/errors.js';

const HEX = 'a'.repeat(64);

describe('parseDigest', () => {
  it('accepts lowercase sha256, sha512 and blake3 of the right length', () => {
    expect(parseDigest(`sha256:${HEX}`)).toBe(`sha256:${HEX}`);
    expect(parseDigest(`sha512:${'b'.repeat(128)}`)).toBe(`sha512:${'b'.repeat(128)}`);
    expect(parseDigest(`blake3:${HEX}`)).toBe(`blake3:${HEX}`);
  });
  it.each([
    ['no colon', HEX],
    ['unknown algorithm', `md5:${HEX}`],
    ['uppercase hex', `sha256:${'A'.repeat(64)}`],
    ['short hex', `sha256:${'a'.repeat(63)}`],
    ['non-hex', `sha256:${'g'.repeat(64)}`],
  ])('refuses %s with a typed error', (_what, s) => {
    let err: unknown;
    try {
      parseDigest(s);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidDigestError);
    expect(isImgbuildError(err) && err.code).toBe('INVALID_ARGUMENT');
    expect(isDigest(s)).toBe(false);
  });
});

describe('hashing', () => {
  it('sha256 matches node:crypto', () => {
    const data = Buffer.from('imgbuild');
    expect(digestOf(data)).toBe(`sha256:${createHash('sha256').update(data).digest('hex')}`);
  });
  it('blake3 matches the known vector for the empty input', () => {
    expect(digestOf(new Uint8Array(0), 'blake3')).toBe(
      'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    );
  });
  it('HashingTransform reports digest and size only after the stream ends', async () => {
    const t = new HashingTransform();
    expect(() => t.result()).toThrow();
    const chunks = [Buffer.from('ab'), Buffer.from('cd')];
    await pipeline(Readable.from(chunks), t, async function* (src) {
      for await (const _ of src) {
        // drain
      }
    });
    const h = createHasher();
    h.update(Buffer.from('abcd'));
    expect(t.result()).toEqual({ digest: h.digest(), size: 4 });
  });
});

describe('blake3Of', () => {
  // The BLAKE3 paper's test vector for the empty input.
  const EMPTY = 'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';

  it('gives the digest a fresh hasher gives, whatever was hashed before', () => {
    expect(blake3Of(new Uint8Array())).toBe(EMPTY);
    const inputs = [Buffer.from('a'), Buffer.alloc(100_000, 7), Buffer.from('abc').subarray(1), new Uint8Array([0, 1, 2])];
    for (const data of [...inputs, ...inputs.reverse()]) {
      const h = createHasher('blake3');
      h.update(data);
      expect(blake3Of(data)).toBe(h.digest());
    }
    expect(blake3Of(new Uint8Array())).toBe(EMPTY);
  });

  it('keeps no native memory per call: 100k calls in one synchronous loop add little to the RSS', () => {
    const anonKiB = (): number => Number(/RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    const data = Buffer.alloc(64, 1);
    blake3Of(data);
    const before = anonKiB();
    for (let i = 0; i < 100_000; i++) blake3Of(data);
    // A Buffer (or hasher) per call held about 35 MiB here until the collector finalised them.
    expect(anonKiB() - before).toBeLessThan(12 * 1024);
  });
});
