/**
 * Where the store lives, and the name of everything under its root (the layout is drawn in
 * docs/architecture.md, "The store root"). Every area names a path below the root through these
 * functions. Kept free of imports beyond node:path and node:os, so the CLI can resolve its root
 * without loading hashing or locking.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Resolves the store root: IMGBUILD_ROOT, then /var/lib/imgbuild for root, then the XDG data dir. */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMGBUILD_ROOT) return env.IMGBUILD_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/imgbuild';
  const xdg = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(xdg, 'imgbuild');
}

// The OCI image layout.

/** `<root>/oci-layout` */
export const layoutFile = (root: string): string => join(root, 'oci-layout');
/** `<root>/index.json`: the tags; also the path of the store's lock. */
export const indexFile = (root: string): string => join(root, 'index.json');
/** `<root>/blobs` */
export const blobsDir = (root: string): string => join(root, 'blobs');
/** `<root>/blobs/<alg>` */
export const blobAlgDir = (root: string, alg: string): string => join(root, 'blobs', alg);
/** `<root>/blobs/<alg>/<hex>` for the digest `<alg>:<hex>`. */
export function blobPath(root: string, digest: string): string {
  const i = digest.indexOf(':');
  return join(root, 'blobs', digest.slice(0, i), digest.slice(i + 1));
}

// The store's own files.

/** `<root>/imgbuild.json`: the store's format version. */
export const versionFile = (root: string): string => join(root, 'imgbuild.json');
/** `<root>/ingest`: blobs being written, downloads to resume, blobs a gc has hidden. */
export const ingestDir = (root: string): string => join(root, 'ingest');
/** `<root>/leases`: what running processes hold (lease.ts). */
export const leasesDir = (root: string): string => join(root, 'leases');
/** `<root>/remote/sources`: which repositories hold each blob (registry/sources.ts). */
export const sourcesDir = (root: string): string => join(root, 'remote', 'sources');

/** `<root>/lazy-layers`: build layers not yet written as blobs, a record per digest (lazy.ts). */
export const lazyLayersDir = (root: string): string => join(root, 'lazy-layers');
/** `<root>/lazy-layers/<alg>/<hex>.json`: where the layer `<alg>:<hex>` can be packed from again. */
export function lazyLayerPath(root: string, digest: string): string {
  const i = digest.indexOf(':');
  return join(root, 'lazy-layers', digest.slice(0, i), `${digest.slice(i + 1)}.json`);
}

// Caches.

/** `<root>/cache/compressed`: layers converted to another compression (layers.ts). */
export const compressedCacheDir = (root: string): string => join(root, 'cache', 'compressed');
/** `<root>/cache/build`: the build cache (its stat cache among it). */
export const buildCacheDir = (root: string): string => join(root, 'cache', 'build');
/** `<root>/cache/build/steps`: a record per cached build step. */
export const stepCacheDir = (root: string): string => join(root, 'cache', 'build', 'steps');
/** `<root>/cache/build/tmp`: a build's scratch files. */
export const buildTmpDir = (root: string): string => join(root, 'cache', 'build', 'tmp');
/** `<root>/cache/seccomp`: compiled seccomp programs (sandbox/seccomp/filter.ts). */
export const seccompCacheDir = (root: string): string => join(root, 'cache', 'seccomp');
/** `<root>/cache/isolation.json`: the build isolation probe's answer and the environment it holds for (sandbox/isolation.ts). */
export const isolationCacheFile = (root: string): string => join(root, 'cache', 'isolation.json');
/** `<root>/cache/mounts`: RUN --mount=type=cache directories and their locks. */
export const cacheMountsDir = (root: string): string => join(root, 'cache', 'mounts');

// Snapshots and containers.

/** `<root>/overlay`: the overlay snapshotter's root. */
export const overlayRoot = (root: string): string => join(root, 'overlay');
/** `<root>/fuse-overlayfs`: the snapshots mounted through fuse-overlayfs where the kernel refuses overlay (snapshots/fuse-overlay.ts). */
export const fuseOverlayRoot = (root: string): string => join(root, 'fuse-overlayfs');
/** `<root>/vfs`: the copying snapshotter's root, used where overlay cannot be mounted (snapshots/vfs.ts). */
export const vfsRoot = (root: string): string => join(root, 'vfs');
/** `<root>/containers`: a directory per container. */
export const containersDir = (root: string): string => join(root, 'containers');
/** `<root>/userns`: the id ranges `--userns=auto` gave containers and builds, a file per owner (host/id-ranges.ts). */
export const usernsDir = (root: string): string => join(root, 'userns');
/** `<root>/runc`: runc's state directory for `run --runtime runc`. */
export const runcRoot = (root: string): string => join(root, 'runc');

// The event journal (events.ts).

/** `<root>/events.jsonl`: the event journal, one JSON event per line. */
export const eventsFile = (root: string): string => join(root, 'events.jsonl');
/** `<root>/events.1.jsonl`: the journal's previous generation, kept after a rotation. */
export const eventsOldFile = (root: string): string => join(root, 'events.1.jsonl');
/** `<root>/repo-digests.json`: `repo@digest` as registries serve each image, by image id (repo-digests.ts). */
export const repoDigestsFile = (root: string): string => join(root, 'repo-digests.json');

// Volumes.

/** `<root>/volumes`: a directory per volume (volumes/store.ts), and the volumes' lock. */
export const volumesDir = (root: string): string => join(root, 'volumes');
/** `<root>/volumes/<name>`: a volume's metadata (`volume.json`), users and data. */
export const volumeDir = (root: string, name: string): string => join(root, 'volumes', name);
/** `<root>/volumes/<name>/_data`: what a container sees of a volume of the local driver (Docker's path). */
export const volumeDataDir = (root: string, name: string): string => join(root, 'volumes', name, '_data');
