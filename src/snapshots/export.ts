/**
 * A rootfs's layers flattened into one tar (`export`): the layer dirs of its overlay (the upper dir
 * as the topmost lowerdir, so its whiteouts hide what was deleted) are stacked read-only on a
 * private temporary mount, packed, and unmounted; nothing else mounted in a container (volumes,
 * binds, the kernel's filesystems) is part of it.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm, rmdir } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError } from '../errors.js';
import { writeAllTo } from '../fs.js';
import type { Mount } from '../sandbox/spec.js';
import { packDir } from '../tar/pack.js';
import { makeTempMountDir, mountAll, unmount } from './mount.js';

/** A rootfs as one read-only overlay of all its layer dirs (upper first). */
function readOnlyStack(rootfs: Mount[]): Mount | undefined {
  const m = rootfs.find((x) => x.type === 'overlay' || x.type === 'fuse.fuse-overlayfs');
  if (!m) return undefined;
  const opt = (k: string): string | undefined => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  const upper = opt('upperdir');
  const lower = opt('lowerdir');
  if (!upper || !lower) return undefined;
  // fuse-overlayfs with lower dirs alone serves them read-only.
  if (m.type === 'fuse.fuse-overlayfs') return { type: m.type, source: m.source, options: [`lowerdir=${upper}:${lower}`], ...(m.cwd ? { cwd: m.cwd } : {}) };
  // The snapshotter's own options stay (`userxattr` in a user namespace, where overlay may not
  // read trusted.* xattrs and refuses the mount without it).
  const kept = m.options.filter((x) => !/^(lowerdir|upperdir|workdir)=/.test(x));
  return { type: 'overlay', source: 'overlay', options: ['ro', ...kept, `lowerdir=${upper}:${lower}`], ...(m.cwd ? { cwd: m.cwd } : {}) };
}

/** Writes the flattened rootfs to `out` (a file appears complete or not at all). */
export async function exportRootfs(
  rootfs: Mount[],
  out: string | Writable,
  /** fromHostIds: the container's files are owned by a user namespace's range (`--userns=auto`): the tar carries the ids it saw. */
  o: { fromHostIds?: { uid: number; gid: number; size: number }; signal?: AbortSignal } = {},
): Promise<void> {
  const stack = readOnlyStack(rootfs);
  if (!stack) throw new InvalidArgumentError('the rootfs is not an overlay: nothing to export');
  const dir = await makeTempMountDir('export');
  try {
    await mountAll([stack], dir, o.signal ? { signal: o.signal } : {});
    try {
      const tar = packDir(dir, { mode: 'plain', ...(o.fromHostIds ? { fromHostIds: o.fromHostIds } : {}), ...(o.signal ? { signal: o.signal } : {}) });
      if (typeof out !== 'string') {
        await writeAllTo(tar, out);
        return;
      }
      const tmp = `${out}.${process.pid}.tmp`;
      try {
        await pipeline(tar, createWriteStream(tmp, { mode: 0o644 }));
        await rename(tmp, out);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    } finally {
      await unmount(dir);
    }
  } finally {
    await rmdir(dir).catch(() => {});
  }
}
