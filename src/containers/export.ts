/**
 * `export`: the container's filesystem flattened into one tar, as `docker export` writes it: the
 * image's layers, the init layer's placeholders and the container's changes, without its volumes,
 * binds or the kernel's filesystems. The layers are stacked read-only (the upper dir as the topmost
 * lowerdir, so its whiteouts hide what the container deleted) on a private temporary mount; a
 * running container is frozen meanwhile, so the tar is one moment's state.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm, rmdir } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Mount } from '../sandbox/spec.js';
import { mountAll, unmount } from '../snapshots/mount.js';
import { packDir } from '../tar/pack.js';
import { ContainerStateError } from './errors.js';
import { withFrozen } from './freeze.js';
import { readSpec } from './record.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

/** The container's rootfs as one read-only overlay of all its layer dirs (upper first). */
function readOnlyStack(rootfs: Mount[]): Mount | undefined {
  const m = rootfs.find((x) => x.type === 'overlay');
  if (!m) return undefined;
  const opt = (k: string): string | undefined => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  const upper = opt('upperdir');
  const lower = opt('lowerdir');
  if (!upper || !lower) return undefined;
  return { type: 'overlay', source: 'overlay', options: ['ro', 'index=off', 'redirect_dir=off', 'metacopy=off', `lowerdir=${upper}:${lower}`], ...(m.cwd ? { cwd: m.cwd } : {}) };
}

export async function exportContainer(root: string, nameOrId: string, out: string | Writable, o: LifecycleOptions = {}): Promise<void> {
  const rec = await getContainer(root, nameOrId, o);
  const stack = readOnlyStack((await readSpec(root, rec.id)).rootfs);
  if (!stack) throw new ContainerStateError(rec.id, `container ${rec.name} has no overlay rootfs to export`);
  const write = async (): Promise<void> => {
    const dir = await mkdtemp(join(tmpdir(), 'imgbuild-export-'));
    try {
      await mountAll([stack], dir, o.signal ? { signal: o.signal } : {});
      try {
        const tar = packDir(dir, { mode: 'plain', ...(o.signal ? { signal: o.signal } : {}) });
        if (typeof out !== 'string') {
          for await (const chunk of tar) if (!out.write(chunk)) await once(out, 'drain');
          return;
        }
        // A file appears complete or not at all.
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
  };
  await (rec.state.status === 'running' ? withFrozen(root, rec, o, write) : write());
}
