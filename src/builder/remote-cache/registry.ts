/**
 * A build cache in a registry repository (`type=registry,ref=REPO:TAG`), through the registry
 * client: the push's credentials (docker config, credential helpers, Basic and token auth), its
 * uploads (HEAD, cross-repository mount, upload) and the pull's verified, checked downloads.
 * Loaded only by builds that name such a cache, as the registry client costs a build's start.
 */
import { formatReference, parseReference } from '../../image/reference.js';
import type { Descriptor } from '../../image/types.js';
import type { OciStore } from '../../store/store.js';
import { RemoteRepository } from '../../registry/artifacts.js';
import { Keychain } from '../../registry/auth.js';
import { RegistrySession } from '../../registry/transport.js';
import type { CacheSource, CacheTarget, CacheWrite } from './backend.js';
import { parseCacheConfig, parseCacheManifest, type CacheDocument } from './format.js';

/** The registry session of a build's cache imports and exports (closed by the build). */
export function cacheSession(env: NodeJS.ProcessEnv | undefined): RegistrySession {
  return new RegistrySession({ auth: new Keychain(env ? { env } : {}), ...(env ? { env } : {}) });
}

export class RegistryCache implements CacheSource, CacheTarget {
  readonly name: string;
  readonly repository: { registry: string; repository: string };
  readonly registry: string;
  private readonly repo: RemoteRepository;

  constructor(session: RegistrySession, ref: string, signal?: AbortSignal) {
    const r = parseReference(ref);
    this.name = formatReference(r);
    this.repository = { registry: r.registry, repository: r.repository };
    this.registry = r.registry;
    this.repo = new RemoteRepository(session, r, signal ? { signal } : {});
  }

  async read(): Promise<CacheDocument> {
    const m = await this.repo.manifest(this.name);
    const manifest = parseCacheManifest(m.raw);
    return parseCacheConfig(await this.repo.blobBytes(manifest.config), manifest);
  }

  has(d: Descriptor): Promise<boolean> {
    return this.repo.hasBlob(d);
  }

  fetch(store: OciStore, d: Descriptor): Promise<void> {
    return this.repo.pullLayer(store, d);
  }

  async write(store: OciStore, w: CacheWrite): Promise<void> {
    await this.repo.pushBlobs(store, [...w.blobs, w.config], { mountFrom: w.mountFrom, ensureLocal: w.ensureLocal });
    await this.repo.putManifest(w.manifest, w.manifestDescriptor.mediaType, w.manifestDescriptor.digest);
  }
}
