/** The image a FROM or a `COPY --from` names, found in the store (or pulled) and leased. */
import type { Platform } from '../../image/types.js';
import type { LoadedImage } from '../../image/model.js';
import { BlobNotFoundError, ImageNotFoundError } from '../../store/errors.js';
import { imageFromLoaded, type ImageState } from './image-state.js';
import type { DispatchEnv } from './stage.js';

export async function loadBase(env: DispatchEnv, ref: string, platform: Platform): Promise<ImageState> {
  // Leased before use: a concurrent `prune -a` may untag the image, but not delete what the build
  // goes on to use. When it deleted the image while it was being read (blobs missing), the image
  // is looked up again: gone now, it is pulled (or not found) like any missing image.
  for (let attempt = 1; ; attempt++) {
    let img: LoadedImage | undefined;
    try {
      img = await findBase(env, ref, platform);
    } catch (e) {
      if (!(e instanceof BlobNotFoundError) || attempt >= 3) throw e;
      continue;
    }
    const blobs = [img.descriptor.digest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)];
    if (img.indexDescriptor) blobs.push(img.indexDescriptor.digest);
    const missing = await env.store.protect(blobs);
    if (missing.length === 0) return imageFromLoaded(img);
    if (attempt >= 3) throw new BlobNotFoundError(missing[0]!);
  }
}

async function findBase(env: DispatchEnv, ref: string, platform: Platform): Promise<LoadedImage> {
  if (!env.pull) {
    try {
      return await env.store.findImage(ref, platform);
    } catch (e) {
      if (!(e instanceof ImageNotFoundError)) throw e;
    }
  }
  await env.pullImage(ref, platform);
  return env.store.findImage(ref, platform);
}
