import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rename, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, REPO_ROOT } from '../helpers/cli.js';
import { OciStore, STORE_VERSION } from '../../src/store/store.js';
import { digestOf } from '../../src/image/digest.js';
import { MediaTypes } from '../../src/image/media-types.js';
import type { Descriptor } from '../../src/image/types.js';
import { processStartTime } from '../../src/pid.js';
import { BlobNotFoundError, CorruptStoreError, StoreVersionError } from '../../src/store/errors.js';
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

async function blobFiles(s: OciStore): Promise<string[]> {
  return readdir(join(s.root, 'blobs', 'sha256'));
}
async function ingestFiles(s: OciStore): Promise<string[]> {
  return readdir(join(s.root, 'ingest'));
}
async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

describe('OciStore layout', () => {
  it('creates an OCI image layout with a version file', async () => {
    expect(JSON.parse(await readFile(join(store.root, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const idx = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8'));
    expect(idx).toMatchObject({ schemaVersion: 2, manifests: [] });
    expect(JSON.parse(await readFile(join(store.root, 'imgbuild.json'), 'utf8'))).toEqual({ version: STORE_VERSION });
  });

  it('refuses a store written by a newer version', async () => {
    await writeFile(join(store.root, 'imgbuild.json'), JSON.stringify({ version: 99 }));
    await expect(OciStore.open(store.root)).rejects.toBeInstanceOf(StoreVersionError);
    await expect(OciStore.open(store.root)).rejects.toThrow(/format version 99/);
  });

  it('reports a corrupt version file as a corrupt store', async () => {
    await writeFile(join(store.root, 'imgbuild.json'), '{nope');
    await expect(OciStore.open(store.root)).rejects.toBeInstanceOf(CorruptStoreError);
  });
});

describe('blob writes are verified', () => {
  it('commits a blob whose digest and size match', async () => {
    const data = Buffer.from('hello blobs');
    const d = digestOf(data);
    const w = await store.writer('t', { expected: d, total: data.length });
    await w.write(data);
    await w.commit(data.length, d);
    expect(await store.info(d)).toEqual({ digest: d, size: data.length });
    expect((await store.read({ digest: d, size: data.length })).toString()).toBe('hello blobs');
    expect(await ingestFiles(store)).toEqual([]);
  });

  it('refuses a wrong digest and leaves nothing in blobs/ or ingest/', async () => {
    const data = Buffer.from('payload');
    const wrong = digestOf('something else');
    const w = await store.writer('t');
    await w.write(data);
    await expect(w.commit(data.length, wrong)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await blobFiles(store)).toEqual([]);
    expect(await ingestFiles(store)).toEqual([]);
  });

  it('refuses a wrong size at commit and leaves nothing behind', async () => {
    const data = Buffer.from('payload');
    const w = await store.writer('t');
    await w.write(data);
    await expect(w.commit(data.length + 1, digestOf(data))).rejects.toBeInstanceOf(SizeMismatchError);
    expect(await blobFiles(store)).toEqual([]);
    expect(await ingestFiles(store)).toEqual([]);
  });

  it('refuses writing past the announced total', async () => {
    const w = await store.writer('t', { total: 4 });
    await expect(w.write(Buffer.from('12345'))).rejects.toBeInstanceOf(SizeMismatchError);
    expect(await ingestFiles(store)).toEqual([]);
  });

  it('digest() may be read before commit (computed digests) but ends writing', async () => {
    const w = await store.writer('t');
    await w.write(Buffer.from('abc'));
    const d = w.digest();
    expect(d).toBe(digestOf('abc'));
    expect(w.digest()).toBe(d);
    await expect(w.write(Buffer.from('more'))).rejects.toThrow(/write after digest/);
    await w.commit(3, d);
    expect(await store.info(d)).toEqual({ digest: d, size: 3 });
  });

  it('treats an existing blob as success (content addressed)', async () => {
    const a = await store.put(Buffer.from('same'), MediaTypes.OCI_CONFIG);
    const b = await store.put(Buffer.from('same'), MediaTypes.OCI_CONFIG);
    expect(b).toEqual(a);
    expect(await blobFiles(store)).toHaveLength(1);
  });
});

describe('verifying reads', () => {
  it('the streaming reader fails on a flipped byte', async () => {
    const data = Buffer.alloc(200_000, 7);
    const desc = await store.put(data, MediaTypes.OCI_LAYER);
    await flipByte(store.blobPath(desc.digest), 123_456);
    const r = await store.reader(desc);
    const consume = async (): Promise<number> => {
      let n = 0;
      for await (const c of r) n += (c as Buffer).length;
      return n;
    };
    await expect(consume()).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('read() fails on a flipped byte and on a truncated blob', async () => {
    const desc = await store.put(Buffer.from('{"a":1}'), MediaTypes.OCI_CONFIG);
    await flipByte(store.blobPath(desc.digest), 2);
    await expect(store.read(desc)).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.read({ ...desc, size: desc.size + 1 })).rejects.toBeInstanceOf(SizeMismatchError);
  });

  it('a missing blob is a typed not-found error', async () => {
    const d = digestOf('absent');
    await expect(store.reader({ digest: d, size: 6 })).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.read({ digest: d, size: 6 })).rejects.toBeInstanceOf(BlobNotFoundError);
  });
});

describe('index.json refs', () => {
  const manifest = async (s: OciStore, n: number): Promise<Descriptor> =>
    s.put(Buffer.from(JSON.stringify({ schemaVersion: 2, n })), MediaTypes.OCI_MANIFEST);

  it('tags, retags, untags and keeps untagged images', async () => {
    const m1 = await manifest(store, 1);
    const m2 = await manifest(store, 2);
    await store.tag('docker.io/library/a:1', m1);
    await store.tag('docker.io/library/a:1', m2); // moves the tag
    expect((await store.resolve('docker.io/library/a:1'))?.digest).toBe(m2.digest);
    await store.keepUntagged(m1);
    await store.keepUntagged(m1); // idempotent
    expect((await store.list()).filter((e) => e.ref === undefined)).toHaveLength(1);
    // tagging an untagged image replaces its untagged entry
    await store.tag('docker.io/library/b:1', m1);
    expect((await store.list()).filter((e) => e.ref === undefined)).toHaveLength(0);
    expect((await store.untag('docker.io/library/b:1'))?.digest).toBe(m1.digest);
    expect(await store.untag('docker.io/library/b:1')).toBeUndefined();
    expect(await store.removeManifest(m2.digest)).toHaveLength(1);
    expect(await store.list()).toEqual([]);
  });

  it('gc removes unreferenced blobs and keeps what an index entry reaches or keep lists', async () => {
    const layer = await store.put(Buffer.from('layer'), MediaTypes.OCI_LAYER);
    const config = await store.put(Buffer.from('{}'), MediaTypes.OCI_CONFIG);
    const m = await store.put(Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [layer] })), MediaTypes.OCI_MANIFEST);
    const stray = await store.put(Buffer.from('stray'), MediaTypes.OCI_LAYER);
    const kept = await store.put(Buffer.from('kept'), MediaTypes.OCI_LAYER);
    await store.tag('docker.io/library/x:1', m);
    // our own lease protects fresh blobs from concurrent gcs, not from our own
    const r = await store.gc({ keep: [kept.digest] });
    expect(r.removed).toEqual([stray.digest]);
    expect(r.bytes).toBe(5);
    expect((await blobFiles(store)).sort()).toEqual([layer, config, m, kept].map((d) => d.digest.slice(7)).sort());
  });

  it('two processes tagging concurrently never lose a tag nor corrupt index.json', async () => {
    const m = await manifest(store, 1);
    const script = `
      const { OciStore } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/store/store.js'))});
      const s = await OciStore.open(process.argv[1]);
      const desc = JSON.parse(process.argv[2]);
      for (let i = 0; i < 20; i++) await s.tag('docker.io/library/p' + process.argv[3] + ':' + i, desc);
      await s.release();
    `;
    const run = (who: string): Promise<number> =>
      new Promise((res, rej) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script, store.root, JSON.stringify(m), who], { stdio: 'inherit' });
        c.on('error', rej);
        c.on('close', (code) => res(code ?? 1));
      });
    expect(await Promise.all([run('a'), run('b')])).toEqual([0, 0]);
    const idx = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    const refs = (await store.list()).map((e) => e.ref).sort();
    expect(idx.manifests).toHaveLength(40);
    expect(new Set(refs).size).toBe(40);
    for (const who of ['a', 'b']) for (let i = 0; i < 20; i++) expect(refs).toContain(`docker.io/library/p${who}:${i}`);
  });

  it('parallel `imgbuild tag` processes all land their tags', async () => {
    // `tag` needs a loadable image: give the manifest a config and no layers
    const config = await store.put(
      Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })),
      MediaTypes.OCI_CONFIG,
    );
    const img = await store.put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OCI_MANIFEST, config, layers: [] })), MediaTypes.OCI_MANIFEST);
    await store.tag('docker.io/library/src:1', img);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => runCli(['tag', 'src:1', `dst:${i}`], { root: store.root })));
    expect(results.map((r) => r.code)).toEqual(Array(8).fill(0));
    const refs = (await store.list()).map((e) => e.ref);
    for (let i = 0; i < 8; i++) expect(refs).toContain(`docker.io/library/dst:${i}`);
    expect(refs).toHaveLength(9);
  });
});

