/**
 * The build context on the host: `.dockerignore` filtering and content hashing of the files a
 * COPY/ADD reads. Hashes are blake3 and kept in a stat cache (dev, ino, size, mtime, ctime → hash,
 * stat-cache.ts) under `<root>/cache/build/`, so a rebuild with an unchanged context stats files
 * but never reads their contents.
 */
import { open, lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createMatcher, parseIgnoreFile, loadIgnore as loadDockerignore } from './frontend/dockerignore.js';
import { createHasher, digestOf, type Digest } from '../image/digest.js';
import { StatCache } from './stat-cache.js';

export { StatCache, hashFileSync, type StatCacheEntry } from './stat-cache.js';

/** Files at most this big are hashed from one read; larger ones are streamed in chunks. */
const WHOLE_READ_LIMIT = 4 << 20;

export async function hashFile(path: string): Promise<Digest> {
  const h = createHasher('blake3');
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (st.size <= WHOLE_READ_LIMIT) {
      h.update(await fh.readFile());
    } else {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
      }
    }
  } finally {
    await fh.close();
  }
  return h.digest();
}

/** A matcher of Docker ignore patterns (also used for COPY --exclude). */
export function patternMatcher(patterns: string[]): { ignores(p: string): boolean } {
  return createMatcher(patterns);
}

/** Matches context-relative paths against `.dockerignore` patterns (Docker's patternmatcher rules). */
export interface IgnoreMatcher {
  /** True when `rel` (slash-separated, relative to the context root, no leading `./`) is excluded. */
  ignores(rel: string): boolean;
  /** True when an exception (`!pattern`) may re-include something below the excluded dir `rel`. */
  mayReinclude(rel: string): boolean;
}

/** A matcher from the lines of a `.dockerignore` file. */
export function ignoreMatcher(lines: string[]): IgnoreMatcher {
  return contextIgnore(createMatcher(parseIgnoreFile(lines.join('\n'))));
}

/** Reads `<Dockerfile>.dockerignore` or `<context>/.dockerignore` into a matcher. */
export async function loadIgnore(contextDir: string, dockerfilePath?: string): Promise<IgnoreMatcher> {
  return contextIgnore(await loadDockerignore(contextDir, dockerfilePath));
}

/** A loaded .dockerignore as a context applies it: the context root itself is never ignored. */
function contextIgnore(m: IgnoreMatcher): IgnoreMatcher {
  return { ignores: (rel) => rel !== '' && m.ignores(rel), mayReinclude: (rel) => m.mayReinclude(rel) };
}

/** The host-side build context handed to COPY/ADD. */
export interface BuildContext {
  /** Absolute host path of the context root; undefined for a context-less build (`-` Dockerfile). */
  dir: string | undefined;
  ignore: IgnoreMatcher;
  stat: StatCache;
}

/**
 * Opens the context at `dir`. `ignoreFile: false` reads no `.dockerignore` (BuildKit applies one
 * to a local context only, never to one from git, a URL or an archive); `loadedIgnore` is that
 * file as the build already read it.
 */
export async function openContext(
  dir: string | undefined,
  o: { cacheDir?: string; dockerfilePath?: string; ignoreFile?: boolean; loadedIgnore?: IgnoreMatcher } = {},
): Promise<BuildContext> {
  const ignore = !dir || o.ignoreFile === false ? ignoreMatcher([]) : o.loadedIgnore ? contextIgnore(o.loadedIgnore) : await loadIgnore(dir, o.dockerfilePath);
  // One file per context dir: a build loads and rewrites the entries of its own context only, not
  // of every context ever built with this store (one shared file had grown to 100k+ entries,
  // parsed and written again by every build).
  const stat = await StatCache.open(o.cacheDir && dir ? join(o.cacheDir, `stat-cache-${digestOf(resolve(dir)).slice(7, 23)}.json`) : undefined);
  if (dir) await lstat(dir);
  return { dir, ignore, stat };
}
