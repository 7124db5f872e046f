/**
 * Repository digests: `repo@sha256:...` as a registry serves an image, recorded when it is pulled
 * or pushed (Docker's RepoDigests). The digest a registry serves can differ from the local
 * manifest's: a push compresses layers built uncompressed, a pull of a multi-platform tag is
 * served as its index. So they are kept beside the index, by image id (the config digest), in
 * `<root>/repo-digests.json`, one per repository per image (the newest), rewritten atomically
 * under a lock.
 */
import { readFile } from 'node:fs/promises';
import { withLock } from '../lock.js';
import { writeFileAtomic } from '../atomic.js';
import { repoDigestsFile } from './paths.js';

type Table = Record<string, string[]>;

async function readTable(root: string): Promise<Table> {
  try {
    const t = JSON.parse(await readFile(repoDigestsFile(root), 'utf8')) as unknown;
    return t && typeof t === 'object' && !Array.isArray(t) ? (t as Table) : {};
  } catch {
    return {}; // missing (none recorded yet) or torn: digests are a convenience, never a failure
  }
}

const repoOf = (repoAtDigest: string): string => repoAtDigest.slice(0, repoAtDigest.lastIndexOf('@'));

async function update(root: string, fn: (t: Table) => void): Promise<void> {
  const path = repoDigestsFile(root);
  await withLock(path, async () => {
    const t = await readTable(root);
    fn(t);
    await writeFileAtomic(path, JSON.stringify(t));
  });
}

/** Records that `repoAtDigest` (a full name, `docker.io/library/busybox@sha256:...`) serves image `imageId`. */
export async function addRepoDigest(root: string, imageId: string, repoAtDigest: string): Promise<void> {
  await update(root, (t) => {
    // A digest names one image; the image keeps one digest per repository (the newest).
    for (const [id, list] of Object.entries(t)) {
      const kept = list.filter((r) => r !== repoAtDigest && !(id === imageId && repoOf(r) === repoOf(repoAtDigest)));
      if (kept.length > 0) t[id] = kept;
      else delete t[id];
    }
    t[imageId] = [...(t[imageId] ?? []), repoAtDigest];
  });
}

/** The repository digests of image `imageId` (full names). */
export async function repoDigestsOf(root: string, imageId: string): Promise<string[]> {
  return (await readTable(root))[imageId] ?? [];
}

/** All of them, by image id (one read, for listings). */
export function allRepoDigests(root: string): Promise<Readonly<Table>> {
  return readTable(root);
}

/** The image id a full `repo@digest` was recorded for. */
export async function imageIdOfRepoDigest(root: string, repoAtDigest: string): Promise<string | undefined> {
  for (const [id, list] of Object.entries(await readTable(root))) if (list.includes(repoAtDigest)) return id;
  return undefined;
}

/** Forgets the digests of images that are gone. */
export async function dropRepoDigests(root: string, imageIds: Iterable<string>): Promise<void> {
  const ids = [...imageIds];
  if (ids.length === 0) return;
  const t = await readTable(root);
  if (!ids.some((id) => id in t)) return;
  await update(root, (tt) => {
    for (const id of ids) delete tt[id];
  });
}
