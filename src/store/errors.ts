import { ImgbuildError } from '../errors.js';

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
