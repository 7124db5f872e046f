/**
 * Host-wide claims on container ids. A container's kernel objects are named for its id and are
 * host-wide — the cgroup `imgbuild/<id>`, the netns `imgbuild-<id>` with its veth, the port proxy
 * serving it — while its record lives in one store root. `/run/imgbuild/containers/<id>`, a
 * symlink to that root, is made before any of them and removed after them, so that prune can tell
 * which of the objects it finds belong to a container that is gone (its own root's, or a root
 * that no longer has it) and leave every other root's alone. /run is a tmpfs, as the objects
 * themselves vanish at reboot.
 */
import { mkdir, readlink, symlink, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { ROOTLESS_ENV } from '../host/userns.js';

/** A rootless user's claims live in its own runtime dir: /run/imgbuild is root's. */
export const DEFAULT_CLAIMS_DIR = process.env[ROOTLESS_ENV]
  ? join(process.env.XDG_RUNTIME_DIR || join(tmpdir(), `imgbuild-${process.env[ROOTLESS_ENV]!.split(':')[0]}`), 'imgbuild', 'containers')
  : '/run/imgbuild/containers';

/** Records that container `id`'s kernel objects belong to the store at `root`. */
export async function claimId(id: string, root: string, dir = DEFAULT_CLAIMS_DIR): Promise<void> {
  const p = join(dir, id);
  const target = resolve(root);
  try {
    try {
      await symlink(target, p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(dir, { recursive: true });
      await symlink(target, p);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await claimOf(id, dir)) === target) return;
    // A user who may not write /run runs containers all the same; prune just cannot find
    // that user's leftovers by their claim.
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return;
    throw e;
  }
}

export async function unclaimId(id: string, dir = DEFAULT_CLAIMS_DIR): Promise<void> {
  await unlink(join(dir, id)).catch(() => {});
}

/** The root that claims `id`, or undefined when no root does. */
export async function claimOf(id: string, dir = DEFAULT_CLAIMS_DIR): Promise<string | undefined> {
  return readlink(join(dir, id)).catch(() => undefined);
}
