import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { parseDigest, digestOf, HashingTransform, createHasher, isDigest } from '../../src/image/digest.js';
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
