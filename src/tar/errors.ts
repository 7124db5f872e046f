import { ImgbuildError } from '../errors.js';

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
