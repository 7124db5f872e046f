/**
 * Downloads over http(s) for build inputs: a remote build context and ADD's URLs.
 */
import { createWriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadable } from 'node:stream/web';
import { deferredTrust } from '../../registry/trust.js';
import { ImgbuildError } from '../../errors.js';

/**
 * fetch() for an ADD URL or a remote build context (`what` names it in errors). Node's own
 * trusts its default CA store; when the `imgbuild` executable deferred NODE_EXTRA_CA_CERTS
 * (src/registry/trust.ts), an https URL goes through undici's fetch (the package's: its Agent
 * must match its fetch) with those certificates added.
 */
export async function fetchUrl(
  url: string, what: string, signal?: AbortSignal, o: { toFile?: string } = {},
): Promise<{ ok: boolean; status: number; statusText: string; data: Buffer; lastModified: string | null }> {
  const ca = url.startsWith('https:') ? deferredTrust(process.env) : undefined;
  type Res = { ok: boolean; status: number; statusText: string; arrayBuffer(): Promise<ArrayBuffer>; headers: { get(n: string): string | null }; body: unknown };
  const read = async (res: Res) => {
    let data = Buffer.alloc(0);
    // `toFile`: a successful body goes to the file as it comes (a context may be large), not to memory.
    if (o.toFile && res.ok && res.body) await pipeline(Readable.fromWeb(res.body as WebReadable), createWriteStream(o.toFile, { mode: 0o600 }), ...(signal ? [{ signal }] : []));
    else data = Buffer.from(await res.arrayBuffer());
    return { ok: res.ok, status: res.status, statusText: res.statusText, data, lastModified: res.headers.get('last-modified') };
  };
  // fetch() reports every network failure as "fetch failed": the reason is its cause.
  const failed = (e: unknown): never => {
    if (signal?.aborted) throw e;
    const reason = (e as { cause?: { message?: string; code?: string } }).cause;
    const why = reason?.message ?? (e as Error).message;
    throw new ImgbuildError('UNAVAILABLE', `${what}: ${why}${reason?.code && !why.includes(reason.code) ? ` (${reason.code})` : ''}`, { cause: e });
  };
  if (!ca) return read(await fetch(url, signal ? { signal } : {}).catch(failed));
  // Required here, on first use: undici's index is slow to load (docs/architecture.md, Measurements).
  const undici = createRequire(import.meta.url)('undici') as typeof import('undici');
  const dispatcher = new undici.Agent({ connect: { ca } });
  try {
    return await read(await undici.fetch(url, { dispatcher, ...(signal ? { signal } : {}) }).catch(failed));
  } finally {
    await dispatcher.close();
  }
}
