/**
 * Image archives: writing images from the store as an OCI image layout (a directory or a tar) or
 * a docker-archive (`docker save` format), and loading either tar form back into the store.
 *
 * Writing streams blob by blob from the store through verifying readers, so an archive is never
 * held in memory and a corrupt blob aborts the write (a file target is then removed, never left
 * half-written). Loading streams blobs into the store as the tar is read; only metadata members
 * (index.json, manifest.json, configs: anything up to 1 MiB not named by digest) are buffered.
 */
import { createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ImgbuildError, isImgbuildError } from '../errors.js';
import { algorithmOf, digestOf, hexOf, HashingTransform, isDigest, parseDigest, type Digest } from './digest.js';
import { decompress, detectCompression, ensureCompressed } from './compress.js';
import { BlobNotFoundError, DigestMismatchError, SizeMismatchError } from './errors.js';
import { imageId, loadImage, writeManifest, type LoadedImage } from './image.js';
import { MediaTypes, isImage, isIndex, layerCompression, layerMediaType } from './media-types.js';
import { familiarName, familiarReference, formatReference, parseReference } from './reference.js';
import type { OciStore } from './store.js';
import { IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION, type Descriptor, type ImageConfig } from './types.js';

export class InvalidArchiveError extends ImgbuildError {
  constructor(readonly source: string, reason: string) {
    super('INVALID_ARGUMENT', `invalid image archive ${source}: ${reason}`);
    this.name = 'InvalidArchiveError';
  }
}

/** One image to archive, and the full reference it is saved under (none: saved without a name). */
export interface ArchiveImage {
  image: Pick<LoadedImage, 'descriptor' | 'rawManifest' | 'manifest'>;
  ref?: string;
}

export interface ArchiveOptions {
  /** `oci` (default): an OCI image layout; `docker`: a docker-archive (manifest.json, plain layer tars). */
  format?: 'oci' | 'docker';
  /**
   * What `org.opencontainers.image.ref.name` holds in index.json: the full reference (default,
   * what `load` reads back) or only its tag (the form `skopeo oci:DIR:TAG` looks up).
   * `io.containerd.image.name` always holds the full reference.
   */
  refName?: 'reference' | 'tag';
  /** docker format only: also write oci-layout and index.json, as `docker save` does since Docker 25. */
  ociLayout?: boolean;
  signal?: AbortSignal;
}

const MTIME = new Date(0);
const LAYOUT = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

function blobPathIn(d: string): string {
  return `blobs/${algorithmOf(d as Digest)}/${hexOf(d as Digest)}`;
}

/** index.json for images: one entry per (image, name), annotated with the name. */
function indexJson(images: readonly ArchiveImage[], refName: 'reference' | 'tag'): Buffer {
  const manifests = images.map(({ image: { descriptor: d }, ref }) => {
    const entry: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
    if (ref !== undefined) {
      const name = refName === 'tag' ? parseReference(ref).tag ?? 'latest' : ref;
      entry.annotations = { [IMAGE_NAME_ANNOTATION]: ref, [REF_NAME_ANNOTATION]: name };
    }
    return entry;
  });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OCI_INDEX, manifests }));
}

/** Drops repeats of the same (manifest, name) pair, keeping the first. */
function unique(images: readonly ArchiveImage[]): ArchiveImage[] {
  const out: ArchiveImage[] = [];
  for (const x of images) {
    if (!out.some((y) => y.image.descriptor.digest === x.image.descriptor.digest && y.ref === x.ref)) out.push(x);
  }
  return out;
}

/**
 * Writes images as an OCI image layout directory at `dir` (created if missing). Blobs are hard
 * links into the store where the filesystem allows, copies otherwise.
 */
export async function writeOciLayout(store: OciStore, images: readonly ArchiveImage[], dir: string, opts: Pick<ArchiveOptions, 'refName'> = {}): Promise<void> {
  const list = unique(images);
  const done = new Set<string>();
  for (const { image } of list) {
    for (const d of [image.descriptor, image.manifest.config, ...image.manifest.layers]) {
      const name = blobPathIn(d.digest);
      if (done.has(name)) continue;
      done.add(name);
      const to = join(dir, name);
      await mkdir(dirname(to), { recursive: true });
      await rm(to, { force: true });
      await link(store.blobPath(d.digest), to).catch(() => copyFile(store.blobPath(d.digest), to));
    }
  }
  await writeFile(join(dir, 'oci-layout'), LAYOUT);
  await writeFile(join(dir, 'index.json'), indexJson(list, opts.refName ?? 'reference'));
}

/**
 * Streams images as a tar archive into `out` (ended at the end unless `end: false`, e.g. for
 * stdout). Every blob is written once, read through the store's verifying reader.
 */
