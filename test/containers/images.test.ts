/**
 * Images as containers see them: imageUsers counts every container directory that names an image
 * (one still being created too), removeImages and pruneImages leave those images alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { imageId } from '../../src/image/model.js';
import { imageUsers, pruneImages, removeImages } from '../../src/containers/images.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let root: string;
let store: OciStore;

beforeAll(async () => {
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-images-'));
  store = await OciStore.open(root);
});
afterAll(async () => {
  await store?.release();
  await tmp?.cleanup();
});

const ctrId = 'c'.repeat(64);

describe('images in use', () => {
  it('imageUsers: no containers directory, then one being created', async () => {
    expect(await imageUsers(root)).toEqual(new Map());
    const img = await findImage(store, 'busybox');
    const dir = join(root, 'containers', `.creating-${ctrId}-1-1`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'state.json'), JSON.stringify({ id: ctrId, name: 'x', image: img.descriptor.digest }));
    await mkdir(join(root, 'containers', 'junk'), { recursive: true });
    await writeFile(join(root, 'containers', 'junk', 'state.json'), '{not json');
    expect(await imageUsers(root)).toEqual(new Map([[img.descriptor.digest, [ctrId]]]));
  });

  it('removeImages refuses an image in use without force, and only untags it with force', async () => {
    const img = await findImage(store, 'busybox');
    await store.tag('docker.io/library/other:1', img.descriptor);
    // another tag remains: only that name goes
    const [untag] = await removeImages(store, ['other:1']);
    expect(untag).toMatchObject({ input: 'other:1', untagged: ['docker.io/library/other:1'] });
    expect(untag?.deleted).toBeUndefined();
    const [refused] = await removeImages(store, ['busybox']);
    expect(refused?.error).toMatchObject({ name: 'ImageInUseError', code: 'FAILED_PRECONDITION' });
    const [forced] = await removeImages(store, ['busybox'], { force: true });
    expect(forced).toMatchObject({ untagged: [BUSYBOX_REF] });
    expect(forced?.deleted).toBeUndefined();
    // kept as dangling for its container
    expect((await findImage(store, imageId(img))).descriptor.digest).toBe(img.descriptor.digest);
    const [missing] = await removeImages(store, ['nothing-here']);
    expect(missing?.error).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('pruneImages keeps the dangling image a container uses', async () => {
    expect(await pruneImages(store, { all: true })).toEqual([]);
    expect((await store.list()).length).toBe(1);
  });
});
