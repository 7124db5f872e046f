/**
 * Where the build bench puts what it would otherwise delete between builds. This host's root
 * filesystem is ext4 without a journal, and there the inode allocator skips every inode freed in
 * the last 60 s (360 s while its inode-table block is dirty) with one buffer-cache lookup each, for
 * every file it creates: right after a tool's store of 10k files was removed, `cp -a` of 10k tiny
 * files took 1.4-2.2 s of system time instead of 0.13 s. Removing each tool's store before the next
 * tool's build put that cost into whoever came next. So nothing is removed while builds are timed:
 * a store is renamed into the trash (same filesystem, one rename) and the trash is emptied at the
 * end, or before a workload that would not fit beside it. The tools' storage goes on file systems
 * of their own where loop mounts can be made (volume.ts); the trash is the fallback, and holds the
 * bench's contexts.
 */
import { mkdirSync, renameSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { mountsUnder, removeTree } from './measure.js';
import { spawnSync } from 'node:child_process';
import type { Storage } from './volume.js';

export class Trash implements Storage {
  private n = 0;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Moves `path` (unmounted first) into the trash; a path that does not exist is skipped. */
  put(path: string): void {
    for (const m of mountsUnder(path)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    const left = mountsUnder(path);
    if (left.length > 0) throw new Error(`mounts left under ${path} (${left[0]}); not moving it`);
    try {
      renameSync(path, join(this.dir, String(this.n++)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  clear(path: string): void {
    this.put(path);
  }

  /** Bytes free on the trash's filesystem. */
  free(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Removes everything in the trash. */
  empty(): void {
    removeTree(this.dir);
    mkdirSync(this.dir, { recursive: true });
  }
}
