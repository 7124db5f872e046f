/** Errors of the container lifecycle, with the container they concern. */
import { ImgbuildError } from '../errors.js';

export class ContainerNotFoundError extends ImgbuildError {
  constructor(readonly nameOrId: string) {
    super('NOT_FOUND', `no such container: ${nameOrId}`);
    this.name = 'ContainerNotFoundError';
  }
}

export class AmbiguousContainerError extends ImgbuildError {
  constructor(readonly prefix: string, readonly matches: string[]) {
    super('INVALID_ARGUMENT', `container id prefix ${prefix} matches ${matches.length} containers: ${matches.map((m) => m.slice(0, 12)).join(', ')}`);
    this.name = 'AmbiguousContainerError';
  }
}

export class NameInUseError extends ImgbuildError {
  constructor(readonly containerName: string, readonly owner: string) {
    super('ALREADY_EXISTS', `the container name "${containerName}" is already in use by container ${owner.slice(0, 12)}; remove or rename that container first`);
    this.name = 'NameInUseError';
  }
}

export class ContainerStateError extends ImgbuildError {
  constructor(readonly id: string, message: string) {
    super('FAILED_PRECONDITION', message);
    this.name = 'ContainerStateError';
  }
}

/** A failure to start the container's process, with the status `run` exits with (125/126/127). */
export class ContainerStartError extends ImgbuildError {
  constructor(message: string, readonly exitCode: number, options?: { cause?: unknown }) {
    // The sandbox's own category (NOT_FOUND, PERMISSION_DENIED, ...) when it has one.
    const c = (options?.cause as { code?: unknown } | undefined)?.code;
    const known = ['NOT_FOUND', 'PERMISSION_DENIED', 'INVALID_ARGUMENT', 'ALREADY_EXISTS', 'NOT_IMPLEMENTED', 'UNAVAILABLE'];
    super(typeof c === 'string' && known.includes(c) ? (c as ImgbuildError['code']) : 'FAILED_PRECONDITION', message, options);
    this.name = 'ContainerStartError';
  }
}

/**
 * A container whose state.json is there but is not a complete record (an earlier version's
 * half-written one, a damaged file). It can still be removed by id; `process` is the creator or
 * watcher it names, when that much could be read.
 */
export class BrokenContainerError extends ImgbuildError {
  readonly process?: { pid: number; startTime?: string };
  constructor(readonly id: string, readonly reason: string, options?: { cause?: unknown; process?: { pid: number; startTime?: string } }) {
    const short = id.slice(0, 12);
    super('FAILED_PRECONDITION', `container ${short} has an unreadable record (${reason}); "imgbuild rm -f ${short}" or "imgbuild prune" removes it`, options);
    this.name = 'BrokenContainerError';
    if (options?.process) this.process = options.process;
  }
}

/** `rmi` of an image a container was created from, without force. */
export class ImageInUseError extends ImgbuildError {
  constructor(readonly image: string, readonly container: string, readonly id: string) {
    super('FAILED_PRECONDITION', `unable to remove ${image} (must force): container ${container.slice(0, 12)} is using its image ${id}`);
    this.name = 'ImageInUseError';
  }
}

/** `rmi` of an id that names several tags, without force. */
export class ImageConflictError extends ImgbuildError {
  constructor(readonly image: string, reason: string) {
    super('FAILED_PRECONDITION', `unable to delete ${image} (must be forced): ${reason}`);
    this.name = 'ImageConflictError';
  }
}
