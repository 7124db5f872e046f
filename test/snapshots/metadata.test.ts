/**
 * The snapshot metadata document as read() keeps it between reads (by the gen token at the head
 * of the file): whoever replaced the file, what read() returns is what the file holds, and a
 * transaction that fails changes neither the file nor what was handed out.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { MetadataStore, type MetadataDocument } from '../../src/snapshots/metadata.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp();
});
afterEach(async () => {
  await tmp.cleanup();
});

const onDisk = async (m: MetadataStore): Promise<MetadataDocument> => JSON.parse(await readFile(m.path, 'utf8')) as MetadataDocument;

async function add(m: MetadataStore, key: string): Promise<void> {
  await m.update(async (tx, save) => {
    tx.create(key, 'active', undefined);
    await save();
  });
}

describe('snapshot metadata read', () => {
  it('puts a fresh token first in each save and reads what another writer saved', async () => {
    const a = new MetadataStore(tmp.dir);
    const b = new MetadataStore(tmp.dir);
    await add(a, 'one');
    const head = (await readFile(a.path, 'utf8')).slice(0, 40);
    expect(head).toMatch(/^\{\n "gen": "[0-9a-f]{16}",/);
    expect(Object.keys((await b.read()).snapshots)).toEqual(['one']);
    expect(Object.keys((await a.read()).snapshots)).toEqual(['one']);
    await add(b, 'two');
    expect((await readFile(a.path, 'utf8')).slice(0, 40)).not.toBe(head);
    // a's kept copy is stale: the new token at the head sends it to the file.
    expect(Object.keys((await a.read()).snapshots).sort()).toEqual(['one', 'two']);
    expect(await a.read()).toEqual(await onDisk(a));
  });

  it('reads a document without a token (an older writer) from the file every time', async () => {
    const a = new MetadataStore(tmp.dir);
    await add(a, 'one');
    await a.read();
    const doc = await onDisk(a);
    delete doc.gen;
    doc.snapshots['two'] = { ...doc.snapshots['one']!, id: 7 };
    await writeFile(a.path, JSON.stringify(doc, null, 1));
    expect(Object.keys((await a.read()).snapshots).sort()).toEqual(['one', 'two']);
    doc.snapshots['three'] = { ...doc.snapshots['one']!, id: 8 };
    await writeFile(a.path, JSON.stringify(doc));
    expect(Object.keys((await a.read()).snapshots).sort()).toEqual(['one', 'three', 'two']);
  });

  it('keeps a failed transaction out of the file and out of what read() handed out', async () => {
    const a = new MetadataStore(tmp.dir);
    await add(a, 'one');
    const before = await a.read();
    const text = await readFile(a.path, 'utf8');
    await expect(a.update(async (tx) => {
      tx.create('two', 'active', undefined);
      tx.remove('one');
      throw new Error('no');
    })).rejects.toThrow('no');
    expect(Object.keys(before.snapshots)).toEqual(['one']);
    expect(await readFile(a.path, 'utf8')).toBe(text);
    expect(Object.keys((await a.read()).snapshots)).toEqual(['one']);
    // A change made after saving is not on disk, nor in what read() gives next.
    await a.update(async (tx, save) => {
      tx.create('two', 'active', undefined);
      await save();
      tx.remove('one');
    });
    expect(Object.keys((await a.read()).snapshots).sort()).toEqual(['one', 'two']);
    expect(await a.read()).toEqual(await onDisk(a));
  });
});
