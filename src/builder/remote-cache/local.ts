/**
 * A build cache in an OCI layout directory (`type=local,dest=DIR` / `src=DIR`, as BuildKit's local
 * cache): `oci-layout`, `blobs/<alg>/<hex>`, and `index.json` naming the cache manifest with
 * `org.opencontainers.image.ref.name=<tag>`. Blobs are written whole under a temporary name and
 * renamed into place, `index.json` replaced last, so a reader (or a concurrent writer) finds the
 * previous cache or the new one complete.
 */
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../atomic.js';
import { algorithmOf, digestOf, hexOf, isDigest, type Digest } from '../../image/digest.js';
import { layerCompression, MediaTypes } from '../../image/media-types.js';
import { REF_NAME_ANNOTATION, type Descriptor, type Index } from '../../image/types.js';
import { DigestMismatchError } from '../../image/errors.js';
import type { OciStore } from '../../store/store.js';
import { checkLayerFile } from '../../tar/check.js';
import { mayMakeDevices } from '../../tar/devices.js';
import type { CacheSource, CacheTarget, CacheWrite } from './backend.js';
import { CacheFormatError, MAX_CACHE_CONFIG_SIZE, parseCacheConfig, parseCacheManifest, type CacheDocument } from './format.js';

export class LocalCache implements CacheSource, CacheTarget {
  readonly name: string;
  private readonly dir: string;

  constructor(dir: string, private readonly tag: string, private readonly digest?: string) {
    this.dir = resolve(dir);
    this.name = `${dir}${digest ? `@${digest}` : `:${tag}`}`;
  }

  private blobPath(d: Digest): string {
    return join(this.dir, 'blobs', algorithmOf(d), hexOf(d));
  }

  private async readBlob(d: Descriptor, max: number): Promise<Buffer> {
    if (!isDigest(d.digest)) throw new CacheFormatError(`invalid digest ${JSON.stringify(d.digest)}`);
    if (d.size > max) throw new CacheFormatError(`blob ${d.digest} is too large (${d.size} bytes)`);
    const data = await readFile(this.blobPath(d.digest));
    const got = digestOf(data, algorithmOf(d.digest));
    if (got !== d.digest || data.length !== d.size) throw new DigestMismatchError(d.digest, got, data.length, `blob of the cache in ${this.name}`);
    return data;
  }

  private async readIndex(): Promise<Index> {
    const index = JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as Index;
    if (!Array.isArray(index?.manifests)) throw new CacheFormatError(`${join(this.dir, 'index.json')} lists no manifests`);
    return index;
  }

  async read(): Promise<CacheDocument> {
    const index = await this.readIndex();
    const entry = this.digest ? index.manifests.find((m) => m.digest === this.digest) : index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === this.tag);
    if (!entry) throw new CacheFormatError(`no cache ${this.digest ?? `tagged ${this.tag}`} in ${this.dir}`);
    const manifest = parseCacheManifest(await this.readBlob(entry, 4 * 1024 * 1024));
    return parseCacheConfig(await this.readBlob(manifest.config, MAX_CACHE_CONFIG_SIZE), manifest);
  }

  async has(d: Descriptor): Promise<boolean> {
    return (await stat(this.blobPath(d.digest)).catch(() => undefined))?.size === d.size;
  }

  async fetch(store: OciStore, d: Descriptor): Promise<void> {
    if ((await store.info(d.digest))?.size === d.size) return;
    const path = this.blobPath(d.digest);
    // Checked as a pulled layer is before it enters the store; the store verifies the digest.
    await checkLayerFile(path, d.digest, layerCompression(d.mediaType), { allowDevices: mayMakeDevices() });
    await store.putFile(path, d);
  }

  private async putBlob(d: Descriptor, from: string | Buffer): Promise<void> {
    const dest = this.blobPath(d.digest);
    if (await this.has(d)) return;
    await mkdir(dirname(dest), { recursive: true });
    if (typeof from !== 'string') return writeFileAtomic(dest, from);
    const tmp = `${dest}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      await copyFile(from, tmp);
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async write(store: OciStore, w: CacheWrite): Promise<void> {
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    await writeFileAtomic(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    for (const b of w.blobs) {
      if (await this.has(b)) continue;
      await w.ensureLocal(b);
      // A build layer kept unwritten (store/lazy.ts) is written first: the copy reads its file.
      await store.materialize(b.digest, w.signal ? { signal: w.signal } : {});
      await this.putBlob(b, store.blobPath(b.digest));
    }
    await this.putBlob(w.config, w.configBytes);
    await this.putBlob(w.manifestDescriptor, w.manifest);
    // Other tags of the layout stay; this tag names the new manifest.
    const old = await this.readIndex().catch(() => ({ schemaVersion: 2, manifests: [] }) as Index);
    const manifests = old.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== this.tag);
    manifests.push({ mediaType: MediaTypes.OCI_MANIFEST, digest: w.manifestDescriptor.digest, size: w.manifestDescriptor.size, annotations: { [REF_NAME_ANNOTATION]: this.tag } });
    await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OCI_INDEX, manifests } satisfies Index));
  }
}
