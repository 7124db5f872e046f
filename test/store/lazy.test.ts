/**
 * The store's side of build layers kept unwritten (store/lazy.ts), on a real directory: present
 * to info, protect and reader while the directory is there; materialized into a verified blob;
 * a changed directory stores nothing; gc drops records no image reaches and no lease holds.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { OciStore } from '../../src/store/store.js';
import { listLazyDigests, readLazyLayer, writeLazyLayer, type LazyLayer } from '../../src/store/lazy.js';
import { LazyLayerChangedError, LazyLayerGoneError } from '../../src/store/errors.js';
import { packDir } from '../../src/tar/pack.js';
import { digestOf, type Digest } from '../../src/image/digest.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let store: OciStore;
let rec: LazyLayer;
let tar: Buffer;

async function collect(r: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

beforeEach(async () => {
  tmp = await makeTmp('imgbuild-lazy-');
  store = await OciStore.open(join(tmp.dir, 'store'));
  const fs = join(store.root, 'snap', 'fs');
  await mkdir(join(fs, 'd'), { recursive: true });
  await writeFile(join(fs, 'd', 'f'), 'content\n');
  await writeFile(join(fs, 'big'), Buffer.alloc(3 << 20, 7));
  tar = await collect(packDir(fs, { mode: 'plain', sourceDateEpoch: 0 }));
  rec = { v: 1, digest: digestOf(tar), size: tar.length, dir: 'snap/fs', snapshot: { driver: 'overlay', key: 'k' }, pack: { mode: 'plain', sourceDateEpoch: 0 } };
  await writeLazyLayer(store.root, rec);
});
afterEach(async () => {
  await store.release();
  await tmp.cleanup();
});

const blobFile = (d: Digest): string => join(store.root, 'blobs', 'sha256', d.slice(7));

describe('lazy layers in the store', () => {
  it('are present while their directory is: info, protect, and a reader of the same bytes', async () => {
    expect(await store.info(rec.digest)).toEqual({ digest: rec.digest, size: rec.size, lazy: true });
    expect(await store.protect([rec.digest])).toEqual([]);
    expect((await collect(await store.reader({ digest: rec.digest, size: rec.size }))).equals(tar)).toBe(true);
    expect(existsSync(blobFile(rec.digest))).toBe(false);
    await rm(join(store.root, 'snap'), { recursive: true });
    expect(await store.info(rec.digest)).toBeUndefined();
    expect(await store.protect([rec.digest])).toEqual([rec.digest]);
    await expect(store.reader({ digest: rec.digest, size: rec.size })).rejects.toBeInstanceOf(LazyLayerGoneError);
  });

  it('materialize writes the verified blob and drops the record', async () => {
    await store.materialize(rec.digest);
    expect(digestOf(await import('node:fs/promises').then((f) => f.readFile(blobFile(rec.digest))))).toBe(rec.digest);
    expect(readLazyLayer(store.root, rec.digest)).toBeUndefined();
    expect(await store.info(rec.digest)).toEqual({ digest: rec.digest, size: rec.size });
  });

  it('a changed directory fails with LazyLayerChangedError and stores no blob', async () => {
    await writeFile(join(store.root, 'snap', 'fs', 'd', 'f'), 'Content\n'); // same size, other bytes
    await expect(store.materialize(rec.digest)).rejects.toBeInstanceOf(LazyLayerChangedError);
    await expect(collect(await store.reader({ digest: rec.digest, size: rec.size }))).rejects.toThrow(/no longer matches its build snapshot snap\/fs \(it packs to sha256:/);
    expect(existsSync(blobFile(rec.digest))).toBe(false);
    expect(await readdir(join(store.root, 'ingest'))).toEqual([]);
    expect(readLazyLayer(store.root, rec.digest)).toBeDefined();
  });

  it('gc keeps a leased record, drops an unreachable one, and one whose blob is written', async () => {
    const other = await OciStore.open(store.root);
    try {
      await store.lease.add({ blobs: [rec.digest] });
      await other.gc();
      expect(await listLazyDigests(store.root)).toEqual([rec.digest]);
      await store.release();
      const r = await other.gc();
      expect(r.removed).toContain(rec.digest);
      expect(await listLazyDigests(store.root)).toEqual([]);
      // A record beside a blob of the same digest says nothing more: gc drops it, keeping the blob.
      await writeLazyLayer(store.root, rec);
      await store.materialize(rec.digest);
      await writeLazyLayer(store.root, rec);
      await store.lease.add({ blobs: [rec.digest] });
      await other.gc();
      expect(await listLazyDigests(store.root)).toEqual([]);
      expect(existsSync(blobFile(rec.digest))).toBe(true);
    } finally {
      await other.release();
    }
  });
});
