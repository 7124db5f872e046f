/**
 * The build context on the host: `.dockerignore` filtering and content hashing of the files a
 * COPY/ADD reads. Hashes are blake3 and kept in a stat cache (dev, ino, size, mtime, ctime → hash)
 * under `<root>/cache/build/`, so a rebuild with an unchanged context stats files but never reads
 * their contents.
 */
import { open, readFile, mkdir, lstat } from 'node:fs/promises';
import { closeSync, openSync, readSync, constants as fsc, type Stats } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { createMatcher, parseIgnoreFile, loadIgnore as loadDockerignore } from './frontend/dockerignore.js';
import { blake3Of, createHasher, digestOf, type Digest } from '../image/digest.js';
import { writeFileAtomic } from '../atomic.js';

export interface StatCacheEntry { dev: number; ino: number; size: number; mtime: number; ctime: number; hash: Digest }

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

/** The read buffer of hashFileSync: one per process, never shared across an await. */
let hashBuffer: Buffer | undefined;

/**
 * hashFile with synchronous reads into one reused 1 MiB buffer: for the thousands of small files
 * of a context, the thread-pool round trips of the async form (open, stat, read, close) cost more
 * than the reads, and memory stays one buffer whatever the files' sizes.
 */
export function hashFileSync(path: string): Digest {
  const buf = (hashBuffer ??= Buffer.allocUnsafe(1 << 20));
  const fd = openSync(path, fsc.O_RDONLY);
  try {
    let n = readSync(fd, buf, 0, buf.length, null);
    // Most files fit the buffer: hashed in one call, without a hasher object.
    if (n < buf.length) {
      const more = n === 0 ? 0 : readSync(fd, buf, n, buf.length - n, null);
      if (more === 0) return blake3Of(buf.subarray(0, n));
      n += more;
    }
    const h = createHasher('blake3');
    while (n > 0) {
      h.update(buf.subarray(0, n));
      n = readSync(fd, buf, 0, buf.length, null);
    }
    return h.digest();
  } finally {
    closeSync(fd);
  }
}

/**
 * A persistent map from a file's identity and times to its content hash. A file whose inode,
 * size, mtime and ctime are unchanged is not read again (git's index and BuildKit's contenthash
 * use the same idea); ctime catches in-place rewrites that restore the mtime.
 */
export class StatCache {
  private entries = new Map<string, StatCacheEntry>();
  private dirty = false;
  hits = 0;
  misses = 0;

  private constructor(private readonly file: string | undefined) {}

  /** Loads the cache file (`{v:1, e:{path:[dev,ino,size,mtime,ctime,hash]}}`); missing = empty. */
  static async open(file: string | undefined): Promise<StatCache> {
    const c = new StatCache(file);
    if (file) {
      try {
        const data = JSON.parse(await readFile(file, 'utf8')) as { v?: number; e?: Record<string, [number, number, number, number, number, Digest]> };
        if (data.v === 1 && data.e) {
          for (const [p, t] of Object.entries(data.e)) c.entries.set(p, { dev: t[0], ino: t[1], size: t[2], mtime: t[3], ctime: t[4], hash: t[5] });
        }
      } catch {
        // missing or unreadable: start empty (the cache only saves work)
      }
    }
    return c;
  }

  /** The cached hash when the file is unchanged (no I/O), else undefined. */
  lookup(path: string, st: Stats): Digest | undefined {
    const e = this.entries.get(path);
    if (e && e.dev === st.dev && e.ino === st.ino && e.size === st.size && e.mtime === st.mtimeMs && e.ctime === st.ctimeMs) {
      this.hits++;
      return e.hash;
    }
    return undefined;
  }

  async hash(path: string, st: Stats): Promise<Digest> {
    return this.hashSync(path, st);
  }

  /** The file's hash: from the cache when unchanged, else read (synchronously) and remembered. */
  hashSync(path: string, st: Stats): Digest {
    const cached = this.lookup(path, st);
    if (cached) return cached;
    this.misses++;
    const hash = hashFileSync(path);
    this.entries.set(path, { dev: st.dev, ino: st.ino, size: st.size, mtime: st.mtimeMs, ctime: st.ctimeMs, hash });
    this.dirty = true;
    return hash;
  }

  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    await mkdir(dirname(this.file), { recursive: true });
    const e: Record<string, [number, number, number, number, number, Digest]> = {};
    for (const [p, x] of this.entries) e[p] = [x.dev, x.ino, x.size, x.mtime, x.ctime, x.hash];
    await writeFileAtomic(this.file, JSON.stringify({ v: 1, e }));
    this.dirty = false;
  }
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
  const m = createMatcher(parseIgnoreFile(lines.join('\n')));
  return { ignores: (rel) => rel !== '' && m.ignores(rel), mayReinclude: (rel) => m.mayReinclude(rel) };
}

/** Reads `<Dockerfile>.dockerignore` or `<context>/.dockerignore` into a matcher. */
export async function loadIgnore(contextDir: string, dockerfilePath?: string): Promise<IgnoreMatcher> {
  const m = await loadDockerignore(contextDir, dockerfilePath);
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
 * to a local context only, never to one from git, a URL or an archive).
 */
export async function openContext(dir: string | undefined, o: { cacheDir?: string; dockerfilePath?: string; ignoreFile?: boolean } = {}): Promise<BuildContext> {
  const ignore = dir && o.ignoreFile !== false ? await loadIgnore(dir, o.dockerfilePath) : ignoreMatcher([]);
  // One file per context dir: a build loads and rewrites the entries of its own context only, not
  // of every context ever built with this store (one shared file had grown to 100k+ entries,
  // parsed and written again by every build).
  const stat = await StatCache.open(o.cacheDir && dir ? join(o.cacheDir, `stat-cache-${digestOf(resolve(dir)).slice(7, 23)}.json`) : undefined);
  if (dir) await lstat(dir);
  return { dir, ignore, stat };
}
