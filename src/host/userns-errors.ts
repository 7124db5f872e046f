/**
 * Why a rootless CLI could not make its user namespace, in one line naming what is missing and
 * how to fix it. Decided from what unshare(1) said, the setuid helpers it runs (newuidmap and
 * newgidmap from the `uidmap` package) and the kernel settings that refuse user namespaces to
 * unprivileged users: user.max_user_namespaces = 0, Debian's and Ubuntu's
 * kernel.unprivileged_userns_clone = 0, and Ubuntu's AppArmor restriction
 * kernel.apparmor_restrict_unprivileged_userns = 1 (namespaces without capabilities, so the
 * id maps cannot be written). What certainly fails is found before unshare runs (a few stats and
 * /proc reads on the rootless path only), so its own message never precedes ours; the rest is
 * judged after a failure from unshare's words, asked again with its stderr kept.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { getAttributeSync } from 'fs-xattr';

export interface UsernsSysctls {
  maxUserNamespaces?: number;
  unprivilegedUsernsClone?: number;
  apparmorRestrict?: number;
}

/** A setuid helper as found in PATH: absent, or its path and whether it is setuid root or has file capabilities. */
export interface MapHelper {
  name: 'newuidmap' | 'newgidmap';
  path?: string;
  setuidRoot?: boolean;
  /** Installed with file capabilities instead (Fedora's shadow-utils, podman's in-container image). */
  fileCaps?: boolean;
}

/** The kernel's settings (synchronous: three small /proc reads, before a re-exec). */
export function readUsernsSysctls(procSys = '/proc/sys'): UsernsSysctls {
  // existsSync first: a thrown ENOENT costs far more than the read (a kernel without the setting).
  const num = (p: string): number | undefined => {
    try {
      if (!existsSync(join(procSys, p))) return undefined;
      const t = readFileSync(join(procSys, p), 'utf8');
      return /^\d+/.test(t.trim()) ? Number.parseInt(t, 10) : undefined;
    } catch {
      return undefined;
    }
  };
  const out: UsernsSysctls = {};
  const max = num('user/max_user_namespaces');
  const clone = num('kernel/unprivileged_userns_clone');
  const apparmor = num('kernel/apparmor_restrict_unprivileged_userns');
  if (max !== undefined) out.maxUserNamespaces = max;
  if (clone !== undefined) out.unprivilegedUsernsClone = clone;
  if (apparmor !== undefined) out.apparmorRestrict = apparmor;
  return out;
}

/** Where `name` is in PATH, and whether it is setuid root (how Debian's uidmap installs it). */
export function findMapHelper(name: MapHelper['name'], path = process.env.PATH ?? ''): MapHelper {
  const p = inPath(name, path);
  if (!p) return { name };
  const st = statSync(p);
  const setuidRoot = st.uid === 0 && (st.mode & 0o4000) !== 0;
  return { name, path: p, setuidRoot, ...(setuidRoot ? {} : { fileCaps: hasFileCaps(p) }) };
}

function hasFileCaps(p: string): boolean {
  try {
    return getAttributeSync(p, 'security.capability').length > 0;
  } catch {
    return false;
  }
}

/**
 * What certainly stops unshare, known before running it: a helper missing or not setuid, a kernel
 * setting that refuses every unprivileged user namespace. (AppArmor's restriction is judged only
 * after a failure: a profile may allow imgbuild.)
 */
export function preflightMessage(o: { user: string; unshare: boolean; helpers: MapHelper[]; sysctls: UsernsSysctls }): string | undefined {
  if (!o.unshare) return 'unshare is not installed (not found in PATH): install the util-linux package; a user other than root needs it to make imgbuild\'s user namespace';
  return helperMessage(o.user, o.helpers) ?? kernelMessage({ ...o.sysctls, apparmorRestrict: undefined });
}

/** The first `name` in PATH (a file), or undefined. */
export function inPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(':').filter(Boolean)) {
    try {
      // No exception for the common miss (ENOENT); a directory the user may not search throws.
      if (statSync(join(dir, name), { throwIfNoEntry: false })?.isFile()) return join(dir, name);
    } catch {
      // not reachable: as good as absent
    }
  }
  return undefined;
}

function helperMessage(user: string, helpers: MapHelper[]): string | undefined {
  for (const h of helpers) {
    const ids = h.name === 'newuidmap' ? 'uid' : 'gid';
    if (!h.path) return `${h.name} is not installed (not found in PATH): install the uidmap package, which maps user ${user}'s subordinate ${ids}s from /etc/sub${ids} into imgbuild's user namespace`;
    if (!h.setuidRoot && !h.fileCaps) return `${h.path} is not setuid root, so it cannot map user ${user}'s subordinate ${ids}s: reinstall the uidmap package (or, as root: chmod u+s ${h.path})`;
  }
  return undefined;
}

/**
 * The message (after `imgbuild: FAILED_PRECONDITION: `) for unshare's failure `stderr`, given the
 * helpers it needed (empty with a single-id mapping) and the kernel's settings.
 */
export function usernsFailureMessage(stderr: string, o: { user: string; helpers: MapHelper[]; sysctls: UsernsSysctls }): string {
  const helper = (): string | undefined => helperMessage(o.user, o.helpers);
  // unshare(2) itself refused: the kernel's settings come first, the helpers were never reached.
  const kernel = kernelMessage(o.sysctls);
  if (/unshare failed/.test(stderr)) return kernel ?? helper() ?? generic(stderr);
  return helper() ?? kernel ?? generic(stderr);
}

function generic(stderr: string): string {
  const said = stderr.split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
  return `cannot make a user namespace: ${said ?? 'unshare failed without saying why'}`;
}

function kernelMessage(k: UsernsSysctls): string | undefined {
  if (k.maxUserNamespaces === 0) return 'the kernel allows no user namespaces (user.max_user_namespaces = 0): raise the limit, as root: sysctl -w user.max_user_namespaces=28633';
  if (k.unprivilegedUsernsClone === 0) return 'the kernel refuses user namespaces to users other than root (kernel.unprivileged_userns_clone = 0): allow them, as root: sysctl -w kernel.unprivileged_userns_clone=1';
  if (k.apparmorRestrict === 1) {
    return 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): give imgbuild an AppArmor profile with the userns rule, or, as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0';
  }
  return undefined;
}

/** Runs unshare with `args` (its options, before `--`) on `true`, and resolves to what it printed on stderr. */
export function unshareStderr(args: string[], o: { signal?: AbortSignal } = {}): Promise<string> {
  const cut = args.indexOf('--');
  const opts = cut < 0 ? args : args.slice(0, cut);
  return new Promise((resolve) => {
    const child = spawn(opts[0]!, [...opts.slice(1), '--', 'true'], { stdio: ['ignore', 'ignore', 'pipe'], ...(o.signal ? { signal: o.signal } : {}) });
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('error', (e) => resolve(`${err}${e.message}`));
    child.on('close', () => resolve(err));
  });
}
