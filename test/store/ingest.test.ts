/**
 * The store's ingest (src/store/ingest.ts), the one way blobs enter the store: resumable
 * downloads that continue from what is on disk (also after their process died), size and digest
 * checked before anything is placed, and nothing left in ingest/ once a blob is placed or refused.
 * Local writes through OciStore.writer() are in store.test.ts; downloads from a real registry in
 * test/registry/faults.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { OciStore } from '../../src/store/store.js';
import { Ingest, stageBlob, type ChunkSource } from '../../src/store/ingest.js';
import { ingestDir } from '../../src/store/paths.js';
import { digestOf } from '../../src/image/digest.js';
import { DigestMismatchError, SizeMismatchError } from '../../src/image/errors.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let store: OciStore;

beforeEach(async () => {
  tmp = await makeTmp();
  store = await OciStore.open(join(tmp.dir, 'store'));
});
afterEach(async () => {
  await store.release();
  await tmp.cleanup();
});

/**
 * Chunks as a response body hands them over: one per turn of the event loop, held back while the
 * sink says so, optionally failing after `failAfter` chunks as a dropped connection does.
 */
class Chunks implements ChunkSource {
  private paused = false;
  private wake: (() => void) | undefined;
  private destroyed: Error | undefined;

  constructor(private readonly chunks: Buffer[], private readonly failAfter = Infinity) {}

  async pipeTo(sink: (chunk: Buffer) => boolean): Promise<void> {
    for (const [i, c] of this.chunks.entries()) {
      await new Promise((r) => setImmediate(r));
      if (this.paused) await new Promise<void>((r) => (this.wake = r));
      if (this.destroyed) throw this.destroyed;
      if (i === this.failAfter) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      if (!sink(c)) this.paused = true;
    }
    if (this.destroyed) throw this.destroyed;
  }

  resume(): void {
    this.paused = false;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  destroy(e = new Error('destroyed')): void {
    this.destroyed ??= e;
    this.resume();
  }
}

function split(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

const blob = randomBytes(3 * 1024 * 1024 + 17);
const digest = digestOf(blob);

describe('resumable ingest', () => {
  it('continues a broken download where the file ends, verifies it and places it', async () => {
    const ing = await Ingest.resumable(store.root, digest, blob.length);
    expect(await ing.offset()).toBe(0);
    const first = await ing.append(new Chunks(split(blob, 64 * 1024), 20)).catch((e: unknown) => e);
    expect((first as { code?: string }).code).toBe('ECONNRESET');
    const offset = await ing.offset();
    expect(offset).toBe(20 * 64 * 1024); // every chunk that arrived before the break is on disk
    await ing.append(new Chunks(split(blob.subarray(offset), 100_000)));
    await ing.verify();
    await ing.place(store);
    expect((await readFile(store.blobPath(digest))).equals(blob)).toBe(true);
    expect(await readdir(ingestDir(store.root))).toEqual([]);
  });

  it('adopts the partial download of a dead process, never a live one', async () => {
    const dir = ingestDir(store.root);
    const name = `${digest.replace(':', '-')}`;
    await writeFile(join(dir, `99999997-abcd-remote-${name}`), blob.subarray(0, 1000));
    await writeFile(join(dir, `${process.pid}-beef-remote-${name}`), blob.subarray(0, 2000));
    const ing = await Ingest.resumable(store.root, digest, blob.length);
    expect(await ing.offset()).toBe(1000);
    const names = await readdir(dir);
    expect(names).not.toContain(`99999997-abcd-remote-${name}`);
    expect(names).toContain(`${process.pid}-beef-remote-${name}`);
    // the adopted prefix is hashed from the file, so the blob still verifies
    await ing.append(new Chunks(split(blob.subarray(1000), 256 * 1024)));
    await ing.verify();
    await ing.place(store);
    expect((await readFile(store.blobPath(digest))).equals(blob)).toBe(true);
  });

  it('stops a source that runs past the size and keeps nothing of it', async () => {
    const ing = await Ingest.resumable(store.root, digest, blob.length);
    const err = await ing.append(new Chunks(split(Buffer.concat([blob, Buffer.alloc(10)]), 1024 * 1024))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SizeMismatchError);
    expect(await readdir(ingestDir(store.root))).toEqual([]);
  });

  it('refuses bytes that do not match the digest, and deletes them', async () => {
    const bad = Buffer.from(blob);
    bad[12345] = bad[12345]! ^ 1;
    const ing = await Ingest.resumable(store.root, digest, blob.length);
    await ing.append(new Chunks(split(bad, 512 * 1024)));
    await expect(ing.verify()).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await readdir(ingestDir(store.root))).toEqual([]);
    expect(await store.info(digest)).toBeUndefined();
  });

  it('a tap sees every byte in order before the blob is placed', async () => {
    const seen: Buffer[] = [];
    let waits = 0;
    const tap = {
      write(c: Buffer): boolean {
        seen.push(c);
        return seen.length % 3 !== 0; // behind every third chunk
      },
      onceDrain(fn: () => void): void {
        waits++;
        setTimeout(fn, 1);
      },
    };
    const ing = await Ingest.resumable(store.root, digest, blob.length);
    await ing.append(new Chunks(split(blob, 100_000)), undefined, tap);
    expect(Buffer.concat(seen).equals(blob)).toBe(true);
    expect(waits).toBeGreaterThan(0);
    await ing.verify();
    await ing.discard();
  });

  it('stages content held in memory for placing later, also over a stale partial', async () => {
    const data = Buffer.from('{"config":true}');
    const d = digestOf(data);
    await writeFile(join(ingestDir(store.root), `99999996-abcd-remote-${d.replace(':', '-')}`), 'garbage that is longer than the data');
    const ing = await stageBlob(store.root, data, d);
    await ing.place(store);
    expect((await store.read({ digest: d, size: data.length })).toString()).toBe('{"config":true}');
    expect(await readdir(ingestDir(store.root))).toEqual([]);
  });
});
