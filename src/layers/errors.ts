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

export class UnsafePathError extends ImgbuildError {
  constructor(readonly entry: string, readonly root: string, reason: string) {
    super('PERMISSION_DENIED', `refused tar entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'UnsafePathError';
  }
}

export class InvalidWhiteoutError extends ImgbuildError {
  constructor(readonly entry: string, reason: string) {
    super('INVALID_ARGUMENT', `invalid whiteout ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'InvalidWhiteoutError';
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

export class ImageNotFoundError extends ImgbuildError {
  constructor(readonly reference: string) {
    super('NOT_FOUND', `image not found: ${reference}`);
    this.name = 'ImageNotFoundError';
  }
}

export class BlobNotFoundError extends ImgbuildError {
  constructor(readonly digest: string) {
    super('NOT_FOUND', `blob not found in store: ${digest}`);
    this.name = 'BlobNotFoundError';
  }
}

export class StoreVersionError extends ImgbuildError {
  constructor(readonly root: string, readonly found: number, readonly supported: number) {
    super(
      'FAILED_PRECONDITION',
      `store at ${root} has format version ${found}, newer than this imgbuild supports (${supported}); upgrade imgbuild`,
    );
    this.name = 'StoreVersionError';
  }
}

export class CorruptStoreError extends ImgbuildError {
  constructor(readonly path: string, reason: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', `corrupt store file ${path}: ${reason}`, options);
    this.name = 'CorruptStoreError';
  }
}
