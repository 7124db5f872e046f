/**
 * One repository of a registry as a place for blobs and a manifest that are not an image (the
 * build cache, builder/remote-cache): its manifest by tag, small blobs into memory, layer blobs
 * into the store as pull fetches them (resumable, verified, their tar checked), presence by HEAD,
 * and pushes with push's upload (HEAD, cross-repository mount, upload) and manifest PUT.
 */
import pLimit from 'p-limit';
import type { Digest } from '../image/digest.js';
import { layerCompression } from '../image/media-types.js';
import type { Reference } from '../image/reference.js';
import type { Descriptor } from '../image/types.js';
import type { OciStore } from '../store/store.js';
import { LayerCheck } from '../tar/check.js';
import { mayMakeDevices } from '../tar/devices.js';
import { BlobMeter } from './progress.js';
import { downloadBlob, fetchManifest, fetchSmallBlob, type FetchedManifest } from './pull.js';
import { blobExists, CHUNK_SIZE, CHUNK_THRESHOLD, putManifest, uploadBlob, type UploadCtx } from './push.js';
import { recordSources } from './sources.js';
import { repositoryScope, type RegistryClient, type RegistrySession } from './transport.js';

export class RemoteRepository {
  private readonly client: RegistryClient;

  constructor(
    private readonly session: RegistrySession,
    readonly ref: Reference,
    private readonly o: { insecure?: boolean; signal?: AbortSignal } = {},
  ) {
    this.client = session.client(ref.registry, o.insecure !== undefined ? { insecure: o.insecure } : {});
  }

  private get signal(): { signal?: AbortSignal } {
    return this.o.signal ? { signal: this.o.signal } : {};
  }

  /** The manifest the reference names (its tag, or its digest, checked). */
  manifest(display: string): Promise<FetchedManifest> {
    const r = this.ref;
    return fetchManifest(this.client, r.repository, r.digest ?? r.tag ?? 'latest', { displayRef: display, ...(r.digest ? { expected: r.digest } : {}), ...this.signal });
  }

  /** A small blob (a config), verified, into memory. */
  blobBytes(d: Descriptor): Promise<Buffer> {
    return fetchSmallBlob(this.client, this.ref.repository, d, this.o.signal);
  }

  /** Whether the repository serves the blob, with the size the descriptor says (HEAD). */
  hasBlob(d: Descriptor): Promise<boolean> {
    const ctx = { client: this.client, repo: this.ref.repository, scopes: [repositoryScope(this.ref.repository, ['pull'])], ...this.signal };
    return blobExists(ctx, d, { sizeMustMatch: true });
  }

  /** Fetches a layer blob into the store as pull does, and records where it came from (for mounts). */
  async pullLayer(store: OciStore, d: Descriptor): Promise<void> {
    if ((await store.info(d.digest))?.size === d.size) return;
    const check = new LayerCheck(d.digest, layerCompression(d.mediaType), { ...this.signal, allowDevices: mayMakeDevices() });
    const ing = await downloadBlob(store.root, this.client, this.ref.repository, d, new BlobMeter(undefined, 'layer', d.digest, d.size), this.session.retry, this.o.signal, check);
    await ing.place(store);
    await recordSources(store.root, [d.digest], this.ref.registry, this.ref.repository).catch(() => {});
  }

  /**
   * Makes every blob present in the repository (5 at a time): what it has is skipped, what another
   * repository of the registry holds (`mountFrom`, or recorded sources) is mounted, the rest
   * uploaded from the store, after `ensureLocal` brought it there.
   */
  async pushBlobs(store: OciStore, blobs: Descriptor[], o: { mountFrom?: string[]; ensureLocal?: (d: Descriptor) => Promise<void> } = {}): Promise<void> {
    const ctx: UploadCtx = {
      store,
      client: this.client,
      registry: this.ref.registry,
      repo: this.ref.repository,
      scopes: [repositoryScope(this.ref.repository, ['pull', 'push'])],
      mountFrom: (o.mountFrom ?? []).filter((r) => r !== this.ref.repository),
      chunkThreshold: CHUNK_THRESHOLD,
      chunkSize: CHUNK_SIZE,
      retry: this.session.retry,
      refused: new Set(),
      ...(o.ensureLocal ? { ensureLocal: o.ensureLocal } : {}),
      ...this.signal,
    };
    const limit = pLimit(5);
    const seen = new Set<Digest>();
    await Promise.all(blobs.filter((b) => !seen.has(b.digest) && seen.add(b.digest)).map((b) => limit(() => uploadBlob(ctx, b, new BlobMeter(undefined, 'layer', b.digest, b.size)))));
    await recordSources(store.root, [...seen], this.ref.registry, this.ref.repository).catch(() => {});
  }

  /** PUTs a manifest under the reference's tag (its blobs pushed first). */
  putManifest(raw: Buffer, mediaType: string, digest: Digest): Promise<void> {
    const scopes = [repositoryScope(this.ref.repository, ['pull', 'push'])];
    return putManifest(this.client, this.ref.repository, this.ref.tag ?? 'latest', raw, mediaType, digest, scopes, this.o.signal);
  }
}
