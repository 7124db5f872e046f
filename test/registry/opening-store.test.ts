/**
 * pullImage accepts a store that is still opening, so a caller can overlap the registry round
 * trips with a new root's layout: the pull then lands in that store, and a store that fails to
 * open fails the pull with its own error (never an unhandled rejection).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { makeTmp } from '../helpers/tmp.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { pullImage } from '../../src/registry/pull.js';
import { pushImage } from '../../src/registry/push.js';
import { testSession, validateStoredImage } from './util.js';

const tmp = await makeTmp('imgbuild-remote-opening-');
afterAll(() => tmp.cleanup());

describe('pull into a store that is still opening', () => {
  let reg: TestRegistry;
  let dest: string;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'none' });
    const src = await OciStore.open(join(tmp.dir, 'src'));
    await ensureBusybox(src.root);
    dest = `${reg.host}/test/opening:1`;
    await pushImage(src, BUSYBOX_REF, dest, { session: testSession() });
  });
  afterAll(() => reg?.stop());

  it('pulls into the store the promise resolves to', async () => {
    const opening = OciStore.open(join(tmp.dir, 'dst'));
    const pulled = await pullImage(opening, dest, { session: testSession() });
    const store = await opening;
    expect(await store.resolve(dest)).toMatchObject({ digest: pulled.digest });
    await validateStoredImage(store, pulled);
  });

  it('downloads into a new root once its directories exist, and places once it is laid out', async () => {
    const opening = OciStore.begin(join(tmp.dir, 'dst-early'));
    await opening.usable;
    expect(existsSync(join(opening.root, 'ingest'))).toBe(true);
    expect(existsSync(join(opening.root, 'blobs', 'sha256'))).toBe(true);
    const pulled = await pullImage(opening, dest, { session: testSession() });
    const store = await opening.store;
    expect(existsSync(join(opening.root, 'imgbuild.json'))).toBe(true);
    expect(await store.resolve(dest)).toMatchObject({ digest: pulled.digest });
    await validateStoredImage(store, pulled);
    expect(await readdir(join(opening.root, 'ingest'))).toEqual([]);
  });

  it('an existing store that cannot be used gets nothing written, and fails the pull', async () => {
    const root = join(tmp.dir, 'corrupt');
    await mkdir(join(root, 'ingest'), { recursive: true });
    await writeFile(join(root, 'imgbuild.json'), '{ not json');
    const opening = OciStore.begin(root);
    await expect(opening.usable).rejects.toThrow(/not valid JSON/);
    await expect(pullImage(opening, dest, { session: testSession() })).rejects.toThrow(/not valid JSON/);
    expect(await readdir(join(root, 'ingest'))).toEqual([]);
    expect(existsSync(join(root, 'blobs'))).toBe(false);
  });

  it('fails with the store error when the store cannot be opened', async () => {
    const notADir = join(tmp.dir, 'file');
    await writeFile(notADir, 'x');
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const opening = OciStore.open(join(notADir, 'root'));
      await expect(pullImage(opening, dest, { session: testSession() })).rejects.toThrow(/ENOTDIR|not a directory/i);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
