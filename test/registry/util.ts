/** Shared pieces of the registry tests: stores with busybox, image validation, store snapshots. */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OciStore } from '../../src/store/store.js';
import { loadImage, findImage } from '../../src/store/images.js';
import { openLayerTar } from '../../src/store/layers.js';
import { digestOf } from '../../src/image/digest.js';
import type { Descriptor } from '../../src/image/types.js';
import { RegistrySession } from '../../src/registry/transport.js';
import type { Authenticator } from '../../src/registry/auth.js';

/** A session with quick retries so fault tests stay fast. */
export function testSession(auth?: Authenticator): RegistrySession {
  return new RegistrySession({ ...(auth ? { auth } : {}), retry: { attempts: 4, baseDelay: 20, maxDelay: 1500 } });
}

/**
 * ggcr validate.Image: every blob's digest and size, every layer's diffID against the config's
 * rootfs.diff_ids (recomputed from the uncompressed tar).
 */
export async function validateStoredImage(store: OciStore, manifest: Descriptor): Promise<void> {
  const img = await loadImage(store, manifest);
  const diffIds = img.config.rootfs.diff_ids;
  if (diffIds.length !== img.manifest.layers.length) throw new Error(`diff_ids ${diffIds.length} != layers ${img.manifest.layers.length}`);
  for (const [i, l] of img.manifest.layers.entries()) {
    for await (const _ of await store.reader(l)) {
      /* the verifying reader fails on a bad digest or size */
    }
    const tar = await openLayerTar(store, l);
    const h = createHash('sha256');
    for await (const c of tar) h.update(c as Buffer);
    const diffId = `sha256:${h.digest('hex')}`;
    if (diffId !== diffIds[i]) throw new Error(`layer ${i} (${l.digest}) diffID ${diffId} != config ${diffIds[i]}`);
  }
}

export async function findStored(store: OciStore, ref: string): Promise<Descriptor> {
  return (await findImage(store, ref)).descriptor;
}

/** blobs/ file names and the bytes of index.json: what a failed operation must leave unchanged. */
export async function storeSnapshot(root: string): Promise<{ blobs: string[]; index: string }> {
  const blobs = (await readdir(join(root, 'blobs', 'sha256')).catch(() => [] as string[])).sort();
  return { blobs, index: await readFile(join(root, 'index.json'), 'utf8') };
}

/** Every file in blobs/ hashes to its name (nothing unverified was ever placed). */
export async function assertBlobsIntact(root: string): Promise<void> {
  for (const n of await readdir(join(root, 'blobs', 'sha256'))) {
    const d = digestOf(await readFile(join(root, 'blobs', 'sha256', n)));
    if (d !== `sha256:${n}`) throw new Error(`blob ${n} does not match its content (${d})`);
  }
}
