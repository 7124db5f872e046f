import { describe, expect, it } from 'vitest';
import { ImgbuildError, NotFoundError, InvalidArgumentError, fromSystemError, isImgbuildError } from '../src/errors.js';

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

describe('fromSystemError', () => {
  it('gives a Node system error its code and one line without the errno prefix', async () => {
    const { readFile, rename } = await import('node:fs/promises');
    const missing = await readFile('/nonexistent-imgbuild/x').catch((e: unknown) => e);
    const nf = fromSystemError(missing)!;
    expect(nf.code).toBe('NOT_FOUND');
    expect(nf.message).toBe('open /nonexistent-imgbuild/x: no such file or directory');
    expect(nf.cause).toBe(missing);
    const isDir = fromSystemError(await readFile('/').catch((e: unknown) => e))!;
    expect(isDir.code).toBe('INVALID_ARGUMENT');
    expect(isDir.message).toBe('read: illegal operation on a directory');
    const both = fromSystemError(await rename('/nonexistent-imgbuild/a', '/nonexistent-imgbuild/b').catch((e: unknown) => e))!;
    expect(both.message).toBe('rename /nonexistent-imgbuild/a -> /nonexistent-imgbuild/b: no such file or directory');
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', syscall: 'connect' });
    expect(fromSystemError(refused)).toMatchObject({ code: 'UNAVAILABLE', message: 'connect ECONNREFUSED 127.0.0.1:1' });
    expect(fromSystemError(Object.assign(new Error('x'), { name: 'AbortError', code: 'ABORT_ERR' }))?.code).toBe('ABORTED');
  });
  it('leaves everything else alone', () => {
    expect(fromSystemError(new Error('plain'))).toBeUndefined();
    expect(fromSystemError(new TypeError('bad'))).toBeUndefined();
    expect(fromSystemError('text')).toBeUndefined();
    expect(fromSystemError(undefined)).toBeUndefined();
  });
});
