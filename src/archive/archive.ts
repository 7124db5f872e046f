/**
 * Image archives: writing images from the store as an OCI image layout (a directory or a tar) or
 * a docker-archive (`docker save` format), and loading either tar form back into the store.
 *
 * Writing streams blob by blob from the store through verifying readers, so an archive is never
 * held in memory and a corrupt blob aborts the write (a file target is then removed, never left
 * half-written). Loading streams blobs into the store as the tar is read, checking each as a layer
 * on the way; only metadata members (index.json, manifest.json, configs: anything up to 1 MiB not
 * named by digest) are buffered. Nothing is tagged until every image of the archive is whole and
 * every layer passed the rules applying uses.
 */
import { emitEvents } from '../store/events.js';
import { createWriteStream } from 'node:fs';
import { copyFile, link, open, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { AbortedError, ImgbuildError, isImgbuildError } from '../errors.js';
import { algorithmOf, digestOf, hexOf, HashingTransform, isDigest, parseDigest, type Digest } from '../image/digest.js';
import { decompress, detectCompression, type Compression } from '../compress/compress.js';
import { ensureCompressed } from '../store/layers.js';
import { ZstdError } from '../compress/zstd.js';
import { BlobNotFoundError } from '../store/errors.js';
import { DigestMismatchError, SizeMismatchError } from '../image/errors.js';
import { imageId, type LoadedImage } from '../image/model.js';
import { loadImage, writeManifest } from '../store/images.js';
import { MediaTypes, isImage, isIndex, isLayer, layerCompression, layerMediaType } from '../image/media-types.js';
import { familiarName, familiarReference, formatReference, parseReference } from '../image/reference.js';
import type { OciStore } from '../store/store.js';
import { IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION, type Descriptor, type ImageConfig } from '../image/types.js';
import { TarFormatError } from '../tar/format.js';
import { readTar } from '../tar/reader.js';
import { LayerCheck, LayerRefusedError, checkLayerBuffer } from '../tar/check.js';
import { mayMakeDevices } from '../tar/devices.js';
import { mkdirp } from '../fs.js';

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
      await mkdirp(dirname(to));
      await rm(to, { force: true });
      await store.materialize(d.digest);
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
    await emitEvents(store.root, list.map((i) => {
      const id = imageId(i.image);
      return { type: 'image', action: 'save', id, attributes: { name: i.ref ? familiarReference(parseReference(i.ref)) : id } };
    }));
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

const BLOB_PATH = /^blobs\/([a-z0-9]+)\/([0-9a-f]+)$/;

function memberName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
}

/** The digest a `blobs/<alg>/<hex>` member name gives, if any. */
function digestNamed(path: string): Digest | undefined {
  const m = BLOB_PATH.exec(path);
  return m && isDigest(`${m[1]}:${m[2]}`) ? parseDigest(`${m[1]}:${m[2]}`) : undefined;
}

/** What reading an archive found, before any of it is trusted. */
interface Members {
  /** archive path → blob now in the store */
  stored: Map<string, { digest: Digest; size: number }>;
  /** small members (metadata, configs, legacy small layers), by archive path */
  small: Map<string, Buffer>;
  /** archive path → why the member, read as a layer, was refused (never placed in the store) */
  refused: Map<string, LayerRefusedError>;
  /**
   * blob digest → what checking it as a layer found as it was written: the compression its tar
   * was read in, or why it is no readable layer (fine for a config; a refusal for a layer). Blobs
   * the store held before the load have none (they entered it checked).
   */
  checked: Map<string, { compression: Compression } | LayerRefusedError>;
  /** The archive ended without its end-of-archive marker (a cut at a member boundary). */
  unterminated: boolean;
}

/**
 * Reads an archive's members: blobs stream into the store (verified against the digest their
 * path names) and are checked as layers while they pass, in case they are one — a member whose
 * tar entries break the rules is not placed at all; small members are kept in memory.
 */
