/**
 * `-u name[:group]` resolution against the image's /etc/passwd and /etc/group, read straight from
 * the snapshot's layer dirs (upper first, then each lowerdir top-down, as overlayfs resolves them),
 * so nothing needs to be mounted on the host.
 */
import type { Mount } from '../runner/spec.js';
import { readRootfsFile } from './rootfs.js';
import { InvalidArgumentError } from '../errors.js';

interface Passwd { name: string; uid: number; gid: number; home: string }
interface Group { name: string; gid: number; members: string[] }

function parsePasswd(t: string | undefined): Passwd[] {
  return (t ?? '').split('\n').flatMap((l) => {
    const f = l.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return [];
    return [{ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }];
  });
}
function parseGroup(t: string | undefined): Group[] {
  return (t ?? '').split('\n').flatMap((l) => {
    const f = l.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!)) return [];
    return [{ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) }];
  });
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

/** Docker's rules: `user`, `uid`, `user:group`, `uid:gid`; gid defaults to the passwd entry's, else 0. */
export async function resolveUser(rootfs: Mount[], spec: string | undefined): Promise<ResolvedUser> {
  const s = (spec ?? '').trim();
  const [u = '', g] = s.split(':', 2);
  const passwd = parsePasswd(await readRootfsFile(rootfs, 'etc/passwd').catch(() => undefined));
  const groups = parseGroup(await readRootfsFile(rootfs, 'etc/group').catch(() => undefined));
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (u === '' || u === 'root') {
    const root = passwd.find((p) => p.uid === 0);
    name = root?.name ?? 'root';
    home = root?.home ?? '/root';
  } else if (/^\d+$/.test(u)) {
    uid = Number(u);
    const p = passwd.find((x) => x.uid === uid);
    if (p) ({ gid, home, name } = p);
  } else {
    const p = passwd.find((x) => x.name === u);
    if (!p) throw new InvalidArgumentError(`unable to find user ${u}: no matching entries in the image's /etc/passwd`);
    ({ uid, gid, home, name } = p);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const gr = groups.find((x) => x.name === g);
      if (!gr) throw new InvalidArgumentError(`unable to find group ${g}: no matching entries in the image's /etc/group`);
      gid = gr.gid;
    }
  }
  const additionalGids = name ? groups.filter((x) => x.members.includes(name) && x.gid !== gid).map((x) => x.gid) : [];
  return { uid, gid, additionalGids, home };
}
