/**
 * Pull: resolve a reference to a manifest (choosing a platform from an OCI index or Docker manifest
 * list), fetch config and layers concurrently into resumable ingest files, verify every byte against
 * its digest, check every new layer's tar entries against the rules applying uses, and only then
 * make the blobs visible, write the manifest and tag it. A failure leaves `blobs/` and `index.json`
 * as they were; verified or partial downloads stay in `ingest/` so that the next pull resumes them
 * (a refused layer's are deleted).
 *
 * A layer already in the store is not checked again: layers enter the store checked (pull and load
 * never place a refused one), made by imgbuild itself (build, commit), or as a tar the user
 * imported. Applying enforces the rules in any case.
 */
import { emitEvent } from '../store/events.js';
import { addRepoDigest } from '../store/repo-digests.js';
import pLimit from 'p-limit';
import { createHasher, parseDigest, type Digest } from '../image/digest.js';
import { isImage, isIndex, isLayer, isConfig, layerCompression, MediaTypes } from '../image/media-types.js';
import { familiarName, familiarReference, formatReference, parseReference, repositoryName, type Reference } from '../image/reference.js';
import { OciStore, type StoreOpening } from '../store/store.js';
import type { Descriptor, Index, Manifest, Platform } from '../image/types.js';
import { DigestMismatchError, UnsupportedMediaTypeError } from '../image/errors.js';
import { PlatformNotFoundError } from '../image/platform.js';
import { AbortedError, ImgbuildError, throwIfAborted } from '../errors.js';
import { parsePlatform, formatPlatform as platformString } from '../image/platform.js';
import { platformMatches } from '../image/model.js';
import { Keychain, type Authenticator } from './auth.js';
import { ProtocolError, RegistryError, describeNetworkError } from './errors.js';
import { Ingest, stageBlob, type IngestTap } from '../store/ingest.js';
import { LayerCheck, LayerRefusedError, checkLayerFile } from '../tar/check.js';
import { mayMakeDevices } from '../tar/devices.js';
import { recordSources } from './sources.js';
import { BlobMeter, type PullEvent } from './progress.js';
import type { RetryPolicy } from './retry.js';
import { RegistrySession, repositoryScope, responseHeader, type RegistryClient } from './transport.js';

/** Manifests larger than this are refused (ggcr and containerd use the same 4 MiB bound). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export const MANIFEST_ACCEPT = [
  MediaTypes.OCI_INDEX,
  MediaTypes.OCI_MANIFEST,
  MediaTypes.DOCKER_MANIFEST_LIST,
  MediaTypes.DOCKER_MANIFEST,
].join(', ');

export interface RemoteOptions {
  insecure?: boolean;
  signal?: AbortSignal;
  /** Credentials; default: the docker keychain read with `env`. */
  auth?: Authenticator;
  env?: NodeJS.ProcessEnv;
  /** Reuse ping results, tokens and connections across operations. */
  session?: RegistrySession;
}

export interface PullOptions extends RemoteOptions {
  /** Platform to select from an index (default linux/amd64); a string `os/arch[/variant]` is accepted. */
  platform?: Platform | string;
  onProgress?: (e: PullEvent) => void;
  /** Parallel blob downloads (default 6, as skopeo). */
  concurrency?: number;
}

export class ManifestTooLargeError extends ImgbuildError {
  constructor(readonly ref: string, readonly size: number) {
    super('FAILED_PRECONDITION', `manifest of ${ref} is larger than ${MAX_MANIFEST_SIZE} bytes (${size}); refused`);
    this.name = 'ManifestTooLargeError';
  }
}

/** Picks the index entry for a platform (attestation manifests never match). */
export function selectPlatform(index: Index, want: Platform): Descriptor | undefined {
  return index.manifests.find(
    (m) => m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' && platformMatches(m.platform, want),
  );
}

/** The session an operation uses: the caller's, or a fresh one with the docker keychain. */
export function sessionFor(o: RemoteOptions): { session: RegistrySession; owned: boolean } {
  if (o.session) return { session: o.session, owned: false };
  return {
    session: new RegistrySession({
      auth: o.auth ?? new Keychain(o.env ? { env: o.env } : {}),
      insecure: Boolean(o.insecure),
      ...(o.env ? { env: o.env } : {}),
    }),
    owned: true,
  };
}

