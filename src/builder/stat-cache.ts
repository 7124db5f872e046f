/**
 * The context's stat cache: a file's identity and times (dev, ino, size, mtime, ctime) → its
 * content hash, so a rebuild with an unchanged context stats files but never reads them (git's
 * index and BuildKit's contenthash use the same idea; ctime catches in-place rewrites that restore
 * the mtime).
 *
 * Memory is bounded whatever the size of the context: the file is one line per directory, and
 * only an index of where each directory's line is stays in memory, with the entries of the
 * directories last used (at most CACHED_ENTRIES, besides the directory at hand). A directory
 * changed and put out of memory goes to the next generation of the file at once; `save` completes
 * that generation with the lines of the directories left as they were and renames it into place.
 *
 * File (v2): a first line `{"v":2}`, then per directory `<JSON dir path>\t<JSON [[name, dev, ino,
 * size, mtime, ctime, hash], ...]>`; a later line of a directory replaces an earlier one. A file
 * of another version is read as empty (its files are hashed again once).
 */
import { closeSync, constants as fsc, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { blake3Of, createHasher, type Digest } from '../image/digest.js';
import { fsyncDir, tempPathFor } from '../atomic.js';

export interface StatCacheEntry { dev: number; ino: number; size: number; mtime: number; ctime: number; hash: Digest }

type Row = [name: string, dev: number, ino: number, size: number, mtime: number, ctime: number, hash: Digest];

/** Entries held in memory across directories (about 250 bytes each); one larger directory is held whole. */
const CACHED_ENTRIES = 8192;
const HEADER = '{"v":2}\n';

/** The read buffer of hashFileSync: one per process, never shared across an await. */
let hashBuffer: Buffer | undefined;

/**
 * A file's blake3 with synchronous reads into one reused 1 MiB buffer: for the thousands of small
 * files of a context, the thread-pool round trips of the async form (open, stat, read, close) cost
 * more than the reads, and memory stays one buffer whatever the files' sizes.
 */
export function hashFileSync(path: string, size?: number): Digest {
  const buf = (hashBuffer ??= Buffer.allocUnsafe(1 << 20));
  const fd = openSync(path, fsc.O_RDONLY);
  try {
    let n = readSync(fd, buf, 0, buf.length, null);
    // Most files fit the buffer: hashed in one call, without a hasher object. A read of a
    // regular file that returns less than asked for, and as much as lstat said it holds, ended
    // at its end: the read that would return 0 is one syscall per file saved.
    if (n < buf.length) {
      if (n === size) return blake3Of(buf.subarray(0, n));
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

/** Where a directory's line is: in the file read at open (0) or in the generation being written (1). */
interface Place { gen: 0 | 1; off: number; len: number }

interface Loaded { rows: Map<string, StatCacheEntry>; dirty: boolean }

function readExactly(fd: number, len: number, off: number): Buffer {
  const buf = Buffer.allocUnsafe(len);
  let n = 0;
  while (n < len) {
    const got = readSync(fd, buf, n, len - n, off + n);
    if (got === 0) throw new Error('stat cache file shrank');
    n += got;
  }
  return buf;
}

export class StatCache {
  private readonly places = new Map<string, Place>();
  /** Directories in memory, least recently used first. */
  private readonly loaded = new Map<string, Loaded>();
  private loadedEntries = 0;
  /** The file read at open, kept open: another build may rename a new one over it meanwhile. */
  private oldFd: number | undefined;
  private next: { fd: number; path: string; size: number } | undefined;
  private changed = false;
  hits = 0;
  misses = 0;

  private constructor(private readonly file: string | undefined, private readonly cachedEntries: number) {}

  /**
   * Indexes the cache file (one line per directory); a missing or unreadable file is an empty
   * cache. `cachedEntries`: entries held in memory (CACHED_ENTRIES; tests set it low).
   */
  static async open(file: string | undefined, o: { cachedEntries?: number } = {}): Promise<StatCache> {
    const c = new StatCache(file, o.cachedEntries ?? CACHED_ENTRIES);
    if (file) {
      try {
        c.oldFd = openSync(file, 'r');
        c.index();
      } catch {
        // missing, unreadable or of another version: start empty (the cache only saves work)
        c.places.clear();
        if (c.oldFd !== undefined) closeSync(c.oldFd);
        c.oldFd = undefined;
      }
    }
    return c;
  }

  /** Reads the file in chunks, noting where each directory's line is (not parsing its entries). */
  private index(): void {
    const fd = this.oldFd as number;
    const chunk = Buffer.allocUnsafe(1 << 20);
    let carry = Buffer.alloc(0);
    let pos = 0;
    let first = true;
    for (;;) {
      const got = readSync(fd, chunk, 0, chunk.length, pos);
      if (got === 0) break;
      let buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, got)]) : chunk.subarray(0, got);
      const base = pos - carry.length;
      pos += got;
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
        if (first) {
          if (buf.toString('utf8', start, nl + 1) !== HEADER) throw new Error('not a v2 stat cache');
          first = false;
        } else {
          const tab = buf.indexOf(9, start);
          if (tab < 0 || tab > nl) throw new Error('bad stat cache line');
          const dir = JSON.parse(buf.toString('utf8', start, tab)) as string;
          this.places.set(dir, { gen: 0, off: base + tab + 1, len: nl - tab - 1 });
        }
        start = nl + 1;
      }
      buf = buf.subarray(start);
      carry = Buffer.from(buf);
    }
    if (first) throw new Error('empty stat cache');
  }

  /** The entries of `dir`, loaded from the file when not in memory (and made the most recent). */
  private dir(dir: string): Loaded {
    let d = this.loaded.get(dir);
    if (d) {
      this.loaded.delete(dir);
      this.loaded.set(dir, d);
      return d;
    }
    d = { rows: new Map(), dirty: false };
    const place = this.places.get(dir);
    if (place) {
      const fd = place.gen === 0 ? this.oldFd : this.next?.fd;
      try {
        for (const [name, dev, ino, size, mtime, ctime, hash] of JSON.parse(readExactly(fd as number, place.len, place.off).toString('utf8')) as Row[]) {
          d.rows.set(name, { dev, ino, size, mtime, ctime, hash });
        }
      } catch {
        d.rows.clear(); // a damaged line: its files are hashed again
      }
    }
    this.loaded.set(dir, d);
    this.loadedEntries += d.rows.size;
    this.evict(dir);
    return d;
  }

  /** Puts least recently used directories out of memory past CACHED_ENTRIES (`keep` stays). */
  private evict(keep: string): void {
    for (const [name, d] of this.loaded) {
      if (this.loadedEntries <= this.cachedEntries) return;
      if (name === keep) continue;
      if (d.dirty) this.append(name, d);
      this.loaded.delete(name);
      this.loadedEntries -= d.rows.size;
    }
  }

  /** Writes `dir`'s line to the next generation of the file. */
  private append(dir: string, d: Loaded): void {
    if (!this.file) return;
    if (!this.next) {
      mkdirSync(dirname(this.file), { recursive: true });
      const path = tempPathFor(this.file);
      const fd = openSync(path, 'wx', 0o644);
      this.next = { fd, path, size: 0 };
      this.write(Buffer.from(HEADER));
    }
    const rows: Row[] = [];
    for (const [name, e] of d.rows) rows.push([name, e.dev, e.ino, e.size, e.mtime, e.ctime, e.hash]);
    const head = Buffer.from(`${JSON.stringify(dir)}\t`);
    const body = Buffer.from(JSON.stringify(rows));
    const off = this.next.size + head.length;
    this.write(Buffer.concat([head, body, Buffer.from('\n')]));
    this.places.set(dir, { gen: 1, off, len: body.length });
    d.dirty = false;
  }

  private write(b: Buffer): void {
    const n = this.next as { fd: number; size: number };
    for (let at = 0; at < b.length; ) at += writeSync(n.fd, b, at, b.length - at, n.size + at);
    n.size += b.length;
  }

  /** The cached hash when the file is unchanged (no I/O but its directory's line), else undefined. */
  lookup(path: string, st: Stats): Digest | undefined {
    const slash = path.lastIndexOf('/');
    const e = this.dir(path.slice(0, slash)).rows.get(path.slice(slash + 1));
    if (e && e.dev === st.dev && e.ino === st.ino && e.size === st.size && e.mtime === st.mtimeMs && e.ctime === st.ctimeMs) {
      this.hits++;
      return e.hash;
    }
    return undefined;
  }

  /** The file's hash: from the cache when unchanged, else read (synchronously) and remembered. */
  hashSync(path: string, st: Stats): Digest {
    const cached = this.lookup(path, st);
    if (cached) return cached;
    this.misses++;
    const hash = hashFileSync(path, st.size);
    const slash = path.lastIndexOf('/');
    const d = this.dir(path.slice(0, slash));
    const name = path.slice(slash + 1);
    if (!d.rows.has(name)) this.loadedEntries++;
    d.rows.set(name, { dev: st.dev, ino: st.ino, size: st.size, mtime: st.mtimeMs, ctime: st.ctimeMs, hash });
    d.dirty = true;
    this.changed = true;
    return hash;
  }

  /**
   * Completes the next generation (changed directories still in memory, then every other line
   * copied from the file read at open), syncs it and renames it into place. Nothing is written
   * when no file was hashed.
   */
  async save(): Promise<void> {
    if (!this.file) return;
    try {
      if (!this.changed) return;
      for (const [name, d] of this.loaded) if (d.dirty) this.append(name, d);
      const next = this.next as { fd: number; path: string };
      for (const [dir, place] of this.places) {
        if (place.gen !== 0) continue;
        const head = Buffer.from(`${JSON.stringify(dir)}\t`);
        this.write(Buffer.concat([head, readExactly(this.oldFd as number, place.len, place.off), Buffer.from('\n')]));
      }
      fsyncSync(next.fd);
      closeSync(next.fd);
      this.next = undefined;
      try {
        renameSync(next.path, this.file);
      } catch (e) {
        rmSync(next.path, { force: true });
        throw e;
      }
      await fsyncDir(dirname(this.file));
    } finally {
      this.close();
    }
  }

  /** Lets go of the files (a generation not saved is removed). */
  close(): void {
    if (this.oldFd !== undefined) closeSync(this.oldFd);
    this.oldFd = undefined;
    if (this.next) {
      closeSync(this.next.fd);
      rmSync(this.next.path, { force: true });
      this.next = undefined;
    }
    this.places.clear();
    this.loaded.clear();
    this.loadedEntries = 0;
    this.changed = false;
  }
}
