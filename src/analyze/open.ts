/**
 * Finds the image `analyze` names: in the store, else (for a reference, not an id) on its
 * registry, streamed and not stored; `remote` goes to the registry even when the store has it.
 */
import { ImageNotFoundError } from '../store/errors.js';
import type { OciStore } from '../store/store.js';
import { parseReference } from '../image/reference.js';
import type { Platform } from '../image/types.js';
import { hostPlatform } from '../image/platform.js';
import { storeSource, type AnalysisSource } from './source.js';

export interface OpenOptions {
  remote?: boolean;
  platform?: Platform;
  insecure?: boolean;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export async function openSource(store: () => Promise<OciStore>, input: string, o: OpenOptions = {}): Promise<AnalysisSource> {
  if (!o.remote) {
    try {
      return await storeSource(await store(), input, o.platform ? { platform: o.platform } : {});
    } catch (e) {
      if (!(e instanceof ImageNotFoundError) || !isReference(input)) throw e;
    }
  }
  // The registry client loads only here: evaluating it costs every command that does (architecture.md).
  const { remoteSource } = await import('./remote-source.js');
  return remoteSource(input, {
    platform: o.platform ?? hostPlatform(),
    ...(o.insecure ? { insecure: true } : {}),
    ...(o.env ? { env: o.env } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

/** A name a registry could serve: a reference that is not an image id or id prefix. */
function isReference(input: string): boolean {
  if (/^(sha256:)?[0-9a-f]{12,64}$/.test(input)) return false;
  try {
    parseReference(input);
    return true;
  } catch {
    return false;
  }
}
