/**
 * The local image store: an OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) with
 * room beside it for snapshots and containers. Blobs are content-addressed and written through
 * `ingest/` (ingest.ts: temp file → verify size and digest → rename), read back through a verifying stream,
 * and `index.json` is only rewritten atomically under a lock, so concurrent imgbuild processes never
 * lose a tag. A tag is only written when everything it names is present, and garbage collection
 * spares the blobs that live processes hold in their leases (lease.ts), so a build or pull never
 * loses a blob between writing (or finding) it and tagging the image.
 */
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createHasher, algorithmOf, hexOf, isDigest, type Digest } from '../image/digest.js';
import { isIndex, isImage, MediaTypes } from '../image/media-types.js';
import type { Descriptor, Index, Manifest } from '../image/types.js';
import { REF_NAME_ANNOTATION, IMAGE_NAME_ANNOTATION } from '../image/types.js';
import { formatReference, parseReference } from '../image/reference.js';
import { BlobNotFoundError, CorruptStoreError, LazyLayerGoneError, StoreNotWritableError, StoreVersionError } from './errors.js';
import { DigestMismatchError, SizeMismatchError } from '../image/errors.js';
import { VerifyingStream } from './verify.js';
import { sweepLocks, sweepTempFiles, writeFileAtomic, withLock } from '../atomic.js';
import { Lease, readLiveLeases } from './lease.js';
import { isProcessAlive } from '../pid.js';
import { mkdirp } from '../fs.js';
import { Ingest, IngestWriter, type BlobWriter } from './ingest.js';
import { availableLazyLayer, listLazyDigests, packLazyLayer, readLazyLayer, removeLazyLayer } from './lazy.js';
import {
  blobAlgDir, blobPath, blobsDir, buildCacheDir, cacheMountsDir, compressedCacheDir, indexFile, ingestDir, layoutFile,
  lazyLayerPath, leasesDir, sourcesDir, stepCacheDir, versionFile,
} from './paths.js';

/** The on-disk format this code writes and understands. Bump on incompatible layout changes. */
export const STORE_VERSION = 1;

export type { BlobWriter } from './ingest.js';

export interface IndexEntry {
  /** Full normalised reference, or undefined for an untagged (dangling) image kept in the store. */
  ref?: string;
  descriptor: Descriptor;
}

export { defaultRoot } from './paths.js';

/**
 * The root is for its owner alone (as Docker's data root and containers/storage are): containers
 * write into snapshots, cache mounts and their own /etc/hosts, and a setuid file they leave there
 * must be out of every other user's reach. A root made more open (an older store, a directory
 * given with --root) is closed on open.
 */
async function privateRoot(root: string): Promise<void> {
  const st = await stat(root);
  if ((st.mode & 0o077) !== 0) await chmod(root, st.mode & 0o700);
}

/** A store being opened (OciStore.begin). */
export interface StoreOpening {
  /** The resolved root. */
  readonly root: string;
  /**
   * Resolves once blobs may be looked up under `<root>/blobs` and staged under `<root>/ingest`:
   * an existing store validated, or a new root's directories made while its layout files are
   * still being written. Rejects as `store` does.
   */
  readonly usable: Promise<void>;
  readonly store: Promise<OciStore>;
}

export class OciStore {
  /**
   * This process's lease: every blob it places or protects, and the snapshots its builds use,
   * until `release()`.
   */
  readonly lease: Lease;

  private constructor(readonly root: string) {
    this.lease = new Lease(root);
  }

  /** Opens (creating when missing) the store at `root`; refuses a store written by a newer version. */
  static open(root: string): Promise<OciStore> {
    return OciStore.begin(root).store;
  }

