/**
 * A local busybox base image for tests: `ensureBusybox(root)` tags `busybox:latest` in the store at
 * `root` (a no-op when it is there already). The rootfs comes from scripts/busybox-rootfs.sh, is
 * packed once per test process with fixed metadata and kept uncompressed, so every store gets the
 * same layer and image id and the import costs one 2 MB blob write.
 */
import { spawnSync } from 'node:child_process';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import tar from 'tar-stream';
import { makeTmp } from './tmp.js';
import { REPO_ROOT } from './cli.js';
import { OciStore } from '../../src/layers/store.js';
import { writeImage } from '../../src/layers/image.js';
import { digestOf, type Digest } from '../../src/layers/digest.js';
import { MediaTypes } from '../../src/layers/media-types.js';
import type { ImageConfig } from '../../src/layers/types.js';

export const BUSYBOX_REF = 'docker.io/library/busybox:latest';
/** The fixed creation time of the test base image (matches the rootfs mtimes). */
export const BUSYBOX_CREATED = '2023-11-14T22:13:20Z';
const MTIME = new Date(1700000000 * 1000);

async function packTree(dir: string): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  const add = (header: tar.Headers, body?: Buffer): Promise<void> =>
    new Promise((res, rej) => pack.entry(header, body, (e) => (e ? rej(e) : res())));
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(dir, r);
      const st = await lstat(p);
      const base = { name: r, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: MTIME };
      if (st.isDirectory()) {
        await add({ ...base, name: `${r}/`, type: 'directory' });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        await add({ ...base, type: 'symlink', linkname: await readlink(p) });
      } else if (st.isFile()) {
        await add({ ...base, type: 'file', size: st.size }, await readFile(p));
      }
    }
  };
  await walk('');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

let layerTar: Promise<Buffer> | undefined;

/** The busybox rootfs as an uncompressed, deterministic layer tar (built once per process). */
export function busyboxLayerTar(): Promise<Buffer> {
  layerTar ??= (async () => {
    const tmp = await makeTmp('imgbuild-busybox-');
    try {
      const rootfs = join(tmp.dir, 'rootfs');
      const r = spawnSync('sh', [join(REPO_ROOT, 'scripts', 'busybox-rootfs.sh'), rootfs], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`busybox-rootfs.sh failed: ${r.stderr}`);
      return await packTree(rootfs);
    } finally {
      await tmp.cleanup();
    }
  })();
  return layerTar;
}

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/** Imports `busybox:latest` into the store at `root` unless it is already tagged there. */
export async function ensureBusybox(root: string): Promise<void> {
  const store = await OciStore.open(root);
  try {
    if (await store.resolve(BUSYBOX_REF)) return;
    const layer = await busyboxLayerTar();
    const diffId: Digest = digestOf(layer);
    const layerDesc = await store.put(layer, MediaTypes.OCI_LAYER);
    const config: ImageConfig = {
      created: BUSYBOX_CREATED,
      architecture: goArch(),
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: BUSYBOX_CREATED, created_by: 'imgbuild import busybox rootfs', comment: 'imported from busybox-rootfs.sh' }],
    };
    const manifest = await writeImage(store, config, [layerDesc]);
    await store.tag(BUSYBOX_REF, manifest);
  } finally {
    await store.release();
  }
}
