/**
 * What lint learns of base images from the store: their environment, whether they set a SHELL,
 * and their platform. Nothing is pulled: an image not in the store is unknown to lint.
 */
import type { Platform } from '../../image/types.js';
import type { OciStore } from '../../store/store.js';
import { findImage } from '../../store/images.js';
import type { BaseImage } from './lint.js';

export function storeBaseImages(store: OciStore): (ref: string, platform: Platform) => Promise<BaseImage | undefined> {
  return async (ref, platform) => {
    try {
      const img = await findImage(store, ref, { platform });
      const c = img.config;
      const out: BaseImage = { env: c.config?.Env ?? [], shell: (c.config?.Shell?.length ?? 0) > 0 };
      if (c.os && c.architecture) out.platform = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
      return out;
    } catch {
      return undefined;
    }
  };
}
