/**
 * A blob read from a registry as a stream, without storing it (`analyze` of a remote image): its
 * bytes are hashed as they pass and the stream fails at its end when they do not match the
 * descriptor's digest and size, so a reader that got to the end read what the manifest names.
 * A transfer that breaks is not resumed (a download into the store is: pull.ts).
 */
import { Readable } from 'node:stream';
import { createHasher, algorithmOf, type Digest } from '../image/digest.js';
import { DigestMismatchError } from '../image/errors.js';
import type { Descriptor } from '../image/types.js';
import { repositoryScope, type RegistryClient } from './transport.js';

export async function openBlobStream(client: RegistryClient, repo: string, desc: Descriptor, o: { signal?: AbortSignal } = {}): Promise<Readable> {
  const res = await client.request({
    method: 'GET',
    path: `/v2/${repo}/blobs/${desc.digest}`,
    scopes: [repositoryScope(repo, ['pull'])],
    expect: [200],
    what: `GET blob ${desc.digest}`,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const body = res.body;
  return Readable.from((async function* () {
    const h = createHasher(algorithmOf(desc.digest as Digest));
    let n = 0;
    for await (const chunk of body) {
      h.update(chunk);
      n += chunk.length;
      if (n > desc.size) break;
      yield chunk;
    }
    const actual = h.digest();
    if (n !== desc.size || actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual, n, `blob ${desc.digest}`);
  })(), { objectMode: false });
}
