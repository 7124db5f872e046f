/**
 * An image read from an OCI image layout on disk (`--build-context name=oci-layout://PATH`): the
 * manifest named by digest, else by its `org.opencontainers.image.ref.name` tag (`latest` by
 * default), else the layout's only one (buildx's resolveDigest); an index resolved to the build's
 * platform. Its blobs are copied into the store, verified against their digests; the layout is
 * only read.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImgbuildError, NotFoundError } from '../../errors.js';
import { isIndex } from '../../image/media-types.js';
import { platformMatches, type LoadedImage } from '../../image/model.js';
import type { Descriptor, Index, Manifest, Platform } from '../../image/types.js';
import { loadImage } from '../../store/images.js';
import type { OciStore } from '../../store/store.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

function blobFile(layout: string, d: string): string {
  const [alg, hex] = d.split(':');
  if (!alg || !hex || !/^[a-z0-9]+$/.test(alg) || !/^[0-9a-f]+$/.test(hex)) throw new ImgbuildError('INVALID_ARGUMENT', `invalid digest ${JSON.stringify(d)} in OCI layout ${layout}`);
  return join(layout, 'blobs', alg, hex);
}

/** Copies one blob of the layout into the store (the store verifies its digest and size). */
async function copyBlob(store: OciStore, layout: string, desc: Pick<Descriptor, 'digest' | 'size'>): Promise<void> {
  try {
    await store.putFile(blobFile(layout, desc.digest), desc);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`OCI layout ${layout} has no blob ${desc.digest}`, { cause: e });
    throw e;
  }
}

async function readJson<T>(store: OciStore, desc: Descriptor): Promise<T> {
  return JSON.parse((await store.read(desc)).toString('utf8')) as T;
}

/** Imports the image `tag`/`digest` of the layout at `layout` for `platform`. */
export async function importOciLayout(store: OciStore, layout: string, o: { tag?: string; digest?: string; platform: Platform }): Promise<LoadedImage> {
  let index: Index;
  try {
    index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImgbuildError(code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT', `${layout} is not an OCI layout: ${code === 'ENOENT' ? 'no index.json' : (e as Error).message}`, { cause: e });
  }
  const entries = Array.isArray(index.manifests) ? index.manifests : [];
  const wanted = o.tag ?? 'latest';
  const found = o.digest
    ? entries.find((m) => m.digest === o.digest)
    : entries.find((m) => m.annotations?.[REF_NAME] === wanted) ?? (o.tag === undefined && entries.length === 1 ? entries[0] : undefined);
  let desc: Descriptor | undefined = found ?? (o.digest ? { mediaType: '', digest: o.digest as Descriptor['digest'], size: -1 } : undefined);
  if (!desc) throw new NotFoundError(`oci-layout reference ${layout}:${wanted} could not be resolved`);
  for (let depth = 0; ; depth++) {
    if (desc.size < 0) {
      // A digest the index does not list: the blob's own size.
      const digest = desc.digest;
      const data = await readFile(blobFile(layout, digest)).catch((e: unknown) => {
        throw new NotFoundError(`OCI layout ${layout} has no blob ${digest}`, { cause: e });
      });
      const doc = JSON.parse(data.toString('utf8')) as { mediaType?: string; manifests?: unknown };
      desc = { ...desc, size: data.length, mediaType: doc.mediaType ?? (Array.isArray(doc.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json') };
    }
    await copyBlob(store, layout, desc);
    if (!isIndex(desc.mediaType) || depth > 4) break;
    const idx: Index = await readJson<Index>(store, desc);
    const runnable = (idx.manifests ?? []).filter((m) => m.platform?.os !== 'unknown');
    const pick: Descriptor | undefined = runnable.find((m) => !isIndex(m.mediaType) && platformMatches(m.platform, o.platform)) ?? (runnable.length === 1 ? runnable[0] : runnable.find((m) => isIndex(m.mediaType)));
    if (!pick) throw new NotFoundError(`OCI layout ${layout} has no image for ${o.platform.os}/${o.platform.architecture}`);
    desc = pick;
  }
  const manifest = await readJson<Manifest>(store, desc);
  await copyBlob(store, layout, manifest.config);
  for (const l of manifest.layers ?? []) await copyBlob(store, layout, l);
  return loadImage(store, desc);
}
