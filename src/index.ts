/**
 * imgbuild as a library: the store and its images, building, pulling and pushing, running
 * containers, saving and loading archives, and the typed errors (each with a stable `code`). The
 * CLI is built on these same functions. Everything not exported here is internal.
 */

// Errors: every deliberate failure is an ImgbuildError with one of the ErrorCode categories.
export { ImgbuildError, isImgbuildError, NotFoundError, InvalidArgumentError, AbortedError, type ErrorCode } from './errors.js';
export { ImageNotFoundError, CorruptStoreError, StoreVersionError } from './store/errors.js';
export { InvalidReferenceError, DigestMismatchError } from './image/errors.js';
export { PlatformNotFoundError } from './image/platform.js';
export {
  ContainerNotFoundError,
  ContainerStartError,
  ContainerStateError,
  NameInUseError,
  ImageInUseError,
  ImageConflictError,
} from './containers/errors.js';
export { BuildError, DockerfileSyntaxError } from './builder/errors.js';
export { RegistryError, AuthError } from './registry/errors.js';
export { InvalidArchiveError } from './archive/archive.js';

// The store and its images.
export { OciStore, defaultRoot, type IndexEntry } from './store/store.js';
export { findImage, listImages, loadImage, type ListedImage } from './store/images.js';
export { imageId, imageSize, type LoadedImage } from './image/model.js';
export { parseReference, formatReference, familiarReference, type Reference } from './image/reference.js';
export type { Descriptor, ImageConfig, Platform } from './image/types.js';
export type { Digest } from './image/digest.js';

// Building, registries, archives.
export { build, type BuildOptions, type BuildResult } from './builder/build.js';
export { parseCacheFrom, parseCacheTo, type CacheExport, type CacheImport, type CacheLocation } from './builder/remote-cache/options.js';
export { checkDockerfile, type CheckOptions, type CheckResult } from './builder/check.js';
export { lintDockerfile, LintViolationError, type LintOptions, type LintResult, type LintWarning } from './builder/lint/lint.js';
export { pullImage, pushImage, Keychain, type PullOptions, type PushOptions } from './registry/index.js';
export { loadArchive, writeArchive, writeArchiveFile, type ArchiveImage, type LoadedArchiveImage } from './archive/archive.js';
export { importRootfs, type ImportOptions } from './archive/rootfs.js';

// Containers.
export { createContainer, type CreateOptions } from './containers/create.js';
export { runContainer, type RunOptions, type RunResult } from './containers/run.js';
export { startContainer } from './containers/start.js';
export { execContainer, type ExecOptions } from './containers/exec.js';
export { getContainer } from './containers/state.js';
export { listContainers, pruneContainers } from './containers/list.js';
export { inspectContainer } from './containers/inspect.js';
export { killContainer, stopContainer, waitContainer } from './containers/stop.js';
export { removeContainer } from './containers/remove.js';
export { pruneLeftovers, type Leftovers } from './containers/leftovers.js';
export { streamLogs } from './containers/logs.js';
export { commitContainer, type CommitOptions } from './containers/commit.js';
export { imageUsers, removeImages, pruneImages, type ImageRemoval, type PrunedImage } from './containers/images.js';
export type { ContainerRecord, ContainerStatus, ExitStatus } from './containers/record.js';
export type { LifecycleOptions, RunIO } from './containers/types.js';
