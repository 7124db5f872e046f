/** Errors of the volume store, worded as Docker's daemon words them. */
import { ImgbuildError } from '../errors.js';

export class VolumeNotFoundError extends ImgbuildError {
  constructor(readonly volume: string) {
    super('NOT_FOUND', `no such volume: ${volume}`);
    this.name = 'VolumeNotFoundError';
  }
}

/** `volume rm` of a volume a container uses (moby: `remove NAME: volume is in use - [ids]`). */
export class VolumeInUseError extends ImgbuildError {
  constructor(readonly volume: string, readonly users: string[]) {
    super('FAILED_PRECONDITION', `remove ${volume}: volume is in use - [${users.join(' ')}]`);
    this.name = 'VolumeInUseError';
  }
}
