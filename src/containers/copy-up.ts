/**
 * Docker's copy-up: a new, empty volume gets the image's content at its mount point, owners,
 * modes, times, links and xattrs kept. The image's layers are read through a read-only overlay of
 * them (the kernel's, or fuse-overlayfs's for a container on that driver), mounted by a short-lived `unshare -m` child in a mount namespace of its own, so the mount
 * is gone with the child whatever happens to us; `cp -a` copies. The path is resolved inside the
 * rootfs first (symlinks as if the rootfs were `/`), and the child refuses a path that still has
 * a symlink in the merged view, so an image cannot make us copy from the host.
 */
import { spawn } from 'node:child_process';
import { lstat, mkdir, readlink, rmdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ImgbuildError } from '../errors.js';
import type { Mount } from '../sandbox/spec.js';
import { layerDirs } from './rootfs.js';

async function lookup(dirs: string[], path: string): Promise<{ kind: 'dir' | 'symlink' | 'other'; layer: string } | undefined> {
  for (const d of dirs) {
    try {
      const st = await lstat(join(d, path));
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // whiteout
      return { kind: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other', layer: d };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw e;
    }
  }
  return undefined;
}

/** `path` in the merged rootfs with its symlinks followed inside it; undefined unless it is a directory. */
export async function resolveDirInRootfs(rootfs: Mount[], path: string): Promise<string | undefined> {
  const dirs = layerDirs(rootfs);
  let todo = path.split('/').filter(Boolean);
  let cur: string[] = [];
  for (let links = 0; todo.length > 0; ) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      cur.pop();
      continue;
    }
    const p = `/${[...cur, c].join('/')}`;
    const e = await lookup(dirs, p);
    if (!e) return undefined;
    if (e.kind === 'symlink') {
      if (++links > 40) return undefined;
      const target = await readlink(join(e.layer, p));
      if (target.startsWith('/')) cur = [];
      todo = [...target.split('/').filter(Boolean), ...todo];
      continue;
    }
    if (e.kind !== 'dir') return undefined;
    cur.push(c);
  }
  return `/${cur.join('/')}`;
}

// $1 overlay options, $2 mount point, $3 path inside, $4 destination, $5 \`fuse\` for
// fuse-overlayfs: its daemon lives in the child's namespace, which its mount would keep alive, so
// it is unmounted on the way out whatever happens (the kernel's mount just goes with the namespace).
const SCRIPT = `set -e
if [ "$5" = fuse ]; then
  trap 'umount "$2" 2>/dev/null || true' EXIT
  fuse-overlayfs -o "$1" "$2"
else
  mount -t overlay overlay -o "ro,$1" "$2"
fi
p=
IFS=/
for c in $3; do
  [ -n "$c" ] || continue
  p="$p/$c"
  if [ -L "$2$p" ] || [ ! -d "$2$p" ]; then echo "$p is not a directory of the image" >&2; exit 3; fi
done
unset IFS
cp -a "$2$p/." "$4/"
`;

/**
 * Copies the image's directory at `path` (of the container's `rootfs` mounts, before it runs)
 * into `dest`. Nothing is copied when the image has no directory there. `scratch` is an empty
 * directory of ours the overlay is mounted on (in the child's namespace only).
 */
export async function copyUp(rootfs: Mount[], path: string, dest: string, scratch: string, o: { signal?: AbortSignal } = {}): Promise<void> {
  const ov = rootfs.find((m) => m.type === 'overlay' || m.type === 'fuse.fuse-overlayfs');
  if (!ov) return; // an image without layers has nothing to copy
  const resolved = await resolveDirInRootfs(rootfs, path);
  if (!resolved || resolved === '/') return;
  const lowers = ov.options.filter((x) => !x.startsWith('upperdir=') && !x.startsWith('workdir='));
  if (!lowers.some((x) => x.startsWith('lowerdir='))) return;
  await mkdir(scratch, { recursive: true });
  try {
    await new Promise<void>((res, rej) => {
      // Rootless, the mount needs a user namespace of its own (the layers are the user's files).
      const ns = process.getuid?.() === 0 ? ['-m'] : ['-U', '-r', '-m'];
      const child = spawn('unshare', [...ns, '--propagation', 'private', 'sh', '-c', SCRIPT, 'sh', lowers.join(','), scratch, posix.normalize(resolved), dest, ov.type === 'overlay' ? 'kernel' : 'fuse'], {
        cwd: ov.cwd ?? '/',
        stdio: ['ignore', 'ignore', 'pipe'],
        ...(o.signal ? { signal: o.signal } : {}),
      });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('error', (e) => rej(e));
      child.on('close', (code) => {
        if (code === 0) return res();
        const line = err.trim().split('\n').at(-1) ?? '';
        rej(new ImgbuildError('INTERNAL', `copying the image's ${path} into its volume: ${line || `exit status ${code}`}`));
      });
    });
  } finally {
    await rmdir(scratch).catch(() => {});
  }
}
