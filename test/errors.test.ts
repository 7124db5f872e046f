import { describe, expect, it } from 'vitest';
import { ImgbuildError, NotFoundError, InvalidArgumentError, isImgbuildError } from '../src/errors.js';

describe('ImgbuildError', () => {
  it('recognises any imgbuild error by brand, and subclasses by prototype', () => {
    const nf = new NotFoundError('x');
    expect(nf instanceof ImgbuildError).toBe(true);
    expect(nf instanceof NotFoundError).toBe(true);
    expect(nf instanceof InvalidArgumentError).toBe(false);
    expect(isImgbuildError(nf)).toBe(true);
    expect(nf.code).toBe('NOT_FOUND');
  });
  it('accepts a branded object from another copy of the module', () => {
    const foreign = Object.assign(new Error('x'), { [Symbol.for('imgbuild.error')]: true, code: 'INTERNAL' });
    expect(foreign instanceof ImgbuildError).toBe(true);
    expect(isImgbuildError(new Error('plain'))).toBe(false);
  });
});