export async function writeArchive(
  store: OciStore,
  images: readonly ArchiveImage[],
  out: Writable,
  opts: ArchiveOptions & { end?: boolean } = {},
): Promise<void> {
  const format = opts.format ?? 'oci';
  const list = unique(images);
  const pack = tar.pack();
  const piped = pipeline(pack, out, { end: opts.end ?? true, ...(opts.signal ? { signal: opts.signal } : {}) });
  piped.catch(() => {}); // awaited below; avoid an unhandled rejection while entries are written

  const addBuffer = (name: string, data: Buffer): Promise<void> =>
    new Promise((res, rej) => pack.entry({ name, size: data.length, mode: 0o644, mtime: MTIME }, data, (e) => (e ? rej(e) : res())));
  const addDir = (name: string): Promise<void> =>
    new Promise((res, rej) => pack.entry({ name, type: 'directory', mode: 0o755, mtime: MTIME }, (e) => (e ? rej(e) : res())));
  const addStream = async (name: string, size: number, src: Readable): Promise<void> => {
    let cbErr: Error | null | undefined;
    const done = new Promise<void>((res, rej) => {
      const entry = pack.entry({ name, size, mode: 0o644, mtime: MTIME }, (e) => {
        cbErr = e;
        if (e) rej(e);
        else res();
      });
      pipeline(src, entry).catch(rej);
    });
    await done;
    if (cbErr) throw cbErr;
  };
  const written = new Set<string>();
  const dirs = new Set<string>();
  const blobName = async (d: string): Promise<string> => {
    for (const dir of ['blobs/', `blobs/${algorithmOf(d as Digest)}/`]) {
      if (!dirs.has(dir)) {
        dirs.add(dir);
        await addDir(dir);
      }
    }
    return blobPathIn(d);
  };
  const addBlob = async (desc: Pick<Descriptor, 'digest' | 'size'>): Promise<string> => {
    const name = await blobName(desc.digest);
    if (written.has(name)) return name;
    written.add(name);
    await addStream(name, desc.size, await store.reader(desc));
    return name;
  };
  /** The image's own blobs: config, layers as stored, and the manifest's raw bytes. */
  const addImage = async (image: ArchiveImage['image']): Promise<void> => {
    await addBlob(image.manifest.config);
    for (const l of image.manifest.layers) await addBlob(l);
    const mname = await blobName(image.descriptor.digest);
    if (!written.has(mname)) {
      written.add(mname);
      await addBuffer(mname, image.rawManifest);
    }
  };

  try {
    if (format === 'oci') {
      await addBuffer('oci-layout', LAYOUT);
      for (const { image } of list) await addImage(image);
      await addBuffer('index.json', indexJson(list, opts.refName ?? 'reference'));
    } else {
      // One entry per image, with all the names it was saved under (as docker save writes).
      const entries: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
      const repositories: Record<string, Record<string, string>> = {};
      for (const { image, ref } of list) {
        const configName = await addBlob(image.manifest.config);
        const layerNames: string[] = [];
        for (const l of image.manifest.layers) {
          // docker-archive layers are plain tars named by their diffID.
          const plain = layerCompression(l.mediaType) === 'none' ? l : await ensureCompressed(store, l, 'none', { format: 'docker', ...(opts.signal ? { signal: opts.signal } : {}) });
          layerNames.push(await addBlob(plain));
        }
        if (opts.ociLayout) await addImage(image);
        const repoTags: string[] = [];
        if (ref !== undefined) {
          const r = parseReference(ref);
          repoTags.push(familiarReference(r));
          (repositories[familiarName(r)] ??= {})[r.tag ?? 'latest'] = hexOf(imageId(image));
        }
        const same = entries.find((e) => e.Config === configName);
        if (same) {
          for (const t of repoTags) if (!(same.RepoTags ??= []).includes(t)) same.RepoTags.push(t);
        } else {
          entries.push({ Config: configName, RepoTags: repoTags.length ? repoTags : null, Layers: layerNames });
        }
      }
      await addBuffer('manifest.json', Buffer.from(JSON.stringify(entries)));
      if (Object.keys(repositories).length) await addBuffer('repositories', Buffer.from(JSON.stringify(repositories)));
      if (opts.ociLayout) {
        await addBuffer('oci-layout', LAYOUT);
        await addBuffer('index.json', indexJson(list, opts.refName ?? 'reference'));
      }
    }
    pack.finalize();
    await piped;
  } catch (e) {
    pack.destroy();
    await piped.catch(() => {});
    throw e;
  }
}

/**
 * writeArchive into the file `path`: written under a temporary name in the same directory and
 * renamed into place at the end, so a failed write leaves no partial archive behind.
 */
