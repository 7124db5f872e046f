/**
 * Where blobs came from: for each blob, the repositories of each registry known to hold it
 * (containerd keeps the same as `containerd.io/distribution.source.<registry>` labels). Pulls and
 * pushes record them; a push to another repository of the same registry then mounts the blob
 * instead of uploading it — which is what makes `build --push` of an image on a pulled base cheap.
 * Stored as `<root>/remote/sources/<alg>/<hex>.json` = `{ "<registry>": ["repo", ...] }`; the
 * records are hints (a lost update only costs an upload), so they are written without a lock
 * and without fsync: a temp file renamed over the record (never torn), written for every blob at
 * once, so that they add nothing to a pull's end (docs/architecture.md, "Measurements").
 */
import { randomBytes } from 'node:crypto';
import { readFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { algorithmOf, hexOf, type Digest } from '../image/digest.js';
import { sourcesDir } from '../store/paths.js';

/** Repositories remembered per registry and blob (most recent first). */
const KEEP = 8;

function sourcePath(root: string, d: Digest): string {
  return join(sourcesDir(root), algorithmOf(d), `${hexOf(d)}.json`);
}

async function readSources(root: string, d: Digest): Promise<Record<string, string[]>> {
  try {
    const doc = JSON.parse(await readFile(sourcePath(root, d), 'utf8')) as unknown;
    return typeof doc === 'object' && doc !== null ? (doc as Record<string, string[]>) : {};
  } catch {
    return {};
  }
}

/** Repositories on `registry` known to hold blob `d`. */
export async function sourcesOf(root: string, d: Digest, registry: string): Promise<string[]> {
  const repos = (await readSources(root, d))[registry];
  return Array.isArray(repos) ? repos.filter((r) => typeof r === 'string') : [];
}

/** Remembers that `registry/repo` holds these blobs. */
export async function recordSources(root: string, digests: Iterable<Digest>, registry: string, repo: string): Promise<void> {
  const dirs = new Map<string, Promise<unknown>>();
  await Promise.all([...new Set(digests)].map(async (d) => {
    const doc = await readSources(root, d);
    const before = doc[registry] ?? [];
    if (before[0] === repo) return;
    doc[registry] = [repo, ...before.filter((r) => r !== repo)].slice(0, KEEP);
    const dir = join(sourcesDir(root), algorithmOf(d));
    if (!dirs.has(dir)) dirs.set(dir, mkdir(dir, { recursive: true }));
    await dirs.get(dir);
    const path = sourcePath(root, d);
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(doc));
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }));
}