describe('leases', () => {
  const leases = (): Promise<string[]> => readdir(join(store.root, 'leases'));

  it('gc spares the blobs a live process leased, and drops the lease once its owner is gone', async () => {
    const child = spawn('sleep', ['60']);
    try {
      const start = (await processStartTime(child.pid!))!;
      const leased = await store.put(Buffer.from('leased'), MediaTypes.OCI_LAYER);
      const free = await store.put(Buffer.from('free'), MediaTypes.OCI_LAYER);
      await store.release(); // (our own lease never protects anything from our own gc)
      // (the last line is still being written: it counts once its newline is there)
      await writeFile(join(store.root, 'leases', `${child.pid}-${start}-0badcafe.jsonl`), `${JSON.stringify({ blobs: [leased.digest] })}\n{"blobs":["sha256:`);
      // a lease of a process that is gone, and one of an older version whose process is gone
      const dead = spawnSync('true').pid!;
      await writeFile(join(store.root, 'leases', `${dead}-12345-0badcafe.jsonl`), `${JSON.stringify({ blobs: [free.digest] })}\n`);
      await writeFile(join(store.root, 'leases', `${dead}-0badcafe`), String(dead));
      expect((await store.gc()).removed).toEqual([free.digest]);
      expect(await leases()).toEqual([`${child.pid}-${start}-0badcafe.jsonl`]);
      child.kill('SIGKILL');
      await once(child, 'exit');
      expect((await store.gc()).removed).toEqual([leased.digest]);
      expect(await leases()).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('protect leases the present blobs, names the missing ones, and release ends it', async () => {
    const a = await store.put(Buffer.from('a'), MediaTypes.OCI_LAYER);
    await store.release();
    const missing = digestOf('not here');
    expect(await store.protect([a.digest, missing])).toEqual([missing]);
    expect(await leases()).toEqual([`${store.lease.id}.jsonl`]);
    // (leased before looking: a missing one stays listed, which protects nothing)
    expect(await readFile(join(store.root, 'leases', `${store.lease.id}.jsonl`), 'utf8')).toBe(`${JSON.stringify({ blobs: [a.digest, missing], snapshots: [] })}\n`);
    expect(await store.protect([a.digest])).toEqual([]); // already leased: nothing more written
    // another store (as another process would) may not collect it while it is leased
    const other = await OciStore.open(store.root);
    expect((await other.gc()).removed).toEqual([]);
    await store.release();
    expect(await leases()).toEqual([]);
    expect((await other.gc()).removed).toEqual([a.digest]);
  });

  it('a blob written by one store is leased against another store\'s gc until released', async () => {
    const other = await OciStore.open(store.root);
    const d = await store.put(Buffer.from('fresh'), MediaTypes.OCI_LAYER);
    expect((await other.gc()).removed).toEqual([]);
    await store.release();
    expect((await other.gc()).removed).toEqual([d.digest]);
  });

  it('gc hides a blob before deleting it and puts back one leased meanwhile; a killed gc\'s hidden blobs go back when wanted', async () => {
    const a = await store.put(Buffer.from('a'), MediaTypes.OCI_LAYER);
    const b = await store.put(Buffer.from('b'), MediaTypes.OCI_LAYER);
    await store.release();
    // What a gc killed after hiding them leaves: a leased one and an unwanted one.
    const dead = spawnSync('true').pid!;
    const hidden = join(store.root, 'ingest', `${dead}-gc-0badcafe`);
    await mkdir(hidden);
    for (const d of [a, b]) await rename(join(store.root, 'blobs', 'sha256', d.digest.slice(7)), join(hidden, d.digest.replace(':', '-')));
    const other = await OciStore.open(store.root);
    await other.lease.add({ blobs: [a.digest] });
    // A tag needing one puts it back at once.
    const m = await store.put(Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [b] })), MediaTypes.OCI_MANIFEST);
    await store.tag('docker.io/library/needs-b:1', m);
    expect((await blobFiles(store)).sort()).toEqual([b.digest.slice(7), m.digest.slice(7)].sort());
    await store.untag('docker.io/library/needs-b:1');
    await store.release();
    await rename(join(store.root, 'blobs', 'sha256', b.digest.slice(7)), join(hidden, b.digest.replace(':', '-')));
    const r = await store.gc();
    expect(await blobFiles(store)).toEqual([a.digest.slice(7)]);
    expect(await ingestFiles(store)).toEqual([]);
    expect(r.removed).toEqual([m.digest]);
    await other.release();
  });

  it('an image is only tagged when its config and layers are present', async () => {
    const layer = await store.put(Buffer.from('layer'), MediaTypes.OCI_LAYER);
    const config = { mediaType: MediaTypes.OCI_CONFIG, digest: digestOf('{"gone":1}'), size: 10 };
    const m = await store.put(Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [layer] })), MediaTypes.OCI_MANIFEST);
    await expect(store.tag('docker.io/library/incomplete:1', m)).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.keepUntagged(m)).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await store.list()).toEqual([]);
  });
});
