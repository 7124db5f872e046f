/**
 * Registry source hints (`<root>/remote/sources/`) live as long as their blob: the store's gc
 * drops the records of blobs it removes and of blobs that are already gone.
 */
import { afterAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { makeTmp } from '../helpers/tmp.js';
import { OciStore } from '../../src/store/store.js';
import { recordSources, sourcesOf } from '../../src/registry/sources.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { hexOf, parseDigest } from '../../src/image/digest.js';

const tmp = await makeTmp('imgbuild-remote-sources-');
afterAll(() => tmp.cleanup());

it('gc removes source records of collected and missing blobs, keeps those of live blobs', async () => {
  const store = await OciStore.open(join(tmp.dir, 'root'));
  const live = await store.put(Buffer.from('live blob'), MediaTypes.OCI_LAYER);
  const dead = await store.put(Buffer.from('unreferenced blob'), MediaTypes.OCI_LAYER);
  const never = parseDigest(`sha256:${'ab'.repeat(32)}`);
  await recordSources(store.root, [live.digest, dead.digest, never], '127.0.0.1:5000', 'x/y');
  expect(await sourcesOf(store.root, dead.digest, '127.0.0.1:5000')).toEqual(['x/y']);
  const path = (d: string): string => join(store.root, 'remote', 'sources', 'sha256', `${hexOf(parseDigest(d))}.json`);
  expect(existsSync(path(never))).toBe(true);

  const r = await store.gc({ keep: [live.digest] });
  expect(r.removed).toContain(dead.digest);
  expect(existsSync(path(dead.digest))).toBe(false);
  expect(existsSync(path(never))).toBe(false);
  expect(await sourcesOf(store.root, live.digest, '127.0.0.1:5000')).toEqual(['x/y']);
  await store.release();
});
