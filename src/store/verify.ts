/**
 * A pass-through stream that checks size and digest of what flows through it and fails at EOF
 * (or as soon as the size is exceeded) with a typed error, so no caller ever consumes unverified
 * bytes as if they were good (ggcr verify.ReadCloser).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { algorithmOf, createHasher, type Digest, type Hasher } from '../image/digest.js';
import { DigestMismatchError, SizeMismatchError } from '../image/errors.js';

export class VerifyingStream extends Transform {
  private readonly hasher: Hasher;
  private n = 0;

  /**
   * size < 0 means unknown (only the digest is checked). `mismatch` makes the error of any
   * mismatch instead of the size and digest errors: `actual` is undefined when more bytes came
   * than `size`, else the digest of the `bytes` that came.
   */
  constructor(
    private readonly expected: Digest,
    private readonly size: number,
    private readonly mismatch?: (actual: Digest | undefined, bytes: number) => Error,
  ) {
    super();
    this.hasher = createHasher(algorithmOf(expected));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    if (this.size >= 0 && this.n > this.size) {
      cb(this.mismatch ? this.mismatch(undefined, this.n) : new SizeMismatchError(this.size, this.n, this.expected));
      return;
    }
    this.hasher.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.mismatch) {
      const actual = this.hasher.digest();
      cb(actual !== this.expected || (this.size >= 0 && this.n !== this.size) ? this.mismatch(actual, this.n) : undefined);
      return;
    }
    if (this.size >= 0 && this.n !== this.size) {
      cb(new SizeMismatchError(this.size, this.n, this.expected));
      return;
    }
    const actual = this.hasher.digest();
    if (actual !== this.expected) {
      cb(new DigestMismatchError(this.expected, actual, this.n));
      return;
    }
    cb();
  }
}
