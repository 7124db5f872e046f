/**
 * Path handling inside a root filesystem seen from the host: resolution that follows symlinks as
 * if `root` were `/` (an absolute target or a `..` chain is clamped at the root, like containerd's
 * fs.RootPath / securejoin), and user/group lookup from the image's own /etc/passwd and /etc/group.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { resolveChownIds, resolveExecUser, type ExecUser } from '../../image/users.js';
import { resolveInRootSync } from '../../tar/resolve.js';

/**
 * Resolves `p` (absolute or relative to `/`) inside `root` and returns the host path. Symlinks met
 * on the way are followed within the root; the last component is followed only when
 * `followFinal` is set. Components that do not exist are appended as they are.
 * The result is always `root` itself or below it.
 */
export async function resolveInRoot(root: string, p: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  const rel = await resolveRel(root, p, opts.followFinal ?? true);
  return rel === '' ? root : `${root}/${rel}`;
}

/** Like resolveInRoot but returns the confined path relative to the root (`''` for the root). */
export async function resolveRel(root: string, p: string, followFinal = true): Promise<string> {
  // A file met mid-path reads as missing: callers stat the result and report a missing path.
  return resolveInRootSync(root, p, { followFinal, lenient: true }).rel;
}

/** Normalises a path inside an image to an absolute, clean form (`a/../b` → `/b`), clamped at `/`. */
export function cleanAbs(p: string): string {
  return posix.resolve('/', p);
}

// User and group lookup is shared with container runs (src/image/users.ts); here the image's
// files are read from a rootfs dir on the host, resolved inside it.

async function readInRoot(root: string, file: string): Promise<string | undefined> {
  try {
    return await readFile(await resolveInRoot(root, file), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw e;
  }
}

/** `--chown=` semantics (Docker), names looked up in the rootfs at `root`: see resolveChownIds. */
export function resolveChown(root: string, spec: string): Promise<{ uid: number; gid: number }> {
  return resolveChownIds(spec, (f) => readInRoot(root, f));
}

/** `USER` semantics for a process, looked up in the rootfs at `root`: see resolveExecUser. */
export function resolveProcessUser(root: string, spec: string): Promise<ExecUser> {
  return resolveExecUser(spec, (f) => readInRoot(root, f));
}