  /**
   * Opens the store at `root` in two steps, for a caller that can start on blobs before a new
   * root's layout is complete (a pull: its layer requests need not wait for the fsync'd layout
   * files).
   */
  static begin(root: string): StoreOpening {
    // Resolved once here: paths derived from the root end up in mounts and in a sandbox that
    // runs with another cwd, where a relative root would mean something else.
    const s = new OciStore(resolve(root));
    let markUsable!: () => void;
    let failUsable!: (e: unknown) => void;
    const usable = new Promise<void>((res, rej) => {
      markUsable = res;
      failUsable = rej;
    });
    usable.catch(() => {}); // reported through `store`, which every caller awaits
    const store = s.init(markUsable).then(
      () => s,
      (e: unknown) => {
        failUsable(e);
        throw e;
      },
    );
    return { root: s.root, usable, store };
  }

  /** Size of the blob `d` under `root`, or undefined when it is not there. */
  static async infoAt(root: string, d: Digest): Promise<{ digest: Digest; size: number } | undefined> {
    try {
      const st = await stat(blobPath(root, d));
      return { digest: d, size: st.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private async init(markUsable: () => void): Promise<void> {
    try {
      await this.initLayout(markUsable);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw e;
      // Name the directory in the way: the root, or the nearest of its parents that exists.
      let blocked = this.root;
      while (dirname(blocked) !== blocked && !(await stat(blocked).then(() => true, () => false))) blocked = dirname(blocked);
      throw new StoreNotWritableError(this.root, blocked, { cause: e });
    }
  }

  private async initLayout(markUsable: () => void): Promise<void> {
    const version = versionFile(this.root);
    let existing: string | undefined;
    try {
      existing = await readFile(version, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (existing !== undefined) {
      let v: unknown;
      try {
        v = (JSON.parse(existing) as { version?: unknown }).version;
      } catch (e) {
        throw new CorruptStoreError(version, 'not valid JSON', { cause: e });
      }
      if (typeof v !== 'number') throw new CorruptStoreError(version, 'missing numeric "version"');
      if (v > STORE_VERSION) throw new StoreVersionError(this.root, v, STORE_VERSION);
      await privateRoot(this.root);
      markUsable();
      return;
    }
    // A new root. Independent steps run together (each file write is fsync'd); imgbuild.json,
    // the mark of a complete layout, is written last.
    await mkdirp(this.root, 0o700);
    await privateRoot(this.root);
    await Promise.all([blobAlgDir(this.root, 'sha256'), ingestDir(this.root), leasesDir(this.root)].map((d) => mkdir(d, { recursive: true })));
    markUsable();
    const index = indexFile(this.root);
    await withLock(index, async () => {
      try {
        await stat(index);
      } catch {
        await Promise.all([
          writeFileAtomic(layoutFile(this.root), JSON.stringify({ imageLayoutVersion: '1.0.0' })),
          writeFileAtomic(index, JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OCI_INDEX, manifests: [] })),
        ]);
      }
      await writeFileAtomic(version, JSON.stringify({ version: STORE_VERSION }));
    });
  }

  /** Drops this process's lease (call when an operation has tagged what it needs). */
  release(): Promise<void> {
    return this.lease.release();
  }

  /**
   * Leases the blobs in `digests` and returns those that are missing. One found present after
   * being leased is kept by any gc (see gc), so no lock is needed: a build does this for every
   * layer it finds in its cache.
   */
  async protect(digests: Iterable<Digest>): Promise<Digest[]> {
    const all = [...new Set(digests)];
    if (all.length === 0) return [];
    await this.lease.add({ blobs: all });
    // (Synchronous: one stat each, cheaper than a thread-pool round trip.) A build layer kept
    // unwritten counts as present while its snapshot is there (lazy.ts).
    return all.filter((d) => !existsSync(blobPath(this.root, d)) && !availableLazyLayer(this.root, d));
  }

  blobPath(d: Digest): string {
    return blobPath(this.root, d);
  }

  /** The blob's size; a build layer kept unwritten (lazy.ts) is there while its snapshot is. */
  async info(d: Digest): Promise<{ digest: Digest; size: number; lazy?: true } | undefined> {
    const found = await OciStore.infoAt(this.root, d);
    if (found) return found;
    const rec = availableLazyLayer(this.root, d);
    return rec ? { digest: d, size: rec.size, lazy: true } : undefined;
  }

  /**
   * Writes a build layer kept unwritten (lazy.ts) as a blob, packed again from its snapshot and
   * verified before it is placed; for readers that need a file. A no-op for a stored blob.
   */
  async materialize(d: Digest, o: { signal?: AbortSignal } = {}): Promise<void> {
    if (existsSync(blobPath(this.root, d))) return;
    const rec = readLazyLayer(this.root, d);
    if (!rec) throw new BlobNotFoundError(d);
    await this.lease.add({ blobs: [d] });
    const tar = packLazyLayer(this.root, rec, o);
    const w = await this.writer(d, { expected: d, total: rec.size });
    try {
      for await (const c of tar) await w.write(c as Buffer);
      await w.commit(rec.size, d);
    } catch (e) {
      tar.destroy();
      await w.abort().catch(() => {});
      throw e;
    }
    await removeLazyLayer(this.root, d);
  }

  /** Throws LazyLayerGoneError when `d` is a build layer never written whose snapshot is gone. */
  lazyLayerGone(d: Digest): void {
    const rec = readLazyLayer(this.root, d);
    if (rec && !availableLazyLayer(this.root, d)) throw new LazyLayerGoneError(d, rec.dir);
  }

  async reader(desc: Pick<Descriptor, 'digest' | 'size'>, o: { signal?: AbortSignal } = {}): Promise<Readable> {
    const p = blobPath(this.root, desc.digest);
    try {
      await stat(p);
    } catch {
      const rec = readLazyLayer(this.root, desc.digest);
      if (!rec) throw new BlobNotFoundError(desc.digest);
      if (desc.size >= 0 && desc.size !== rec.size) throw new SizeMismatchError(desc.size, rec.size, desc.digest);
      // Packed again and checked at EOF, as a stored blob is read (no blob is written for it).
      return packLazyLayer(this.root, rec, o);
    }
    // 1 MiB reads: blobs are layers of many MB, and 64 KiB chunks cost more in per-chunk work than
    // I/O. Each read is a thread-pool job, queued behind ParallelGzip's compression jobs: sixteen
    // of them per 1 MiB block starved the compressor (docs/architecture.md, "Measurements").
    const file = createReadStream(p, { highWaterMark: 1 << 20 });
    const v = new VerifyingStream(desc.digest, desc.size);
    file.once('error', (e) => v.destroy(e)); // pipe() does not pass a read error on
    return file.pipe(v);
  }

  /** Reads a whole (small) blob and verifies it. */
  async read(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Buffer> {
    const p = blobPath(this.root, desc.digest);
    let data: Buffer;
    try {
      data = await readFile(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(desc.digest);
      throw e;
    }
    if (desc.size >= 0 && data.length !== desc.size) throw new SizeMismatchError(desc.size, data.length, desc.digest);
    const h = createHasher(algorithmOf(desc.digest));
    h.update(data);
    const actual = h.digest();
    if (actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual, data.length, `blob ${p}`);
    return data;
  }

  async writer(_ref: string, opts: { expected?: Digest; total?: number } = {}): Promise<BlobWriter> {
    const ing = await Ingest.create(this.root, opts.expected ? algorithmOf(opts.expected) : 'sha256');
    return new IngestWriter(this, ing, opts);
  }

  /**
   * Copies the file at `path` in as the blob `desc` (its digest and size verified on commit);
   * nothing is read when the store holds the blob already.
   */
  async putFile(path: string, desc: Pick<Descriptor, 'digest' | 'size'>): Promise<void> {
    if ((await this.protect([desc.digest])).length === 0) return;
    const w = await this.writer(desc.digest, { expected: desc.digest, total: desc.size });
    try {
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) await w.write(chunk as Buffer);
      await w.commit(desc.size, desc.digest);
    } catch (e) {
      await w.abort().catch(() => {});
      throw e;
    }
  }

  /** Writes a whole buffer as a blob and returns its descriptor. */
  async put(data: Uint8Array, mediaType: string): Promise<Descriptor> {
    const h = createHasher('sha256');
    h.update(data);
    const digest = h.digest();
    if ((await this.protect([digest])).length === 0) return { mediaType, digest, size: data.length };
    const w = await this.writer(digest);
    await w.write(data);
    await w.commit(data.length, digest);
    return { mediaType, digest, size: data.length };
  }

  /**
   * Moves a verified, flushed ingest file into `blobs/` (for ingest.ts only: everything else
   * writes through an Ingest) and leases the blob, before it appears; one already there counts
   * once leased, as in protect().
   */
  async place(tmp: string, d: Digest): Promise<void> {
    const dest = blobPath(this.root, d);
    await mkdir(blobAlgDir(this.root, algorithmOf(d)), { recursive: true });
    // The file itself, not protect()'s answer: a lazy layer (lazy.ts) counts as present there.
    await this.lease.add({ blobs: [d] });
    if (!existsSync(dest)) await rename(tmp, dest);
  }

  async delete(d: Digest): Promise<void> {
    await rm(blobPath(this.root, d), { force: true });
    await removeLazyLayer(this.root, d);
  }

  async readIndex(): Promise<Index> {
    const p = indexFile(this.root);
    let text: string;
    try {
      text = await readFile(p, 'utf8');
    } catch (e) {
      throw new CorruptStoreError(p, (e as Error).message, { cause: e });
    }
    let idx: Index;
    try {
      idx = JSON.parse(text) as Index;
    } catch (e) {
      throw new CorruptStoreError(p, 'not valid JSON', { cause: e });
    }
    if (!idx || !Array.isArray(idx.manifests)) throw new CorruptStoreError(p, 'no "manifests" array');
    return idx;
  }

  /** One read-modify-write of index.json under the store lock. */
  async updateIndex(fn: (entries: Descriptor[]) => Descriptor[] | Promise<Descriptor[]>): Promise<void> {
    const p = indexFile(this.root);
    await withLock(p, async () => {
      const idx = await this.readIndex();
      const manifests = await fn(idx.manifests.slice());
      await writeFileAtomic(p, JSON.stringify({ ...idx, manifests }, null, 0));
    });
  }

  async list(): Promise<IndexEntry[]> {
    const idx = await this.readIndex();
    return idx.manifests.map((descriptor) => {
      const ref = refOf(descriptor);
      return ref !== undefined ? { ref, descriptor } : { descriptor };
    });
  }

  /** `ref` is a full normalised reference (`docker.io/library/busybox:latest`). */
  async resolve(ref: string): Promise<Descriptor | undefined> {
    const all = await this.list();
    return all.find((e) => e.ref === ref)?.descriptor;
  }

  async tag(ref: string, desc: Descriptor): Promise<void> {
    const annotations = { ...(desc.annotations ?? {}) };
    delete annotations[REF_NAME_ANNOTATION];
    delete annotations[IMAGE_NAME_ANNOTATION];
    const entry: Descriptor = {
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(desc.platform ? { platform: desc.platform } : {}),
      annotations: { ...annotations, [IMAGE_NAME_ANNOTATION]: ref, [REF_NAME_ANNOTATION]: ref },
    };
    await this.updateIndex(async (ms) => {
      await this.requireComplete(entry);
      const out = ms.filter((m) => refOf(m) !== ref && !(refOf(m) === undefined && m.digest === desc.digest));
      out.push(entry);
      return out;
    });
  }

  /** Keeps an untagged image (a build without -t) alive until pruned, like Docker's dangling images. */
  async keepUntagged(desc: Descriptor): Promise<void> {
    await this.updateIndex(async (ms) => {
      if (ms.some((m) => m.digest === desc.digest)) return ms;
      await this.requireComplete(desc);
      return [...ms, { mediaType: desc.mediaType, digest: desc.digest, size: desc.size }];
    });
  }

  /** Removes a tag; returns the descriptor it pointed at. */
  async untag(ref: string): Promise<Descriptor | undefined> {
    let removed: Descriptor | undefined;
    await this.updateIndex((ms) => ms.filter((m) => {
      if (refOf(m) === ref) {
        removed = m;
        return false;
      }
      return true;
    }));
    return removed;
  }

  /** Removes every index entry for a manifest digest (tagged or not). */
  async removeManifest(d: Digest): Promise<Descriptor[]> {
    const removed: Descriptor[] = [];
    await this.updateIndex((ms) => ms.filter((m) => {
      if (m.digest === d) {
        removed.push(m);
        return false;
      }
      return true;
    }));
    return removed;
  }

  /**
   * Throws BlobNotFoundError unless `desc` is present with everything it needs: an image
   * manifest's config and layers, and the same for each manifest of an index that is present (an
   * index may name platforms that were never pulled). Called under the index lock, where no gc
   * runs, so an index entry never names a missing blob.
   */
  async requireComplete(desc: Pick<Descriptor, 'digest' | 'size' | 'mediaType'>, depth = 0): Promise<void> {
    if (!(await this.present(desc.digest))) throw new BlobNotFoundError(desc.digest);
    const doc = JSON.parse((await this.read(desc)).toString('utf8')) as Manifest & Index;
    if (Array.isArray(doc.manifests) && depth < 4) {
      for (const m of doc.manifests) if (await this.info(m.digest)) await this.requireComplete(m, depth + 1);
    }
    for (const b of [...(doc.config ? [doc.config] : []), ...(Array.isArray(doc.layers) ? doc.layers : [])]) {
      if (!(await this.present(b.digest))) throw new BlobNotFoundError(b.digest);
    }
  }

  /**
   * Whether blob `d` is there, putting it back first if a gc killed while it had it hidden took
   * it (a leased blob the next gc would restore; a tag must not wait for that). Index lock held.
   */
  private async present(d: Digest): Promise<boolean> {
    if (await this.info(d)) return true;
    const ingest = ingestDir(this.root);
    for (const n of await readdir(ingest).catch(() => [] as string[])) {
      const m = /^(\d+)-gc-/.exec(n);
      if (!m || isProcessAlive(Number(m[1]))) continue;
      const p = join(ingest, n, `${algorithmOf(d)}-${hexOf(d)}`);
      if (await stat(p).then(() => true, () => false)) {
        await this.unhide(p, d);
        return true;
      }
      const lazy = join(ingest, n, lazyHiddenName(d));
      if (await stat(lazy).then(() => true, () => false)) {
        await this.unhideLazy(lazy, d);
        return (await this.info(d)) !== undefined;
      }
    }
    return false;
  }

  /** Digests reachable from a manifest or index (itself included), read from the store. */
  async reachable(root: Descriptor, into = new Set<Digest>()): Promise<Set<Digest>> {
    if (into.has(root.digest)) return into;
    into.add(root.digest);
    if (!(await this.info(root.digest))) return into;
    if (isIndex(root.mediaType) || isImage(root.mediaType)) {
      let doc: Manifest & Index;
      try {
        doc = JSON.parse((await this.read(root)).toString('utf8')) as Manifest & Index;
      } catch {
        return into; // a corrupt manifest keeps what it names unknown; gc must not guess
      }
      if (Array.isArray(doc.manifests)) for (const m of doc.manifests) await this.reachable(m, into);
      if (doc.config) into.add(doc.config.digest);
      if (Array.isArray(doc.layers)) for (const l of doc.layers) into.add(l.digest);
      if (doc.subject) into.add(doc.subject.digest);
    }
    return into;
  }

  /**
   * Removes blobs that no index entry reaches and no live lease holds, and what dead processes
   * left: ingest files, leases, temp files of atomic writes and lock files in the root.
   *
   * Leasing takes no lock (protect): a process leases a blob, then looks for it. So gc hides a
   * blob it means to delete (renames it into `ingest/<pid>-gc-*`) and reads the leases again: one
   * leased meanwhile may have been seen before it was hidden, and is put back. One seen after
   * was not found, and its process does without it (a cache miss) or writes it anew. A gc killed
   * in between leaves its hidden blobs to the next one, which puts back those still wanted.
   */
  async gc(opts: { keep?: Iterable<Digest> } = {}): Promise<{ removed: Digest[]; bytes: number }> {
    const removed: Digest[] = [];
    let bytes = 0;
    const ingest = ingestDir(this.root);
    await withLock(indexFile(this.root), async () => {
      const idx = await this.readIndex();
      const live = new Set<Digest>(opts.keep ?? []);
      for (const m of idx.manifests) await this.reachable(m, live);
      // Candidates are listed before the leases are read: a blob placed later is not among them,
      // and one placed earlier was leased before it was placed.
      const candidates: Digest[] = [];
      const kept = new Set<string>();
      for (const alg of await readdir(blobsDir(this.root)).catch(() => [] as string[])) {
        for (const hex of await readdir(blobAlgDir(this.root, alg))) {
          const d = `${alg}:${hex}`;
          kept.add(d);
          if (isDigest(d) && !live.has(d as Digest)) candidates.push(d as Digest);
        }
      }
      // Build layers kept unwritten (lazy.ts): a record whose blob has been written since is
      // redundant; one that no image reaches is a candidate like a blob.
      const lazyCandidates: Digest[] = [];
      for (const d of await listLazyDigests(this.root)) {
        if (kept.has(d)) await removeLazyLayer(this.root, d);
        else if (!live.has(d)) lazyCandidates.push(d);
      }
      const except = { except: this.lease.id };
      const leases = await readLiveLeases(this.root, except);
      const hidden = join(ingest, `${process.pid}-gc-${randomBytes(4).toString('hex')}`);
      const moved: { d: Digest; size: number }[] = [];
      const movedLazy: Digest[] = [];
      for (const d of lazyCandidates) {
        if (leases.blobs.has(d)) continue;
        if (moved.length + movedLazy.length === 0) await mkdir(hidden, { recursive: true });
        if (await rename(lazyLayerPath(this.root, d), join(hidden, lazyHiddenName(d))).then(() => true, () => false)) movedLazy.push(d);
      }
      for (const d of candidates) {
        if (leases.blobs.has(d)) continue;
        const p = blobPath(this.root, d);
        const st = await stat(p).catch(() => undefined);
        if (!st) continue;
        if (leases.legacySince !== undefined && st.mtimeMs >= leases.legacySince - 1000) continue;
        if (moved.length + movedLazy.length === 0) await mkdir(hidden, { recursive: true });
        if (await rename(p, join(hidden, `${algorithmOf(d)}-${hexOf(d)}`)).then(() => true, () => false)) moved.push({ d, size: st.size });
      }
      const again = moved.length + movedLazy.length > 0 ? await readLiveLeases(this.root, except) : leases;
      for (const d of movedLazy) {
        if (again.blobs.has(d)) await this.unhideLazy(join(hidden, lazyHiddenName(d)), d);
        else removed.push(d);
      }
      for (const { d, size } of moved) {
        const p = join(hidden, `${algorithmOf(d)}-${hexOf(d)}`);
        if (again.blobs.has(d)) {
          await this.unhide(p, d);
          continue;
        }
        await rm(p, { force: true });
        kept.delete(d);
        removed.push(d);
        bytes += size;
      }
      if (moved.length + movedLazy.length > 0) await rm(hidden, { recursive: true, force: true });
      // Registry source hints (<root>/remote/sources/<alg>/<hex>.json, see registry/sources.ts)
      // of blobs that are gone: one readdir per algorithm, no stat, so this stays cheap.
      const sources = sourcesDir(this.root);
      for (const alg of await readdir(sources).catch(() => [] as string[])) {
        for (const n of await readdir(join(sources, alg)).catch(() => [] as string[])) {
          if (n.endsWith('.json') && !kept.has(`${alg}:${n.slice(0, -5)}`)) await rm(join(sources, alg, n), { force: true });
        }
        await sweepTempFiles(join(sources, alg));
      }
      for (const n of await readdir(ingest).catch(() => [] as string[])) {
        const pid = Number(n.split('-')[0]);
        if (isProcessAlive(pid)) continue;
        const p = join(ingest, n);
        if (/^\d+-gc-/.test(n)) {
          // Blobs a killed gc had hidden: those an image or a live process still wants go back.
          for (const h of await readdir(p).catch(() => [] as string[])) {
            if (h.startsWith('lazy-')) {
              const ld = h.slice('lazy-'.length, -'.json'.length).replace('-', ':');
              if (isDigest(ld) && (live.has(ld as Digest) || again.blobs.has(ld))) await this.unhideLazy(join(p, h), ld as Digest);
              continue;
            }
            const d = h.replace('-', ':');
            if (isDigest(d) && (live.has(d as Digest) || again.blobs.has(d))) await this.unhide(join(p, h), d as Digest);
          }
        }
        const st = await stat(p).catch(() => undefined);
        bytes += st?.isFile() ? st.size : 0;
        await rm(p, { recursive: true, force: true });
      }
      for (const dir of [this.root, buildCacheDir(this.root), stepCacheDir(this.root), compressedCacheDir(this.root), dirname(lazyLayerPath(this.root, 'sha256:'))]) {
        await sweepTempFiles(dir);
      }
    });
    // Outside the index lock: breaking a stale index lock needs it free. (cache/mounts: the locks
    // of RUN --mount=type=cache,sharing=locked.)
    await sweepLocks(this.root);
    await sweepLocks(cacheMountsDir(this.root));
    return { removed, bytes };
  }

  /** Puts a lazy layer record gc had hidden back in place (unless one was written anew meanwhile). */
  private async unhideLazy(hiddenPath: string, d: Digest): Promise<void> {
    const to = lazyLayerPath(this.root, d);
    await mkdir(dirname(to), { recursive: true });
    if (existsSync(to) || existsSync(blobPath(this.root, d))) await rm(hiddenPath, { force: true });
    else await rename(hiddenPath, to);
  }

  /** Puts a blob gc had hidden back in place (unless it was written anew meanwhile). */
  private async unhide(hiddenPath: string, d: Digest): Promise<void> {
    if (existsSync(blobPath(this.root, d))) await rm(hiddenPath, { force: true });
    else await rename(hiddenPath, blobPath(this.root, d));
  }
}

/** A lazy layer record's name among the files a gc has hidden (`lazy-<alg>-<hex>.json`). */
function lazyHiddenName(d: Digest): string {
  return `lazy-${algorithmOf(d)}-${hexOf(d)}.json`;
}

/**
 * The full reference an index entry names. Other tools write shorter ref names into the layout
 * (`skopeo copy ... oci:<root>:tagonly` writes a bare `tagonly`, umoci a tag): such a name means
 * what it means typed on the command line, so `tagonly` is `docker.io/library/tagonly:latest`,
 * the name `images` shows and `run`, `inspect`, `tag` and `rmi` take. A name that is no
 * reference at all is kept as written.
 */
export function refOf(d: Descriptor): string | undefined {
  const raw = d.annotations?.[IMAGE_NAME_ANNOTATION] ?? d.annotations?.[REF_NAME_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    return formatReference(parseReference(raw));
  } catch {
    return raw;
  }
}


