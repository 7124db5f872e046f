/**
 * The image a stage builds: published as an ImageState that nothing changes afterwards, built in a
 * DraftImage that the stage's steps change in place.
 */
import type { Descriptor, ImageConfig, Platform } from '../../image/types.js';
import type { Digest } from '../../image/digest.js';
import { chainIds, type LoadedImage } from '../../image/model.js';

/** The image a stage has built, as published to other stages and the build: never changed. */
export interface ImageState {
  readonly config: ImageConfig;
  readonly layers: readonly Descriptor[];
  /** Chain id of the top layer (the committed snapshot's key); undefined without layers. */
  readonly chainId?: Digest;
}

/**
 * The image of a stage being built: the stage's own deep copy of its starting image, changed in
 * place, so that a step costs the same however many came before it (a copy of the whole config
 * per step, with its history entry per step and every label, made builds quadratic).
 */
export interface DraftImage {
  config: ImageConfig;
  layers: Descriptor[];
  chainId?: Digest;
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** An ISO-8601 time without milliseconds: of `epoch` (seconds), or now. */
export function isoTime(epoch?: number): string {
  return (epoch !== undefined ? new Date(epoch * 1000) : new Date()).toISOString().replace(/\.000Z$/, 'Z');
}

/** The image of `FROM scratch`. */
export function emptyImage(platform: Platform): ImageState {
  return {
    config: {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: [DEFAULT_PATH] },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    },
    layers: [],
  };
}

export function imageFromLoaded(img: LoadedImage): ImageState {
  const config = JSON.parse(img.rawConfig.toString('utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  const chain = chainIds(diffIds);
  return {
    config,
    layers: img.manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(chain.length ? { chainId: chain[chain.length - 1] as Digest } : {}),
  };
}

export function draftOf(img: ImageState): DraftImage {
  return structuredClone({ config: img.config, layers: [...img.layers], ...(img.chainId ? { chainId: img.chainId } : {}) });
}

/** The chain id of the layer `diffId` on top of the chain `parent` (OCI image spec). */
export function chainIdOn(parent: Digest | undefined, diffId: Digest): Digest {
  return parent === undefined ? diffId : (chainIds([parent, diffId])[1] as Digest);
}

/** The newest `created` among the image's history and config (ISO strings compare in order). */
export function latestCreated(img: ImageState): string | undefined {
  let best = img.config.created;
  for (const h of img.config.history ?? []) if (h.created && (!best || h.created > best)) best = h.created;
  return best;
}
