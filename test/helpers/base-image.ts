/**
 * A local busybox base image for tests: `ensureBusybox(root)` tags `busybox:latest` in the store at
 * `root` (a no-op when it is there already). The rootfs comes from scripts/busybox-rootfs.sh, is
 * packed once per test process (packDir: the same layer `imgbuild import` makes of it) and kept
 * uncompressed, so every store gets the same layer and image id and the import costs one 2 MB
 * blob write.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { makeTmp } from './tmp.js';
import { REPO_ROOT } from './cli.js';
import { OciStore } from '../../src/store/store.js';
import { writeImage } from '../../src/store/images.js';
import { packDir } from '../../src/tar/pack.js';
import { digestOf, type Digest } from '../../src/image/digest.js';
import { MediaTypes } from '../../src/image/media-types.js';
import type { ImageConfig } from '../../src/image/types.js';

export const BUSYBOX_REF = 'docker.io/library/busybox:latest';
/** The fixed creation time of the test base image (matches the rootfs mtimes). */
export const BUSYBOX_CREATED = '2023-11-14T22:13:20Z';

async function packTree(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packDir(dir, { mode: 'plain' })) chunks.push(c as Buffer);
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
      history: [{ created: BUSYBOX_CREATED, created_by: '', comment: 'busybox rootfs from busybox-static' }],
    };
    const manifest = await writeImage(store, config, [layerDesc]);
    await store.tag(BUSYBOX_REF, manifest);
  } finally {
    await store.release();
  }
}

/** A new temporary directory holding a store (`<dir>/store`) with busybox:latest in it. */
export async function tmpBusyboxStore(prefix?: string): Promise<{ tmp: Awaited<ReturnType<typeof makeTmp>>; root: string }> {
  const tmp = await makeTmp(prefix);
  const root = join(tmp.dir, 'store');
  await ensureBusybox(root);
  return { tmp, root };
}
