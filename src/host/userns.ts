/**
 * Rootless imgbuild: a user other than root runs the CLI inside a user namespace of its own, as
 * podman does, where it is root over its own files and its subordinate ids. The namespace maps the
 * container's root to the user and 1..N to the user's range in /etc/subuid and /etc/subgid (set up
 * by newuidmap/newgidmap, through util-linux's unshare), so an image's owners other than root stay
 * distinct; a user without a range gets the single-id mapping (everything root-owned inside) and
 * one warning line. Overlay mounts there with `userxattr` (snapshots/probe.ts finds it).
 *
 * The re-executed CLI learns who it really is from IMGBUILD_ROOTLESS ("uid:gid"), since inside the
 * namespace getuid() says 0.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';

export const ROOTLESS_ENV = 'IMGBUILD_ROOTLESS';

export interface IdRange {
  start: number;
  size: number;
}

/** The caller's first range in a subuid/subgid file's text (lines `name-or-id:start:count`). */
export function subordinateRange(text: string, name: string, id: number): IdRange | undefined {
  for (const line of text.split('\n')) {
    const [who, start, size] = line.trim().split(':');
    if (who !== name && who !== String(id)) continue;
    const s = Number(start);
    const n = Number(size);
    if (Number.isInteger(s) && Number.isInteger(n) && n > 0) return { start: s, size: n };
  }
  return undefined;
}

/** The host uid and gid of a rootless CLI (re-executed or not); undefined for root. */
export function rootlessIds(env: NodeJS.ProcessEnv = process.env): { uid: number; gid: number } | undefined {
  const mark = env[ROOTLESS_ENV];
  if (mark) {
    const [uid, gid] = mark.split(':').map(Number);
    return { uid: uid!, gid: gid! };
  }
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? undefined : { uid, gid: process.getgid?.() ?? 0 };
}

/** True in a CLI that must enter its user namespace first. */
export function needsUserNamespace(env: NodeJS.ProcessEnv = process.env): boolean {
  return (process.getuid?.() ?? 0) !== 0 && !env[ROOTLESS_ENV];
}

export interface Reexec {
  args: string[];
  /** Said once on stderr when the mapping had to fall back to the user's own id alone. */
  warning?: string;
}

/** The unshare(1) command line that runs `argv` in the user's namespace. */
export function unshareCommand(argv: string[], files: { subuid?: string; subgid?: string } = {}): Reexec {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = String(uid);
  }
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  const subuid = subordinateRange(read(files.subuid ?? '/etc/subuid'), name, uid);
  const subgid = subordinateRange(read(files.subgid ?? '/etc/subgid'), name, gid);
  const args = ['unshare', '--map-root-user', '--mount', '--propagation', 'private'];
  let warning: string | undefined;
  if (subuid && subgid) {
    args.push(`--map-users=${subuid.start},1,${subuid.size}`, `--map-groups=${subgid.start},1,${subgid.size}`);
  } else {
    const file = subuid ? '/etc/subgid' : '/etc/subuid';
    const opt = subuid ? '--add-subgids' : '--add-subuids';
    warning = `imgbuild: warning: no subordinate ${subuid ? 'gid' : 'uid'} range for user ${name} in ${file}: files of an image's other users become root's; add one with usermod ${opt} 100000-165535 ${name}`;
  }
  return { args: [...args, '--', ...argv], ...(warning ? { warning } : {}) };
}

/**
 * Runs this CLI again inside the user namespace and resolves to its exit status. Signals the
 * terminal sends reach both processes (one process group); SIGTERM sent to this one is passed on.
 */
export function reexecInUserNamespace(argv: string[], env: NodeJS.ProcessEnv, root: string, stderr: NodeJS.WritableStream): Promise<number> {
  const { args, warning } = unshareCommand(argv);
  if (warning) stderr.write(`${warning}\n`);
  const childEnv = { ...env, [ROOTLESS_ENV]: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`, IMGBUILD_ROOT: root };
  return new Promise((resolve) => {
    const child = spawn(args[0]!, args.slice(1), { stdio: 'inherit', env: childEnv });
    const pass = (sig: NodeJS.Signals): void => void child.kill(sig);
    process.on('SIGTERM', pass);
    process.on('SIGINT', () => {});
    child.on('error', (e) => {
      stderr.write(`imgbuild: FAILED_PRECONDITION: cannot start unshare(1) for a user namespace: ${e.message} (hint: install util-linux and uidmap)\n`);
      resolve(125);
    });
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15)));
  });
}
