/**
 * What lint learns of base images from the store: their environment, whether they set a SHELL,
 * and their platform. Nothing is pulled: an image not in the store is unknown to lint.
 */
import type { Platform } from '../../image/types.js';
import type { LoadedImage } from '../../image/model.js';
import type { OciStore } from '../../store/store.js';
import { findImage } from '../../store/images.js';
import type { BaseImage } from './lint.js';

type Lookup = (ref: string, platform: Platform) => Promise<LoadedImage>;

export function storeBaseImages(store: OciStore, lookup: Lookup = (ref, platform) => findImage(store, ref, { platform })): (ref: string, platform: Platform) => Promise<BaseImage | undefined> {
  return async (ref, platform) => {
    try {
      const img = await lookup(ref, platform);
      const c = img.config;
      const out: BaseImage = { env: c.config?.Env ?? [], shell: (c.config?.Shell?.length ?? 0) > 0 };
      if (c.os && c.architecture) out.platform = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
      return out;
    } catch {
      return undefined;
    }
  };
}

/**
 * A build's lookups of its base images in the store, made once for lint and the build: what lint
 * found is handed to the build's first lookup of the same name and platform (reading index.json,
 * the manifest and the config twice was ~1 ms of a no-op rebuild). Only that first one: a later
 * lookup (after a pull, or again when the image went away while being leased) reads the store.
 */
export class BaseLookups {
  private readonly found = new Map<string, Promise<LoadedImage>>();

  constructor(private readonly store: OciStore) {}

  private static key(ref: string, p: Platform): string {
    return JSON.stringify([ref, p.os, p.architecture, p.variant ?? '']);
  }

  /** Lint's lookup: kept for the build. */
  readonly forLint: Lookup = (ref, platform) => {
    const p = findImage(this.store, ref, { platform });
    // A failed lookup is not an unhandled rejection: the build looks again (and may pull).
    p.catch(() => {});
    this.found.set(BaseLookups.key(ref, platform), p);
    return p;
  };

  /** The build's lookup: lint's result the first time, if it found the image; else the store's. */
  readonly forBuild: Lookup = (ref, platform) => {
    const k = BaseLookups.key(ref, platform);
    const p = this.found.get(k);
    if (!p) return findImage(this.store, ref, { platform });
    this.found.delete(k);
    return p.catch(() => findImage(this.store, ref, { platform }));
  };
}