async function readMembers(store: OciStore, raw: Readable, source: string, signal?: AbortSignal): Promise<Members> {
  const out: Members = { stored: new Map(), small: new Map(), refused: new Map(), checked: new Map(), unterminated: false };
  const input = decompress(raw, undefined, signal ? { signal } : {});
  let current: string | undefined;
  let position = 0;
  try {
    const entries = readTar(input, { ...(signal ? { signal } : {}), onEnd: (how) => void (out.unterminated = how === 'eof') });
    for await (const { header, body } of entries) {
      current = undefined;
      if (header.type !== 'file') continue;
      const name = memberName(header.name);
      current = name;
      position++;
      const named = digestNamed(name);
      if (named) {
        // leased first, so a prune running meanwhile keeps it until the tag
        const have = (await store.protect([named])).length === 0 ? await store.info(named) : undefined;
        if (have) {
          out.stored.set(name, have); // its body is skipped by the reader
          continue;
        }
      } else if (header.size <= SMALL) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c);
        out.small.set(name, Buffer.concat(chunks));
        continue;
      }
      await readBlob(store, out, name, named, header.size, body, signal);
    }
  } catch (e) {
    throw archiveError(source, e, current, position);
  }
  return out;
}

/** One blob member into the store, checked as a layer on the way (see readMembers). */
async function readBlob(
  store: OciStore, out: Members, name: string, named: Digest | undefined, size: number,
  body: AsyncIterable<Buffer>, signal?: AbortSignal,
): Promise<void> {
  const w = await store.writer(name, named ? { expected: named, total: size } : { total: size });
  // Device nodes pass where this process could make them (tar/devices.ts), as applying will.
  const check = new LayerCheck(named ?? name, undefined, { allowDevices: mayMakeDevices(), ...(signal ? { signal } : {}) });
  try {
    for await (const c of body) {
      await w.write(c);
      if (!check.write(c)) await new Promise<void>((r) => check.onceDrain(r));
    }
    // A member that is not what its name says is reported as such, whatever it holds.
    const actual = w.digest();
    if (named && actual !== named) throw new DigestMismatchError(named, actual, w.offset, `archive entry ${name}:`);
    const verdict = await check.end().then(() => undefined, (e: unknown) => e);
    if (verdict instanceof LayerRefusedError && verdict.unsafe) {
      // Never placed: a later pull or load of an image with this layer must not find it stored.
      await w.abort();
      out.refused.set(name, verdict);
      return;
    }
    if (verdict !== undefined && !(verdict instanceof LayerRefusedError)) throw verdict; // aborted
    const digest = named ?? actual;
    await w.commit(w.offset, digest);
    out.stored.set(name, { digest, size: w.offset });
    out.checked.set(digest, verdict ?? { compression: check.compression ?? 'none' });
  } catch (e) {
    check.destroy();
    await w.abort().catch(() => {});
    throw e;
  }
}

/** One line for what went wrong reading the archive itself (truncated, corrupt, not a tar). */
function archiveError(source: string, e: unknown, member: string | undefined, position: number): unknown {
  if (e instanceof AbortedError || e instanceof DigestMismatchError || e instanceof SizeMismatchError) return e;
  const where = member !== undefined ? ` in member ${member}` : position > 0 ? ` after member ${position}` : '';
  if (e instanceof TarFormatError) {
    if (/unexpected end of data/.test(e.message)) return new InvalidArchiveError(source, `truncated${where} (${e.message})`);
    return new InvalidArchiveError(source, `${e.message}${where}`);
  }
  if (e instanceof ZstdError) return new InvalidArchiveError(source, `zstd data is truncated or corrupt${where} (${e.message})`);
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new InvalidArchiveError(source, `gzip data is truncated or corrupt${where} (${(e as Error).message})`);
  }
  if (isImgbuildError(e)) return e;
  if (typeof (e as NodeJS.ErrnoException | undefined)?.syscall === 'string') return e; // the file itself: ENOENT, EISDIR…
  return new InvalidArchiveError(source, `${(e as Error)?.message ?? String(e)}${where}`);
}