export async function writeArchiveFile(store: OciStore, images: readonly ArchiveImage[], path: string, opts: ArchiveOptions = {}): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeArchive(store, images, createWriteStream(tmp, { flags: 'wx' }), opts);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Archive members kept in memory (metadata and configs); anything larger streams into the store. */
const SMALL = 1 << 20;

export interface LoadedArchiveImage {
  /** The manifest (or index) descriptor now in the store. */
  descriptor: Descriptor;
  /** Full references it was tagged with; empty when the archive named none (kept untagged). */
  names: string[];
  /** The image id (config digest of the host platform's image). */
  id: Digest;
}

/**
 * Loads every image of a tar archive (gzip/zstd compressed too) into the store, in either format
 * writeArchive writes, detected from the content:
 *  - an OCI image layout (index.json + oci-layout): blobs are verified against the digest their
 *    path names;
 *  - a docker-archive (manifest.json): each layer's diffID is checked against the config's
 *    rootfs.diff_ids and a Docker schema2 manifest is written around the config as it is (so the
 *    image id stays the same).
 * Names come from `io.containerd.image.name` / `org.opencontainers.image.ref.name` or RepoTags;
 * images are tagged with them, or kept untagged when they have none.
 */
export async function loadArchive(
  store: OciStore,
  raw: Readable,
  opts: { source?: string; signal?: AbortSignal } = {},
): Promise<LoadedArchiveImage[]> {
  const source = opts.source ?? 'archive';
  const input = decompress(raw);

  /** archive path → blob now in the store */
  const stored = new Map<string, { digest: string; size: number }>();
  const small = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
    const done = (e?: unknown): void => (e ? extract.destroy(e as Error) : next());
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      stream.on('end', () => done()).resume();
      return;
    }
    const size = header.size ?? 0;
    const m = /^blobs\/([a-z0-9]+)\/([0-9a-f]+)$/.exec(name);
    const named = m && isDigest(`${m[1]}:${m[2]}`) ? parseDigest(`${m[1]}:${m[2]}`) : undefined;
    (async () => {
      if (named && (await store.info(named))) {
        stream.resume();
        await new Promise<void>((res) => stream.on('end', () => res()));
        stored.set(name, { digest: named, size: (await store.info(named))!.size });
        return;
      }
      if (!named && size <= SMALL) {
        const chunks: Buffer[] = [];
        for await (const c of stream) chunks.push(c as Buffer);
        small.set(name, Buffer.concat(chunks));
        return;
      }
      const w = await store.writer(name, named ? { expected: named, total: size } : { total: size });
      try {
        for await (const c of stream) await w.write(c as Buffer);
        // A member named by digest is verified against that name at commit; others are named by what they hash to.
        const digest = named ?? w.digest();
        try {
          await w.commit(w.offset, digest);
        } catch (e) {
          if (e instanceof DigestMismatchError) throw new DigestMismatchError(e.expected, e.actual, e.size, `archive entry ${name}:`);
          throw e;
        }
        stored.set(name, { digest, size: w.offset });
      } catch (e) {
        await w.abort();
        throw e;
      }
    })().then(() => done(), done);
  });
  try {
    await pipeline(input, extract, opts.signal ? { signal: opts.signal } : {});
  } catch (e) {
    if (isImgbuildError(e)) throw e;
    throw new InvalidArchiveError(source, (e as Error).message);
  }

  /** The blob an archive path holds, put into the store if it was kept in memory. */
  const blobAt = async (path: string, mediaType: string, expected?: string): Promise<Descriptor> => {
    const p = path.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
    let got = stored.get(p);
    if (!got) {
      const data = small.get(p);
      if (!data) {
        if (expected && isDigest(expected)) {
          const info = await store.info(parseDigest(expected));
          if (info) return { mediaType, digest: info.digest, size: info.size };
        }
        throw new InvalidArchiveError(source, `missing member ${p}`);
      }
      const m = /^blobs\/([a-z0-9]+)\/([0-9a-f]+)$/.exec(p);
      if (m) {
        const actual = digestOf(data);
        if (actual !== `${m[1]}:${m[2]}`) throw new DigestMismatchError(`${m[1]}:${m[2]}`, actual, data.length, `archive entry ${p}:`);
      }
      const d = await store.put(data, mediaType);
      got = { digest: d.digest, size: d.size };
      stored.set(p, got);
    }
    if (expected !== undefined && got.digest !== expected) throw new DigestMismatchError(expected, got.digest, got.size, `archive entry ${p}:`);
    return { mediaType, digest: parseDigest(got.digest), size: got.size };
  };
  /** Checks a descriptor's blob is in the store with its size (after pulling it from the archive). */
  const need = async (desc: Descriptor): Promise<void> => {
    const got = await blobAt(blobPathIn(desc.digest), desc.mediaType, desc.digest).catch((e: unknown) => {
      if (e instanceof InvalidArchiveError) throw new BlobNotFoundError(`${desc.digest} (archive has no ${blobPathIn(desc.digest)})`);
      throw e;
    });
    if (desc.size >= 0 && got.size !== desc.size) throw new SizeMismatchError(desc.size, got.size, desc.digest);
  };

  const results: { desc: Descriptor; names: string[] }[] = [];
  if (small.has('index.json')) {
    let index: { manifests?: Descriptor[] };
    try {
      index = JSON.parse(small.get('index.json')!.toString('utf8')) as typeof index;
    } catch (e) {
      throw new InvalidArchiveError(source, `index.json is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(index.manifests)) throw new InvalidArchiveError(source, 'index.json has no "manifests" array');
    const walk = async (desc: Descriptor, depth: number): Promise<void> => {
      await need(desc);
      const doc = JSON.parse((await store.read(desc)).toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
      if (isIndex(desc.mediaType) && Array.isArray(doc.manifests) && depth < 4) {
        // Other platforms' manifests may be left out of an archive; the host's must be there.
        for (const m of doc.manifests) {
          if (stored.has(blobPathIn(m.digest)) || small.has(blobPathIn(m.digest))) await walk(m, depth + 1);
        }
      } else if (isImage(desc.mediaType) || doc.config) {
        if (!doc.config || !Array.isArray(doc.layers)) throw new InvalidArchiveError(source, `manifest ${desc.digest} has no config or layers`);
        await need(doc.config);
        for (const l of doc.layers) await need(l);
      }
    };
    for (const m of index.manifests) {
      await walk(m, 0);
      await loadImage(store, m); // host platform present and readable
      const names: string[] = [];
      for (const key of [IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION]) {
        const v = m.annotations?.[key];
        // A bare tag ("latest", as some tools write) names no repository; keep the image untagged.
        if (v && (v.includes('/') || v.includes(':'))) {
          try {
            names.push(formatReference(parseReference(v)));
            break;
          } catch {
            // not a reference; ignore
          }
        }
      }
      results.push({ desc: { mediaType: m.mediaType, digest: m.digest, size: m.size }, names });
    }
  } else if (small.has('manifest.json')) {
    let entries: { Config?: string; RepoTags?: string[] | null; Layers?: string[] }[];
    try {
      entries = JSON.parse(small.get('manifest.json')!.toString('utf8')) as typeof entries;
    } catch (e) {
      throw new InvalidArchiveError(source, `manifest.json is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(entries)) throw new InvalidArchiveError(source, 'manifest.json is not an array');
    for (const [i, e] of entries.entries()) {
      if (typeof e.Config !== 'string' || !Array.isArray(e.Layers)) throw new InvalidArchiveError(source, `manifest.json entry ${i} lacks Config or Layers`);
      const configDesc = await blobAt(e.Config, MediaTypes.DOCKER_CONFIG);
      const config = JSON.parse((await store.read(configDesc)).toString('utf8')) as ImageConfig;
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== e.Layers.length) {
        throw new InvalidArchiveError(source, `${e.Config} lists ${diffIds.length} diff_ids but manifest.json names ${e.Layers.length} layers`);
      }
      const layers: Descriptor[] = [];
      for (const [j, lp] of e.Layers.entries()) {
        const d = await blobAt(lp, MediaTypes.DOCKER_LAYER);
        const fh = await open(store.blobPath(d.digest), 'r');
        const head = Buffer.alloc(16);
        try {
          await fh.read(head, 0, 16, 0);
        } finally {
          await fh.close();
        }
        const c = detectCompression(head);
        let diffId = d.digest as string;
        if (c !== 'none') {
          const h = new HashingTransform();
          await pipeline(decompress(await store.reader(d), c), h, async function* (src) {
            for await (const _ of src) { /* hash only */ }
          });
          diffId = h.result().digest;
        }
        if (diffId !== diffIds[j]) throw new DigestMismatchError(String(diffIds[j]), diffId, d.size, `layer ${lp} diff_id`);
        layers.push({ ...d, mediaType: layerMediaType(c, 'docker') });
      }
      const desc = await writeManifest(store, configDesc, layers, { format: 'docker' });
      const names = (e.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
      results.push({ desc, names });
    }
  } else {
    throw new InvalidArchiveError(source, 'neither index.json (OCI layout) nor manifest.json (docker-archive) found');
  }

  const out: LoadedArchiveImage[] = [];
  for (const r of results) {
    if (r.names.length === 0) await store.keepUntagged(r.desc);
    for (const n of r.names) await store.tag(n, r.desc);
    out.push({ descriptor: r.desc, names: r.names, id: imageId(await loadImage(store, r.desc)) });
  }
  return out;
}