export interface FetchedManifest {
  descriptor: Descriptor;
  raw: Buffer;
  doc: Manifest & Index;
}

/**
 * GETs a manifest by tag or digest, bounded to MAX_MANIFEST_SIZE, and checks its digest against
 * the reference's digest or the registry's `Docker-Content-Digest`.
 */
export async function fetchManifest(client: RegistryClient, repo: string, refOrDigest: string, o: { signal?: AbortSignal; displayRef: string; expected?: Digest }): Promise<FetchedManifest> {
  const res = await client.request({
    method: 'GET',
    path: `/v2/${repo}/manifests/${refOrDigest}`,
    scopes: [repositoryScope(repo, ['pull'])],
    headers: { accept: MANIFEST_ACCEPT },
    expect: [200],
    what: `GET manifest ${o.displayRef}`,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const declared = Number(responseHeader(res.headers, 'content-length'));
  if (Number.isFinite(declared) && declared > MAX_MANIFEST_SIZE) {
    res.body.destroy();
    throw new ManifestTooLargeError(o.displayRef, declared);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > MAX_MANIFEST_SIZE) {
      res.body.destroy();
      throw new ManifestTooLargeError(o.displayRef, n);
    }
    chunks.push(c as Buffer);
  }
  const raw = Buffer.concat(chunks);
  const h = createHasher('sha256');
  h.update(raw);
  const actual = h.digest();
  const expected = o.expected;
  if (expected) {
    const he = createHasher(expected.startsWith('sha512:') ? 'sha512' : 'sha256');
    he.update(raw);
    const a2 = he.digest();
    if (a2 !== expected) throw new DigestMismatchError(expected, a2, raw.length, `manifest of ${o.displayRef}`);
  } else {
    const dcd = responseHeader(res.headers, 'docker-content-digest');
    if (dcd && dcd.startsWith('sha256:') && dcd !== actual) throw new DigestMismatchError(dcd, actual, raw.length, `manifest of ${o.displayRef} (Docker-Content-Digest)`);
  }
  let doc: Manifest & Index;
  try {
    doc = JSON.parse(raw.toString('utf8')) as Manifest & Index;
  } catch (e) {
    throw new ProtocolError(`manifest of ${o.displayRef} is not valid JSON`, { cause: e });
  }
  if (typeof doc !== 'object' || doc === null) throw new ProtocolError(`manifest of ${o.displayRef} is not a JSON object`);
  const contentType = (responseHeader(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
  let mediaType = doc.mediaType ?? contentType;
  if (!doc.mediaType) {
    // OCI manifests may omit mediaType; tell them apart by shape
    if (!isImage(mediaType) && !isIndex(mediaType)) mediaType = Array.isArray(doc.manifests) ? MediaTypes.OCI_INDEX : MediaTypes.OCI_MANIFEST;
  }
  if ((doc as { schemaVersion?: number }).schemaVersion === 1 || mediaType.includes('distribution.manifest.v1')) {
    throw new UnsupportedMediaTypeError(mediaType || 'schema1', 'manifest type (Docker schema 1 is deprecated)');
  }
  if (!isImage(mediaType) && !isIndex(mediaType)) throw new UnsupportedMediaTypeError(mediaType, 'manifest type');
  return { descriptor: { mediaType, digest: expected ?? actual, size: raw.length }, raw, doc };
}

export function validateManifest(m: Manifest, ref: string): void {
  if (!m.config || typeof m.config.digest !== 'string' || !Array.isArray(m.layers)) {
    throw new ProtocolError(`manifest of ${ref} has no config or layers`);
  }
  parseDigest(m.config.digest);
  if (!isConfig(m.config.mediaType)) throw new UnsupportedMediaTypeError(m.config.mediaType, 'config type');
  for (const l of m.layers) {
    parseDigest(l.digest);
    if (!isLayer(l.mediaType)) throw new UnsupportedMediaTypeError(l.mediaType, 'layer type');
    if (!Number.isSafeInteger(l.size) || l.size < 0) throw new ProtocolError(`manifest of ${ref}: layer ${l.digest} has invalid size ${l.size}`);
  }
}

/**
 * Downloads one blob into a resumable ingest of the store and verifies it; returns the ingest for
 * the caller to place once everything has arrived. Broken transfers continue with a Range request.
 *
 * A layer (`check` given) is checked as it arrives: decompressed and its tar entries held to the
 * rules applying uses (src/tar/check.ts), so the check costs the transfer no read-back. Its
 * verdict counts once the bytes are verified (a refusal of bytes that do not match the digest would
 * blame the image for a corrupt transfer), and a refused layer fails the pull before anything is
 * placed. The check follows the bytes from the first one; when a download does not continue exactly
 * where it has got to (a partial left by another process, a server that ignored the Range), the
 * verified file is checked instead. A refused layer's download is deleted, never kept for a resume.
 */
export async function downloadBlob(
  root: string,
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  meter: BlobMeter,
  retry: RetryPolicy,
  signal?: AbortSignal,
  check?: LayerCheck,
): Promise<Ingest> {
  const ing = await Ingest.resumable(root, desc.digest, desc.size);
  let streaming = check !== undefined;
  try {
    await fetchInto(ing, client, repo, desc, meter, retry, signal, (base) => {
      if (streaming && check!.fed !== base) streaming = false;
      return streaming ? check : undefined;
    });
    meter.phase('verifying', desc.size);
    await ing.verify();
    if (check) {
      if (streaming && check.fed === desc.size) await check.end();
      else {
        check.destroy();
        await checkLayerFile(ing.path, desc.digest, layerCompression(desc.mediaType), { allowDevices: mayMakeDevices(), ...(signal ? { signal } : {}) });
      }
    }
    await ing.sync();
  } catch (e) {
    check?.destroy();
    if (e instanceof LayerRefusedError) await ing.discard().catch(() => {});
    throw e;
  }
  return ing;
}

/**
 * The transfer part of downloadBlob; `tapAt(offset)` gives the tap for a request continuing at
 * `offset`. Each attempt continues where the file on disk ends, and one that got bytes before it
 * failed does not use up the session's attempts (retry.ts).
 */
async function fetchInto(
  ing: Ingest,
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  meter: BlobMeter,
  retry: RetryPolicy,
  signal: AbortSignal | undefined,
  tapAt: (offset: number) => IngestTap | undefined,
): Promise<void> {
  let startedAt = 0;
  const once = async (): Promise<void> => {
    for (;;) {
      throwIfAborted(signal);
      let offset = await ing.offset();
      if (offset > desc.size) {
        await ing.reset();
        offset = 0;
      }
      if (offset === desc.size) return;
      startedAt = offset;
      let res;
      try {
        res = await client.request({
          method: 'GET',
          path: `/v2/${repo}/blobs/${desc.digest}`,
          scopes: [repositoryScope(repo, ['pull'])],
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          expect: [200, 206],
          what: `GET blob ${desc.digest}`,
          retry: false, // retried here, where a retry resumes
          ...(signal ? { signal } : {}),
        });
      } catch (e) {
        if (offset > 0 && e instanceof RegistryError && e.status === 416) {
          await ing.reset(); // the registry will not serve that range: start over
          continue;
        }
        throw e;
      }
      let base = offset;
      if (res.status === 206) {
        const cr = /^bytes (\d+)-/.exec(responseHeader(res.headers, 'content-range') ?? '');
        if (!cr || Number(cr[1]) !== offset) {
          res.body.destroy();
          throw new ProtocolError(`GET blob ${desc.digest}: asked for bytes ${offset}- but got range ${responseHeader(res.headers, 'content-range') ?? '(none)'}`);
        }
      } else if (offset > 0) {
        await ing.reset(); // the server sent the whole blob
        base = 0;
      }
      try {
        await ing.append(res.body, (n) => meter.bytes(n, base), tapAt(base));
      } catch (e) {
        if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
        throw e;
      }
      return;
    }
  };
  await retry.run(once, {
    signal,
    progressed: async () => (await ing.offset()) > startedAt,
    onRetry: async (e) => {
      const why = e instanceof RegistryError ? e.message : `connection broke (${describeNetworkError(e)})`;
      meter.phase('retry', await ing.offset(), `${why}; resuming`);
    },
  });
}

/** Fetches a small blob (config) into memory, verified. */
export async function fetchSmallBlob(client: RegistryClient, repo: string, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > MAX_MANIFEST_SIZE * 4) throw new ProtocolError(`config blob ${desc.digest} is implausibly large (${desc.size} bytes)`);
  const res = await client.request({
    method: 'GET',
    path: `/v2/${repo}/blobs/${desc.digest}`,
    scopes: [repositoryScope(repo, ['pull'])],
    expect: [200],
    what: `GET config ${desc.digest}`,
    ...(signal ? { signal } : {}),
  });
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > desc.size) {
      res.body.destroy();
      break;
    }
    chunks.push(c as Buffer);
  }
  const data = Buffer.concat(chunks);
  const h = createHasher('sha256');
  h.update(data);
  const actual = h.digest();
  if (data.length !== desc.size || actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual, data.length, 'config blob');
  return data;
}