/** A JSON member or blob, parsed; one line naming it when it is not JSON of the expected shape. */
function parseJsonAt<T>(data: Buffer, source: string, what: string): T {
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch (e) {
    // V8's message quotes the text, newlines and all: keep the error on one line
    throw new InvalidArchiveError(source, `${what} is not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
  }
}

/** Checks the shape of a descriptor read from the archive (digest, media type, size). */
function descriptorAt(v: unknown, source: string, what: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || typeof d.mediaType !== 'string' || typeof d.size !== 'number') {
    throw new InvalidArchiveError(source, `${what} is not a descriptor (mediaType, digest, size)`);
  }
  if (!isDigest(d.digest)) throw new InvalidArchiveError(source, `${what} has an invalid digest ${JSON.stringify(d.digest)}`);
  return d as Descriptor;
}

/**
 * Loads every image of a tar archive (gzip/zstd compressed too) into the store, in either format
 * writeArchive writes, detected from the content:
 *  - an OCI image layout (index.json + oci-layout): blobs are verified against the digest their
 *    path names;
 *  - a docker-archive (manifest.json): each layer's diffID is checked against the config's
 *    rootfs.diff_ids and a Docker schema2 manifest is written around the config as it is (so the
 *    image id stays the same).
 * Every layer's tar entries are checked against the rules applying uses (src/tar/rules.ts)
 * as it is read, and nothing is tagged unless every image of the archive is whole and passed: a
 * hostile, truncated or malformed archive loads no image (blobs already written stay for gc; a
 * refused layer is never placed). An archive holding no image is an error.
 * Names come from `io.containerd.image.name` / `org.opencontainers.image.ref.name` or RepoTags;
 * images are tagged with them, or kept untagged when they have none.
 */
export async function loadArchive(
  store: OciStore,
  raw: Readable,
  opts: { source?: string; signal?: AbortSignal } = {},
): Promise<LoadedArchiveImage[]> {
  const source = opts.source ?? 'archive';
  const check = { allowDevices: mayMakeDevices(), ...(opts.signal ? { signal: opts.signal } : {}) };
  const members = await readMembers(store, raw, source, opts.signal);
  const { stored, small, refused, checked } = members;
  const cut = members.unterminated ? ' (the archive ends without its end-of-archive marker: truncated?)' : '';

  /** The blob an archive path holds, put into the store if it was kept in memory. */
  const blobAt = async (path: string, mediaType: string, expected?: string): Promise<Descriptor> => {
    const p = memberName(path);
    const no = refused.get(p);
    if (no) throw no;
    let got = stored.get(p);
    if (!got) {
      const data = small.get(p);
      if (!data) {
        if (expected && isDigest(expected)) {
          const d = parseDigest(expected);
          const info = (await store.protect([d])).length === 0 ? await store.info(d) : undefined;
          if (info) return { mediaType, digest: info.digest, size: info.size };
        }
        throw new InvalidArchiveError(source, `missing member ${p}${cut}`);
      }
      const named = digestNamed(p);
      if (named) {
        const actual = digestOf(data);
        if (actual !== named) throw new DigestMismatchError(named, actual, data.length, `archive entry ${p}:`);
      }
      if (layerCompression(mediaType) !== undefined) {
        // a small layer kept in memory (docker-archive member): checked before it is stored
        const c = detectCompression(data);
        await checkLayerBuffer(data, p, c, check);
        checked.set(digestOf(data), { compression: c });
      }
      const d = await store.put(data, mediaType);
      got = { digest: d.digest, size: d.size };
      stored.set(p, got);
    }
    if (expected !== undefined && got.digest !== expected) throw new DigestMismatchError(expected, got.digest, got.size, `archive entry ${p}:`);
    return { mediaType, digest: parseDigest(got.digest), size: got.size };
  };
  /**
   * A layer's verdict: refused when its check failed, or when it is compressed otherwise than its
   * media type says (unpacking reads it as the media type says). Layers the store held before the
   * load were checked when they entered it.
   */
  const layerChecked = (d: Descriptor, path: string, declared?: Compression): Compression | undefined => {
    const v = checked.get(d.digest);
    if (v === undefined) return undefined;
    if (v instanceof LayerRefusedError) throw v;
    if (declared !== undefined && declared !== v.compression) {
      throw new LayerRefusedError(path, new Error(`its media type ${d.mediaType} says ${declared}, but the blob is ${v.compression === 'none' ? 'uncompressed' : v.compression}`));
    }
    return v.compression;
  };
  /** Checks a descriptor's blob is in the store with its size (after pulling it from the archive). */
  const need = async (desc: Descriptor): Promise<void> => {
    const got = await blobAt(blobPathIn(desc.digest), desc.mediaType, desc.digest).catch((e: unknown) => {
      if (e instanceof InvalidArchiveError) throw new BlobNotFoundError(`${desc.digest} (archive has no ${blobPathIn(desc.digest)})${cut}`);
      throw e;
    });
    if (desc.size >= 0 && got.size !== desc.size) throw new SizeMismatchError(desc.size, got.size, desc.digest);
    if (isLayer(desc.mediaType)) layerChecked(desc, desc.digest, layerCompression(desc.mediaType));
  };

  const results: { desc: Descriptor; names: string[] }[] = [];
  if (small.has('index.json')) {
    const index = parseJsonAt<{ manifests?: unknown }>(small.get('index.json')!, source, 'index.json');
    if (typeof index !== 'object' || index === null || !Array.isArray(index.manifests)) throw new InvalidArchiveError(source, 'index.json has no "manifests" array');
    const manifests = index.manifests.map((m, i) => descriptorAt(m, source, `index.json entry ${i}`));
    if (manifests.length === 0) throw new InvalidArchiveError(source, 'it holds no images (index.json lists no manifests)');
    const walk = async (desc: Descriptor, depth: number): Promise<void> => {
      await need(desc);
      const doc = parseJsonAt<{ manifests?: unknown[]; config?: unknown; layers?: unknown[] }>(await store.read(desc), source, `manifest ${desc.digest}`);
      if (isIndex(desc.mediaType) && Array.isArray(doc.manifests) && depth < 4) {
        // Other platforms' manifests may be left out of an archive; the host's must be there.
        for (const [i, v] of doc.manifests.entries()) {
          const m = descriptorAt(v, source, `index ${desc.digest} entry ${i}`);
          if (stored.has(blobPathIn(m.digest)) || small.has(blobPathIn(m.digest))) await walk(m, depth + 1);
        }
      } else if (isImage(desc.mediaType) || doc.config) {
        if (!doc.config || !Array.isArray(doc.layers)) throw new InvalidArchiveError(source, `manifest ${desc.digest} has no config or layers`);
        await need(descriptorAt(doc.config, source, `manifest ${desc.digest} config`));
        for (const [i, l] of doc.layers.entries()) await need(descriptorAt(l, source, `manifest ${desc.digest} layer ${i}`));
      }
    };
    for (const m of manifests) {
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
    const entries = parseJsonAt<{ Config?: unknown; RepoTags?: unknown; Layers?: unknown }[]>(small.get('manifest.json')!, source, 'manifest.json');
    if (!Array.isArray(entries)) throw new InvalidArchiveError(source, 'manifest.json is not an array');
    if (entries.length === 0) throw new InvalidArchiveError(source, 'it holds no images (manifest.json lists none)');
    for (const [i, e] of entries.entries()) {
      if (typeof e !== 'object' || e === null || typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
        throw new InvalidArchiveError(source, `manifest.json entry ${i} lacks Config or Layers`);
      }
      if (e.RepoTags != null && (!Array.isArray(e.RepoTags) || !e.RepoTags.every((t) => typeof t === 'string'))) {
        throw new InvalidArchiveError(source, `manifest.json entry ${i} has RepoTags that are not a list of names`);
      }
      const layerPaths = e.Layers as string[];
      const configDesc = await blobAt(e.Config, MediaTypes.DOCKER_CONFIG);
      const config = parseJsonAt<ImageConfig>(await store.read(configDesc), source, `config ${e.Config}`);
      const diffIds = config?.rootfs?.diff_ids ?? [];
      if (!Array.isArray(diffIds) || diffIds.length !== layerPaths.length) {
        throw new InvalidArchiveError(source, `${e.Config} lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids but manifest.json names ${layerPaths.length} layers`);
      }
      const layers: Descriptor[] = [];
      for (const [j, lp] of layerPaths.entries()) {
        const d = await blobAt(lp, MediaTypes.DOCKER_LAYER);
        const c = layerChecked(d, memberName(lp)) ?? (await compressionOf(store, d));
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
      const names = ((e.RepoTags as string[] | null | undefined) ?? []).map((t) => formatReference(parseReference(t)));
      results.push({ desc, names });
    }
  } else {
    throw new InvalidArchiveError(source, `neither index.json (OCI layout) nor manifest.json (docker-archive) found${cut}`);
  }

  const out: LoadedArchiveImage[] = [];
  for (const r of results) {
    if (r.names.length === 0) await store.keepUntagged(r.desc);
    for (const n of r.names) await store.tag(n, r.desc);
    out.push({ descriptor: r.desc, names: r.names, id: imageId(await loadImage(store, r.desc)) });
  }
  await emitEvents(store.root, out.map((r) => ({ type: 'image', action: 'load', id: r.id, attributes: { name: r.names[0] ? familiarReference(parseReference(r.names[0])) : r.id } })));
  return out;
}

/** A stored blob's compression, from its first bytes. */
async function compressionOf(store: OciStore, d: Descriptor): Promise<Compression> {
  // A build layer kept unwritten (store/lazy.ts) is an uncompressed tar.
  if ((await store.info(d.digest))?.lazy) return 'none';
  const fh = await open(store.blobPath(d.digest), 'r');
  const head = Buffer.alloc(16);
  try {
    await fh.read(head, 0, 16, 0);
  } finally {
    await fh.close();
  }
  return detectCompression(head);
}
