/**
 * Typed errors of the overlay snapshotter. Categories follow containerd errdefs: a missing
 * snapshot is NOT_FOUND, a key in use ALREADY_EXISTS, an operation the snapshot's kind or its
 * children forbid FAILED_PRECONDITION, a kernel without usable overlayfs NOT_IMPLEMENTED.
 */
import { ImgbuildError } from '../errors.js';
import type { ProbeResult } from './snapshotter.js';

export class SnapshotNotFoundError extends ImgbuildError {
  constructor(readonly key: string) {
    super('NOT_FOUND', `snapshot ${JSON.stringify(key)} not found`);
    this.name = 'SnapshotNotFoundError';
  }
}

export class SnapshotExistsError extends ImgbuildError {
  constructor(readonly key: string) {
    super('ALREADY_EXISTS', `snapshot ${JSON.stringify(key)} already exists`);
    this.name = 'SnapshotExistsError';
  }
}

export class SnapshotStateError extends ImgbuildError {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super('FAILED_PRECONDITION', `snapshot ${JSON.stringify(key)}: ${reason}`);
    this.name = 'SnapshotStateError';
  }
}

export class OverlayUnsupportedError extends ImgbuildError {
  constructor(
    readonly probe: ProbeResult,
    message = `overlayfs is not usable here: ${probe.reason ?? 'unknown reason'}`,
  ) {
    super('NOT_IMPLEMENTED', message);
    this.name = 'OverlayUnsupportedError';
  }
}

/** A mount(8)/umount(8) invocation failed; carries the command's exit status and stderr. */
export class MountError extends ImgbuildError {
  constructor(
    readonly target: string,
    readonly status: number | null,
    readonly stderr: string,
    what = 'mount',
  ) {
    // One line: mount(8) adds a line pointing at dmesg, which says nothing about the failure.
    const said = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('dmesg(1) may have more information'));
    super('INTERNAL', `${what} ${target} failed (status ${status}): ${said.join('; ') || 'no message'}`);
    this.name = 'MountError';
  }
}
