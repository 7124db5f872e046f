/**
 * The snapshots and host mounts of a step: an image's chain unpacked on demand (once, however
 * many stages ask), an active snapshot's mounts on a host dir for the duration of a function, and
 * a read-only host view of an image's rootfs.
 */
import { mkdtemp, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Mount } from '../../sandbox/spec.js';
import { timed, type PhaseClock } from '../../phases.js';
import { mountAll, unmount } from '../../snapshots/mount.js';
import { LayerView } from '../../snapshots/upper-view.js';
import { resolveChownIds } from '../../image/users.js';
import { resolveChown } from './fs-root.js';
import type { ImageState } from './image-state.js';
import type { DispatchEnv } from './stage.js';

/** Makes sure the committed snapshot of `img`'s chain exists (unpacking layers when missing). */
export async function ensureSnapshot(env: DispatchEnv, img: ImageState): Promise<string | undefined> {
  if (!img.chainId) return undefined;
  const chain = img.chainId;
  const sn = await env.snapshotter();
  const inflight = env.unpacking.get(chain);
  if (inflight) await inflight.catch(() => {});
  // Leased when found (or unpacked), so a concurrent prune keeps it for the rest of the build.
  if (await sn.acquire(chain, env.store.lease, env.signal ? { signal: env.signal } : {})) return chain;
  const unpack = (): Promise<void> => sn.unpack([...img.layers], [...img.config.rootfs.diff_ids], { lease: env.store.lease, ...(env.signal ? { signal: env.signal } : {}) });
  // Layers of steps that were hits in an imported cache are fetched now that their content is needed.
  const p = env.remoteCache ? env.remoteCache.fetchLayers(img.layers).then(unpack) : unpack();
  env.unpacking.set(chain, p);
  try {
    await p;
  } finally {
    env.unpacking.delete(chain);
  }
  return chain;
}

/**
 * Mounts `mounts` on a fresh dir under the build tmp dir, runs fn, always unmounts; `unmounted`
 * is told when a mount was made and undone (its umount flushed what fn wrote).
 */
export async function withHostMount<T>(env: DispatchEnv, mounts: Mount[], fn: (root: string) => Promise<T>, phases?: PhaseClock, unmounted?: () => void): Promise<T> {
  const only = mounts.length === 1 ? mounts[0]! : undefined;
  if (only?.type === 'bind' && (await env.snapshotter()).inPlace) return fn(only.source);
  const mounted = phases?.start('mount');
  const target = await mkdtemp(join(env.tmpDir, 'mnt-'));
  await mountAll(mounts, target, env.signal ? { signal: env.signal } : {});
  mounted?.();
  try {
    return await fn(target);
  } finally {
    const unmounting = phases?.start('mount');
    await unmount(target);
    unmounted?.();
    await rmdir(target).catch(() => {});
    unmounting?.();
  }
}

/**
 * The one layer dir of `img`'s chain that alone holds what `paths` name (LayerView.soleLayerOf),
 * to be read in place of the whole rootfs: no view snapshot, no mount. Undefined when the image
 * has no layers or the paths need the merged view.
 */
export async function soleLayerRoot(env: DispatchEnv, img: ImageState, paths: string[], phases?: PhaseClock): Promise<string | undefined> {
  const chain = await timed(phases, 'unpack', () => ensureSnapshot(env, img));
  const sn = await env.snapshotter();
  if (!chain || !sn.mounts) return undefined;
  return LayerView.ofImage(await sn.mounts(chain))?.soleLayerOf(paths);
}

/**
 * `--chown` names looked up in an image's /etc/passwd and /etc/group read from its layer dirs
 * (LayerView): no view snapshot and no mount for two small files. Through the mounted rootfs where
 * a symlink is on the way, and where `mount` asks for it.
 */
export async function resolveImageChown(env: DispatchEnv, img: ImageState, spec: string, o: { phases?: PhaseClock; mount?: boolean } = {}): Promise<{ uid: number; gid: number }> {
  const chain = o.mount ? undefined : await timed(o.phases, 'unpack', () => ensureSnapshot(env, img));
  const sn = await env.snapshotter();
  const view = chain && sn.mounts ? LayerView.ofImage(await sn.mounts(chain)) : undefined;
  if (view) {
    const blocked = new Error('through a symlink');
    const read = async (f: string): Promise<string | undefined> => {
      const text = view.readFile(f);
      if (text === 'blocked') throw blocked;
      return text;
    };
    try {
      return await resolveChownIds(spec, read);
    } catch (e) {
      if (e !== blocked) throw e;
    }
  }
  return withImageRoot(env, img, (r) => resolveChown(r, spec), o.phases);
}

/** A read-only host view of an image's rootfs for the duration of fn. */
export async function withImageRoot<T>(env: DispatchEnv, img: ImageState, fn: (root: string) => Promise<T>, phases?: PhaseClock): Promise<T> {
  const parent = await timed(phases, 'unpack', () => ensureSnapshot(env, img));
  if (!parent) {
    const empty = await mkdtemp(join(env.tmpDir, 'empty-'));
    try {
      return await fn(empty);
    } finally {
      await rmdir(empty).catch(() => {});
    }
  }
  const sn = await env.snapshotter();
  const key = `build-view-${randomBytes(8).toString('hex')}`;
  const mounts = await timed(phases, 'snapshot', () => sn.view(key, parent, { lease: env.store.lease }));
  try {
    return await withHostMount(env, mounts, fn, phases);
  } finally {
    await sn.remove(key).catch(() => {});
  }
}
