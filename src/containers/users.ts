/**
 * `-u name[:group]` resolution against the image's /etc/passwd and /etc/group, read straight from
 * the snapshot's layer dirs (upper first, then each lowerdir top-down, as overlayfs resolves them),
 * so nothing needs to be mounted on the host. The rules are shared with the builder's USER.
 */
import type { Mount } from '../sandbox/spec.js';
import { readRootfsFile } from './rootfs.js';
import { resolveExecUser, type ExecUser } from '../image/users.js';

export type ResolvedUser = ExecUser;

/** Docker's rules (runc GetExecUser): `user`, `uid`, `user:group`, `uid:gid`; empty means root. */
export function resolveUser(rootfs: Mount[], spec: string | undefined): Promise<ResolvedUser> {
  return resolveExecUser(spec ?? '', (f) => readRootfsFile(rootfs, f.slice(1)));
}