/** Resolves a reference to the manifest for one platform (fetching through an index if needed). */
export async function resolveRemote(
  client: RegistryClient,
  ref: Reference,
  o: { platform: Platform; signal?: AbortSignal },
): Promise<{ top: FetchedManifest; image: FetchedManifest }> {
  const display = formatReference(ref);
  const top = await fetchManifest(client, ref.repository, ref.digest ?? ref.tag ?? 'latest', {
    displayRef: display,
    ...(ref.digest ? { expected: ref.digest } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (!isIndex(top.descriptor.mediaType)) return { top, image: top };
  if (!Array.isArray(top.doc.manifests)) throw new ProtocolError(`index of ${display} has no manifests`);
  const chosen = selectPlatform(top.doc, o.platform);
  if (!chosen) {
    throw new PlatformNotFoundError(display, o.platform, top.doc.manifests.filter((m) => m.platform).map((m) => platformString(m.platform!)));
  }
  const image = await fetchManifest(client, ref.repository, chosen.digest, {
    displayRef: `${display} (${platformString(o.platform)})`,
    expected: parseDigest(chosen.digest),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (isIndex(image.descriptor.mediaType)) throw new ProtocolError(`${display}: nested index for ${platformString(o.platform)} is not supported`);
  image.descriptor = { ...image.descriptor, platform: chosen.platform ?? o.platform };
  return { top, image };
}

/**
 * Pulls `ref` into the store and tags it under its full normalised name. Returns the tagged
 * descriptor (the platform's image manifest).
 *
 * The store may be given while it is still opening: the registry round trips that resolve the
 * manifest (the ping, the manifest, an index's platform manifest) need no store, so a caller that
 * passes `OciStore.begin()`'s opening overlaps them with a new root's fsync'd layout, and the
 * layers start downloading as soon as the root's directories exist (the layout is awaited before
 * anything is placed). `imgbuild pull` does so. A plain promise of a store is awaited before the first download.
 */
export async function pullImage(target: OciStore | Promise<OciStore> | StoreOpening, refInput: string, o: PullOptions = {}): Promise<Descriptor> {
  const opening: { root?: string; usable: Promise<unknown>; store: Promise<OciStore> } =
    target instanceof OciStore
      ? { root: target.root, usable: Promise.resolve(), store: Promise.resolve(target) }
      : 'usable' in target
        ? target
        : { usable: target, store: target };
  opening.store.catch(() => {}); // reported where it is awaited, not as an unhandled rejection meanwhile
  const ref = parseReference(refInput);
  const display = formatReference(ref);
  const platform = typeof o.platform === 'string' ? parsePlatform(o.platform) : (o.platform ?? { os: 'linux', architecture: 'amd64' });
  const { session, owned } = sessionFor(o);
  const signal = o.signal;
  try {
    const client = session.client(ref.registry, o.insecure !== undefined ? { insecure: o.insecure } : {});
    const { top, image } = await resolveRemote(client, ref, { platform, ...(signal ? { signal } : {}) });
    const manifest = image.doc as Manifest;
    validateManifest(manifest, display);
    await opening.usable;
    const root = opening.root ?? (await opening.store).root;
    o.onProgress?.({ type: 'resolved', ref: display, digest: image.descriptor.digest, mediaType: image.descriptor.mediaType, blobs: manifest.layers.length + 1 });

    const limit = pLimit(Math.max(1, o.concurrency ?? 6));
    const ingests: Ingest[] = [];
    const seen = new Set<string>();
    const layers = manifest.layers.filter((l) => (seen.has(l.digest) ? false : (seen.add(l.digest), true)));
    const abort = new AbortController();
    const inner = signal ? AbortSignal.any([signal, abort.signal]) : abort.signal;
    // Config and manifest are staged (written and synced beside the downloads) while the layers
    // arrive, so that the end only renames them into place.
    let configIngest: Ingest | undefined;
    let manifestIngest: Ingest | undefined;
    // A blob the store has is leased before it is counted as had, so a prune running meanwhile
    // keeps it until the tag names it (one gc removed since is fetched again).
    const had = async (d: Digest): Promise<boolean> =>
      (await OciStore.infoAt(root, d)) !== undefined && (await (await opening.store).protect([d])).length === 0;
    const staging = [
      (async () => {
        if (await had(manifest.config.digest)) return;
        const data = await fetchSmallBlob(client, ref.repository, manifest.config, inner);
        configIngest = await stageBlob(root, data, manifest.config.digest);
      })(),
      (async () => {
        manifestIngest = await stageBlob(root, image.raw, image.descriptor.digest);
      })(),
    ];
    // a new root's layout, still being written: its failure stops the downloads too
    const laidOut = opening.store.catch((e: unknown) => {
      abort.abort(e);
      throw e;
    });
    try {
      await Promise.all([
        laidOut,
        ...staging,
        ...layers.map((l) =>
          limit(async () => {
            const meter = new BlobMeter(o.onProgress, 'layer', l.digest, l.size);
            if (await had(l.digest)) {
              meter.phase('exists', l.size);
              return;
            }
            meter.phase('waiting');
            // Device nodes pass where this process could make them (tar/devices.ts), as unpacking will.
            const check = new LayerCheck(l.digest, layerCompression(l.mediaType), { signal: inner, allowDevices: mayMakeDevices() });
            const ing = await downloadBlob(root, client, ref.repository, l, meter, session.retry, inner, check);
            ingests.push(ing);
            meter.phase('done', l.size);
          }).catch((e: unknown) => {
            abort.abort(e); // stop the siblings: one failure fails the pull
            throw e;
          }),
        ),
      ]);
    } catch (e) {
      limit.clearQueue();
      // The staged config and manifest are not kept (unlike partial layers, for resuming): wait
      // for the staging still under way, then remove what it wrote.
      abort.abort(e);
      await Promise.allSettled(staging);
      await Promise.all([configIngest?.discard(), manifestIngest?.discard()]).catch(() => {});
      if (signal?.aborted && !(e instanceof AbortedError)) throw new AbortedError('operation aborted', { cause: signal.reason });
      throw e;
    }
    throwIfAborted(signal);
    const store = await opening.store;
    // Everything verified: make it visible, blobs before the manifest that names them.
    await Promise.all([...ingests, ...(configIngest ? [configIngest] : [])].map((ing) => ing.place(store)));
    await manifestIngest!.place(store);
    const tagged: Descriptor = {
      mediaType: image.descriptor.mediaType,
      digest: image.descriptor.digest,
      size: image.descriptor.size,
      ...(image.descriptor.platform ? { platform: image.descriptor.platform } : {}),
    };
    await Promise.all([
      store.tag(display, tagged),
      recordSources(store.root, [manifest.config.digest, ...layers.map((l) => l.digest)], ref.registry, ref.repository).catch(() => {}),
      // What the registry serves for the reference (an index for a multi-platform tag).
      addRepoDigest(store.root, manifest.config.digest, `${repositoryName(ref)}@${top.descriptor.digest}`).catch(() => {}),
    ]);
    await emitEvent(store.root, { type: 'image', action: 'pull', id: familiarReference(ref), attributes: { name: familiarName(ref) } });
    o.onProgress?.({ type: 'done', ref: display, digest: tagged.digest });
    return tagged;
  } finally {
    if (owned) await session.close();
  }
}
