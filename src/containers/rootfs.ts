/**
 * Reading and adjusting a container's merged rootfs without mounting it on the host: lookups go
 * through the overlay's layer dirs top-down (upper, then each lowerdir), as overlayfs resolves them.
 */
import { chown, lstat, mkdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import type { Mount } from '../sandbox/spec.js';

/** The layer dirs of a rootfs, topmost first. */
export function layerDirs(rootfs: Mount[]): string[] {
  const dirs: string[] = [];
  for (const m of rootfs) {
    const base = m.cwd ?? '/';
    const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
    if (m.type === 'overlay' || m.type === 'fuse.fuse-overlayfs') {
      const opt = (k: string): string | undefined => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
      const upper = opt('upperdir');
      if (upper) dirs.push(abs(upper));
      for (const l of (opt('lowerdir') ?? '').split(':').filter(Boolean)) dirs.push(abs(l));
    } else if (m.type === 'bind') dirs.push(abs(m.source));
  }
  return dirs;
}

/** Reads a file of the merged rootfs (no symlink following; a whiteout hides lower copies). */
export async function readRootfsFile(rootfs: Mount[], path: string): Promise<string | undefined> {
  for (const d of layerDirs(rootfs)) {
    const p = join(d, path);
    try {
      const st = await lstat(p);
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // overlay whiteout
      if (!st.isFile()) return undefined;
      return await readFile(p, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw e;
    }
  }
  return undefined;
}

/** What the merged rootfs has at `path` (no symlink following), or undefined when absent. */
async function entryType(rootfs: Mount[], path: string): Promise<'dir' | 'symlink' | 'other' | undefined> {
  for (const d of layerDirs(rootfs)) {
    try {
      const st = await lstat(join(d, path));
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // whiteout
      return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw e;
    }
  }
  return undefined;
}

/**
 * Creates a missing directory (`-w` that the image lacks, as Docker does) in the writable upper
 * dir. Stops at a symlink: creating a directory over it in the upper layer would hide the link.
 * `owner`: the host ids of the container's root (`--userns=auto`), who then owns what is made.
 */
export async function ensureRootfsDir(rootfs: Mount[], path: string, owner?: { uid: number; gid: number }): Promise<void> {
  const upper = layerDirs(rootfs)[0];
  const isOverlay = rootfs.some((m) => m.type === 'overlay' || m.type === 'fuse.fuse-overlayfs');
  if (!upper || !isOverlay) return;
  const parts = posix.normalize(path).split('/').filter(Boolean);
  let cur = '';
  for (const p of parts) {
    cur = `${cur}/${p}`;
    const t = await entryType(rootfs, cur);
    if (t === 'dir') continue;
    if (t !== undefined) return;
    // Everything from here down is missing: create the rest of the path in one go.
    const first = await mkdir(join(upper, ...parts), { recursive: true, mode: 0o755 });
    if (owner && first) {
      for (let d = join(upper, ...parts); d.length >= first.length; d = dirname(d)) await chown(d, owner.uid, owner.gid);
    }
    return;
  }
}
