/**
 * An image read from its registry for `analyze`, through the registry client (its keychain,
 * tokens, retries and `--insecure`): the manifest for one platform and the config are fetched and
 * verified; each layer is streamed and verified as it is read, and nothing is written to the store.
 */
import { parseReference, formatReference } from '../image/reference.js';
import type { ImageConfig, Manifest, Platform } from '../image/types.js';
import { ProtocolError } from '../registry/errors.js';
import { fetchSmallBlob, resolveRemote, sessionFor, validateManifest } from '../registry/pull.js';
import { openBlobStream } from '../registry/blob-stream.js';
import type { AnalysisSource } from './source.js';

export interface RemoteSourceOptions {
  platform: Platform;
  insecure?: boolean;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export async function remoteSource(input: string, o: RemoteSourceOptions): Promise<AnalysisSource> {
  const ref = parseReference(input);
  const display = formatReference(ref);
  const { session, owned } = sessionFor({ ...(o.env ? { env: o.env } : {}), ...(o.insecure ? { insecure: true } : {}) });
  try {
    const client = session.client(ref.registry, o.insecure !== undefined ? { insecure: o.insecure } : {});
    const { image } = await resolveRemote(client, ref, { platform: o.platform, ...(o.signal ? { signal: o.signal } : {}) });
    const manifest = image.doc as Manifest;
    validateManifest(manifest, display);
    const raw = await fetchSmallBlob(client, ref.repository, manifest.config, o.signal);
    let config: ImageConfig;
    try {
      config = JSON.parse(raw.toString('utf8')) as ImageConfig;
    } catch (e) {
      throw new ProtocolError(`config of ${display} is not valid JSON`, { cause: e });
    }
    return {
      image: input,
      source: 'registry',
      manifestDigest: image.descriptor.digest,
      manifest,
      config,
      openLayer: (layer, lo) => openBlobStream(client, ref.repository, layer, lo.signal ? { signal: lo.signal } : {}),
      close: async () => {
        if (owned) await session.close();
      },
    };
  } catch (e) {
    if (owned) await session.close();
    throw e;
  }
}
