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

/** The store's directory cannot be made or written by this user (a rootless user's `$XDG_DATA_HOME/imgbuild` in a directory it does not own). */
export class StoreNotWritableError extends ImgbuildError {
  /** Said instead of PERMISSION_DENIED's general hint (run as root), which is not the fix here. */
  readonly hint = 'choose a directory this user may write with --root or XDG_DATA_HOME, or give it to the user (chown)';
  constructor(readonly root: string, readonly blocked: string, options?: { cause?: unknown }) {
    super('PERMISSION_DENIED', `the store directory ${root} is not writable: ${blocked === root ? 'it is' : `${blocked} is`} not writable by this user`, options);
    this.name = 'StoreNotWritableError';
  }
}

/**
 * A build layer kept unwritten (lazy.ts) whose snapshot no longer packs to the recorded diffID:
 * the snapshot's files changed (edited by hand, or lost to a crash before the kernel wrote them).
 */
export class LazyLayerChangedError extends ImgbuildError {
  constructor(readonly digest: string, readonly dir: string, detail: string) {
    super('FAILED_PRECONDITION', `layer ${digest} no longer matches its build snapshot ${dir} (${detail}): the image is damaged, build it again`);
    this.name = 'LazyLayerChangedError';
  }
}

/** A build layer kept unwritten whose snapshot is gone: nothing can make its blob any more. */
export class LazyLayerGoneError extends ImgbuildError {
  constructor(readonly digest: string, readonly dir: string) {
    super('NOT_FOUND', `layer ${digest} was never written as a blob and its build snapshot ${dir} is gone: the image is damaged, build it again`);
    this.name = 'LazyLayerGoneError';
  }
}
