import { ImgbuildError } from '../errors.js';

export class InvalidDigestError extends ImgbuildError {
  constructor(readonly value: string, reason: string) {
    super('INVALID_ARGUMENT', `invalid digest ${JSON.stringify(value)}: ${reason}`);
    this.name = 'InvalidDigestError';
  }
}

export class DigestMismatchError extends ImgbuildError {
  constructor(readonly expected: string, readonly actual: string, readonly size: number, what = 'content') {
    super('FAILED_PRECONDITION', `${what} digest mismatch: expected ${expected}, got ${actual} (${size} bytes)`);
    this.name = 'DigestMismatchError';
  }
}

export class SizeMismatchError extends ImgbuildError {
  constructor(readonly expected: number, readonly actual: number, readonly digest: string) {
    super('FAILED_PRECONDITION', `size mismatch for ${digest}: expected ${expected} bytes, got ${actual}`);
    this.name = 'SizeMismatchError';
  }
}

export class UnsupportedMediaTypeError extends ImgbuildError {
  constructor(readonly mediaType: string, what = 'media type') {
    super('NOT_IMPLEMENTED', `unsupported ${what} ${JSON.stringify(mediaType)}`);
    this.name = 'UnsupportedMediaTypeError';
  }
}

export class InvalidReferenceError extends ImgbuildError {
  constructor(readonly reference: string, reason: string) {
    super('INVALID_ARGUMENT', `invalid reference format ${JSON.stringify(reference)}: ${reason}`);
    this.name = 'InvalidReferenceError';
  }
}

export class InvalidManifestError extends ImgbuildError {
  constructor(readonly digest: string, reason: string) {
    super('FAILED_PRECONDITION', `invalid manifest ${digest}: ${reason}`);
    this.name = 'InvalidManifestError';
  }
}
