/**
 * Path handling inside a root filesystem seen from the host: resolution that follows symlinks as
 * if `root` were `/` (an absolute target or a `..` chain is clamped at the root, like containerd's
 * fs.RootPath / securejoin), and user/group lookup from the image's own /etc/passwd and /etc/group.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { ImgbuildError } from '../errors.js';
import { resolveInRootSync } from '../layers/tar/resolve.js';

// Resolution itself is the one the layer code uses (src/layers/tar/resolve.ts).
export { SymlinkLoopError } from '../layers/tar/resolve.js';

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

export interface PasswdEntry { name: string; uid: number; gid: number; home: string }
export interface GroupEntry { name: string; gid: number; members: string[] }

async function readLines(root: string, file: string): Promise<string[]> {
  try {
    const host = await resolveInRoot(root, file);
    return (await readFile(host, 'utf8')).split('\n');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return [];
    throw e;
  }
}

export async function readPasswd(root: string): Promise<PasswdEntry[]> {
  const out: PasswdEntry[] = [];
  for (const l of await readLines(root, '/etc/passwd')) {
    const f = l.split(':');
    if (f.length < 4 || !f[0]) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? '/' });
  }
  return out;
}

export async function readGroup(root: string): Promise<GroupEntry[]> {
  const out: GroupEntry[] = [];
  for (const l of await readLines(root, '/etc/group')) {
    const f = l.split(':');
    if (f.length < 3 || !f[0]) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

export class UnknownUserError extends ImgbuildError {
  constructor(readonly spec: string, what: string) {
    super('INVALID_ARGUMENT', `unable to find ${what} in the image's /etc/passwd or /etc/group: ${spec}`);
    this.name = 'UnknownUserError';
  }
}

const isNum = (s: string): boolean => /^\d+$/.test(s);

/**
 * `--chown=` semantics (Docker): `user`, `uid`, `user:group`, `uid:gid`. Names are looked up in the
 * rootfs; a user without a group gets the same numeric id as gid.
 */
export async function resolveChown(root: string, spec: string): Promise<{ uid: number; gid: number }> {
  const [u = '', g] = spec.split(':', 2);
  let uid: number;
  if (isNum(u)) uid = Number(u);
  else {
    const e = (await readPasswd(root)).find((p) => p.name === u);
    if (!e) throw new UnknownUserError(spec, `user ${JSON.stringify(u)}`);
    uid = e.uid;
  }
  if (g === undefined || g === '') return { uid, gid: uid };
  if (isNum(g)) return { uid, gid: Number(g) };
  const ge = (await readGroup(root)).find((x) => x.name === g);
  if (!ge) throw new UnknownUserError(spec, `group ${JSON.stringify(g)}`);
  return { uid, gid: ge.gid };
}

/**
 * `USER` semantics for a process (runc/moby `user.GetExecUser`): a name or uid, optionally with a
 * group; without a group the user's primary group from /etc/passwd (0 when unknown), plus the
 * supplementary groups that list the user.
 */
export async function resolveProcessUser(root: string, spec: string): Promise<{ uid: number; gid: number; additionalGids: number[]; home: string }> {
  const s = spec === '' ? 'root' : spec;
  const [u = '', g] = s.split(':', 2);
  const passwd = await readPasswd(root);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNum(u)) {
    uid = Number(u);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === u);
    if (!entry) throw new UnknownUserError(spec, `user ${JSON.stringify(u)}`);
    uid = entry.uid;
  }
  const groups = await readGroup(root);
  let gid = entry?.gid ?? 0;
  if (g !== undefined && g !== '') {
    if (isNum(g)) gid = Number(g);
    else {
      const ge = groups.find((x) => x.name === g);
      if (!ge) throw new UnknownUserError(spec, `group ${JSON.stringify(g)}`);
      gid = ge.gid;
    }
  }
  const additionalGids = entry && (g === undefined || g === '')
    ? groups.filter((x) => x.members.includes(entry.name) && x.gid !== gid).map((x) => x.gid)
    : [];
  return { uid, gid, additionalGids, home: entry?.home ?? '/' };
}
