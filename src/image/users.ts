/**
 * User and group lookup in an image's own /etc/passwd and /etc/group, shared by the builder (USER,
 * `--chown`) and container runs (`-u`). How the files are read is the caller's business (a rootfs
 * dir on the host, or a snapshot's layer dirs): pass a reader that returns a file's text, or
 * undefined when it is missing.
 */
import { ImgbuildError } from '../errors.js';

export interface PasswdEntry { name: string; uid: number; gid: number; home: string }
export interface GroupEntry { name: string; gid: number; members: string[] }

/** Reads `/etc/passwd` or `/etc/group` of the image; undefined when the file does not exist. */
export type UserDbReader = (file: '/etc/passwd' | '/etc/group') => Promise<string | undefined>;

export class UnknownUserError extends ImgbuildError {
  constructor(readonly spec: string, what: string) {
    super('INVALID_ARGUMENT', `unable to find ${what} in the image's /etc/passwd or /etc/group: ${spec}`);
    this.name = 'UnknownUserError';
  }
}

/** Parses passwd(5) text; lines without a name or with non-numeric ids are skipped. */
export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const l of (text ?? '').split('\n')) {
    const f = l.split(':');
    if (f.length < 4 || !f[0] || !isNum(f[2]!) || !isNum(f[3]!)) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' });
  }
  return out;
}

/** Parses group(5) text; lines without a name or with a non-numeric gid are skipped. */
export function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const l of (text ?? '').split('\n')) {
    const f = l.split(':');
    if (f.length < 3 || !f[0] || !isNum(f[2]!)) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

const isNum = (s: string): boolean => /^\d+$/.test(s);

/**
 * `--chown=` semantics (Docker): `user`, `uid`, `user:group`, `uid:gid`. Names are looked up in the
 * image; a user without a group gets the same numeric id as gid.
 */
export async function resolveChownIds(spec: string, read: UserDbReader): Promise<{ uid: number; gid: number }> {
  const [u = '', g] = spec.split(':', 2);
  let uid: number;
  if (isNum(u)) uid = Number(u);
  else {
    const e = parsePasswd(await read('/etc/passwd')).find((p) => p.name === u);
    if (!e) throw new UnknownUserError(spec, `user ${JSON.stringify(u)}`);
    uid = e.uid;
  }
  if (g === undefined || g === '') return { uid, gid: uid };
  if (isNum(g)) return { uid, gid: Number(g) };
  const ge = parseGroup(await read('/etc/group')).find((x) => x.name === g);
  if (!ge) throw new UnknownUserError(spec, `group ${JSON.stringify(g)}`);
  return { uid, gid: ge.gid };
}

export interface ExecUser { uid: number; gid: number; additionalGids: number[]; home: string }

/**
 * `USER` / `run -u` semantics for a process (runc/moby `user.GetExecUser`): a name or uid,
 * optionally with a group; empty means root. Without a group, the user's primary group from
 * /etc/passwd (0 when the uid is unknown) plus the supplementary groups that list the user; an
 * explicit group replaces both. A name that is not in the image is an error; a bare uid is not.
 */
export async function resolveExecUser(spec: string, read: UserDbReader): Promise<ExecUser> {
  const s = spec.trim() === '' ? 'root' : spec.trim();
  const [u = '', g] = s.split(':', 2);
  const passwd = parsePasswd(await read('/etc/passwd'));
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNum(u)) {
    uid = Number(u);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === u);
    // An image without /etc/passwd still runs as root by default, as under Docker.
    if (!entry && u === 'root') entry = { name: 'root', uid: 0, gid: 0, home: '/root' };
    if (!entry) throw new UnknownUserError(spec, `user ${JSON.stringify(u)}`);
    uid = entry.uid;
  }
  const groups = parseGroup(await read('/etc/group'));
  let gid = entry?.gid ?? 0;
  const explicitGroup = g !== undefined && g !== '';
  if (explicitGroup) {
    if (isNum(g)) gid = Number(g);
    else {
      const ge = groups.find((x) => x.name === g);
      if (!ge) throw new UnknownUserError(spec, `group ${JSON.stringify(g)}`);
      gid = ge.gid;
    }
  }
  // Supplementary groups only in the implicit form (runc: "only make sense if in the implicit form").
  const additionalGids = entry && !explicitGroup
    ? groups.filter((x) => x.members.includes(entry.name) && x.gid !== gid).map((x) => x.gid)
    : [];
  return { uid, gid, additionalGids, home: entry?.home ?? '/' };
}
