/**
 * `diff`: what a container changed, from its overlay upper dir alone (Docker's overlay `Changes`):
 * a whiteout is `D`; an entry absent from the layers below (the init layer included) is `A`, and
 * so is everything below a new or opaque directory; an entry present below is `C`, except a
 * directory whose mtime is unchanged (overlayfs copied it up only to reach a child). The init
 * layer's placeholders and the mount points of binds, volumes and tmpfs are left out, as they are the
 * runtime's, not the container's changes. Sorted by path, as Docker sorts them.
 */
import { lstat, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { getAttributeSync } from 'fs-xattr';
import { join, posix } from 'node:path';
import { readSpec } from './record.js';
import { layerDirs } from './rootfs.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

export type ChangeKind = 'A' | 'C' | 'D';
export interface Change {
  kind: ChangeKind;
  path: string;
}

/** Files the runtime binds over init-layer placeholders: never the container's own changes. */
const RUNTIME_FILES = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];

const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

async function lstatOrUndef(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** What the layers below the upper dir hold at `rel`, topmost first; a whiteout hides the rest. */
async function lowerStat(lowers: string[], rel: string): Promise<Stats | undefined> {
  for (const d of lowers) {
    const st = await lstatOrUndef(join(d, rel));
    if (!st) continue;
    return isWhiteout(st) ? undefined : st;
  }
  return undefined;
}

/** fuse-overlayfs's markers of an opaque dir, beside the xattrs (tar/pack.ts 'fuse-overlayfs'). */
const FUSE_OPAQUE_MARKERS = new Set(['.wh..wh..opq', '.wh..opq']);

async function isOpaque(path: string, fuse: boolean): Promise<boolean> {
  if (fuse) {
    for (const n of FUSE_OPAQUE_MARKERS) if (await lstatOrUndef(join(path, n))) return true;
  }
  return ['trusted.overlay.opaque', 'user.overlay.opaque', ...(fuse ? ['user.fuseoverlayfs.opaque'] : [])].some((x) => {
    try {
      return getAttributeSync(path, x).toString() === 'y';
    } catch {
      return false; // ENODATA / ENOTSUP: not opaque
    }
  });
}

/**
 * The changes in `upper` against `lowers` (topmost first), skipping the paths in `exclude`. A
 * fuse-overlayfs upper dir (`fuse`) may also mark a deletion with a `.wh.<name>` file and an
 * opaque dir with marker entries, which are not changes of their own.
 */
export async function upperChanges(upper: string, lowers: string[], exclude: Set<string> = new Set(), fuse = false): Promise<Change[]> {
  const out: Change[] = [];
  async function walk(rel: string, added: boolean): Promise<void> {
    const names = await readdir(join(upper, rel));
    for (const name of names) {
      const r = `${rel}/${name}`;
      const abs = join(upper, r);
      const st = await lstat(abs);
      if (fuse && FUSE_OPAQUE_MARKERS.has(name)) continue;
      if (fuse && st.isFile() && name.startsWith('.wh.')) {
        const gone = `${rel}/${name.slice(4)}`;
        if (!exclude.has(gone) && !added) out.push({ kind: 'D', path: gone });
        continue;
      }
      const keep = !exclude.has(r);
      if (isWhiteout(st)) {
        if (keep && !added) out.push({ kind: 'D', path: r });
        continue;
      }
      const below = added ? undefined : await lowerStat(lowers, r);
      if (!below) {
        if (keep) out.push({ kind: 'A', path: r });
        if (st.isDirectory()) await walk(r, true);
        continue;
      }
      const unchangedDir = st.isDirectory() && below.isDirectory() && st.mtimeMs === below.mtimeMs;
      if (keep && !unchangedDir) out.push({ kind: 'C', path: r });
      if (st.isDirectory()) await walk(r, !below.isDirectory() || (await isOpaque(abs, fuse)));
    }
  }
  await walk('', false);
  const bytes = (s: string): Buffer => Buffer.from(s);
  return out.sort((a, b) => Buffer.compare(bytes(a.path), bytes(b.path)));
}

export async function containerChanges(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<Change[]> {
  const rec = await getContainer(root, nameOrId, o);
  const spec = await readSpec(root, rec.id);
  const [upper, ...lowers] = layerDirs(spec.rootfs);
  const fuse = spec.rootfs.some((m) => m.type === 'fuse.fuse-overlayfs');
  if (!upper || !(fuse || spec.rootfs.some((m) => m.type === 'overlay'))) return [];
  const exclude = new Set<string>(RUNTIME_FILES);
  for (const b of rec.hostConfig.binds) exclude.add(posix.normalize(`/${b.destination}`));
  for (const t of rec.hostConfig.tmpfs) exclude.add(posix.normalize(`/${t.destination}`));
  for (const v of rec.hostConfig.volumes ?? []) exclude.add(posix.normalize(`/${v.destination}`));
  return upperChanges(upper, lowers, exclude, fuse);
}
