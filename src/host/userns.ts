/**
 * Rootless imgbuild: a user other than root runs the CLI inside a user namespace of its own, as
 * podman does, where it is root over its own files and its subordinate ids. The namespace maps the
 * container's root to the user and 1..N to the user's range in /etc/subuid and /etc/subgid (set up
 * by newuidmap/newgidmap, through util-linux's unshare), so an image's owners other than root stay
 * distinct; a user without a range, or where newuidmap can gain no privileges (a pod:
 * no_new_privs, capabilities dropped, a setuid newuidmap without CAP_SYS_ADMIN), gets the single-id
 * mapping (everything root-owned inside) and one warning line, as buildah does. Overlay mounts there with `userxattr` (snapshots/probe.ts finds it).
 *
 * The re-executed CLI learns who it really is from IMGBUILD_ROOTLESS ("uid:gid"), since inside the
 * namespace getuid() says 0.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, readFileSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import { ImgbuildError } from '../errors.js';
import { findMapHelper, inPath, preflightMessage, readUsernsSysctls, unshareStderr, usernsFailureMessage, type MapHelper } from './userns-errors.js';

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

/**
 * Thrown by a rootless command that started outside any user namespace (as the user itself) once
 * it knows which namespace its work needs: the user namespace of the running container whose
 * process is `pid` (its files are reached through /proc/<pid>/root, which only a process of that
 * namespace may open), or a fresh one when `pid` is undefined. The CLI runs itself again there.
 */
export class UserNamespaceNeeded extends ImgbuildError {
  constructor(readonly pid?: number) {
    super('INTERNAL', pid === undefined ? 'this command must run in a user namespace' : `this command must run in the user namespace of process ${pid}`);
    this.name = 'UserNamespaceNeeded';
  }
}

/**
 * The command line that runs `argv` in the user namespace of the process `pid` (a running rootless
 * container): nsenter(1) makes the caller, who owns that namespace, its root; a mount namespace of
 * its own follows, so that whatever it mounts stays private.
 */
export function nsenterCommand(pid: number, argv: string[]): string[] {
  return ['nsenter', `--target=${pid}`, '--user', '--', 'unshare', '--mount', '--propagation', 'private', '--', ...argv];
}

/** Bits of the capability sets in /proc/self/status. */
const CAP_SETGID = 1n << 6n;
const CAP_SETUID = 1n << 7n;
const CAP_SYS_ADMIN = 1n << 21n;

/**
 * Why newuidmap/newgidmap can gain no privileges here, or undefined when they can. A pod is where
 * this happens: no_new_privs (Kubernetes' `allowPrivilegeEscalation: false`) makes setuid and file
 * capabilities powerless; without CAP_SETUID/CAP_SETGID in the bounding set (`drop: [ALL]`) there
 * is nothing to gain; and a setuid-root newuidmap runs as uid 0, which does not own the new user
 * namespace, so the kernel asks it for CAP_SYS_ADMIN, which a pod's bounding set lacks (file
 * capabilities keep the caller's uid, the owner: podman's in-container image ships them so).
 * Read from /proc/self/status: no process.
 */
export function newuidmapUnusable(o: { status?: string; setuidHelper?: boolean } = {}): string | undefined {
  let status = o.status;
  if (status === undefined) {
    try {
      status = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  if (/^NoNewPrivs:\s*1\s*$/m.test(status)) return 'no_new_privs is set, so newuidmap gains no privileges (Kubernetes: allowPrivilegeEscalation: false)';
  const bnd = /^CapBnd:\s*([0-9a-f]+)\s*$/m.exec(status);
  if (!bnd) return undefined;
  const caps = BigInt(`0x${bnd[1]}`);
  if ((caps & (CAP_SETUID | CAP_SETGID)) !== (CAP_SETUID | CAP_SETGID)) return 'the capability bounding set has no CAP_SETUID or CAP_SETGID (Kubernetes: capabilities drop ALL)';
  if (o.setuidHelper && (caps & CAP_SYS_ADMIN) === 0n) {
    return 'a setuid newuidmap needs CAP_SYS_ADMIN, which the capability bounding set lacks (give newuidmap and newgidmap file capabilities instead: setcap cap_setuid+ep, cap_setgid+ep)';
  }
  return undefined;
}

/** The unshare(1) command line that runs `argv` in the user's namespace. */
export function unshareCommand(argv: string[], files: { subuid?: string; subgid?: string; status?: string; path?: string } = {}): Reexec {
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
  const helpers = subuid && subgid ? [findMapHelper('newuidmap', files.path ?? process.env.PATH), findMapHelper('newgidmap', files.path ?? process.env.PATH)] : [];
  // Helpers that are missing are named by the preflight (install uidmap); here, those present but powerless.
  const unusable = helpers.every((h) => h.path) ? newuidmapUnusable({ ...(files.status !== undefined ? { status: files.status } : {}), setuidHelper: helpers.some((h) => h.setuidRoot) }) : undefined;
  if (subuid && subgid && !unusable) {
    args.push(`--map-users=${subuid.start},1,${subuid.size}`, `--map-groups=${subgid.start},1,${subgid.size}`);
  } else if (unusable) {
    warning = `imgbuild: warning: the subordinate ids of user ${name} cannot be mapped: ${unusable} (meanwhile only ${name}'s own id is mapped: files of an image's other users become root's)`;
  } else {
    // What is missing first, in the words of the fix; then what the fallback costs.
    const missing = [
      ...(subuid ? [] : [{ kind: 'uid', file: files.subuid ?? '/etc/subuid', opt: '--add-subuids' }]),
      ...(subgid ? [] : [{ kind: 'gid', file: files.subgid ?? '/etc/subgid', opt: '--add-subgids' }]),
    ];
    const what = missing.map((m) => `${m.kind} range for user ${name} in ${m.file}`).join(' and no subordinate ');
    const fix = missing.map((m) => `${m.opt} 100000-165535`).join(' ');
    warning = `imgbuild: warning: no subordinate ${what}: add ${missing.length > 1 ? 'them' : 'one'} with usermod ${fix} ${name} (meanwhile only ${name}'s own id is mapped: files of an image's other users become root's)`;
  }
  return { args: [...args, '--', ...argv], ...(warning ? { warning } : {}) };
}

/**
 * Set for the re-executed CLI: the descriptor on which it says it has started, so that a failure
 * of unshare itself (which the CLI's own exit statuses could not be told from) is explained.
 */
const STARTED_FD_ENV = 'IMGBUILD_USERNS_STARTED_FD';

/** In the re-executed CLI: tells the parent it runs inside the namespace (and closes the descriptor). */
export function announceStarted(env: NodeJS.ProcessEnv = process.env): void {
  const fd = Number(env[STARTED_FD_ENV]);
  delete env[STARTED_FD_ENV];
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    writeSync(fd, '1');
    closeSync(fd);
  } catch {
    // the parent is gone: nothing to tell
  }
}

/**
 * Runs this CLI again inside the user namespace and resolves to its exit status. Signals the
 * terminal sends reach both processes (one process group); SIGTERM sent to this one is passed on.
 * When unshare fails before the CLI starts, one line says what is missing (userns-errors.ts).
 */
export function reexecInUserNamespace(
  argv: string[],
  env: NodeJS.ProcessEnv,
  root: string,
  stderr: NodeJS.WritableStream,
  o: { enter?: number } = {},
): Promise<number> {
  const filtered = o.enter === undefined ? filterRefusesUserNamespace() : undefined;
  if (filtered) {
    stderr.write(`imgbuild: FAILED_PRECONDITION: cannot make a user namespace: ${filtered} (a seccomp profile refuses it without CAP_SYS_ADMIN, as Docker's default and Kubernetes' RuntimeDefault do: see docs/kubernetes.md)\n`);
    return Promise.resolve(125);
  }
  const { args, warning } = o.enter !== undefined ? { args: nsenterCommand(o.enter, argv), warning: undefined } : unshareCommand(argv);
  // Entering a container's namespace maps nothing: the helpers matter only to a fresh one.
  const mapsRanges = o.enter === undefined && args.some((a) => a.startsWith('--map-users='));
  const helpers = mapsRanges ? [findMapHelper('newuidmap', env.PATH), findMapHelper('newgidmap', env.PATH)] : [];
  const refused = preflightMessage({ user: userName(), unshare: inPath('unshare', env.PATH) !== undefined, helpers, sysctls: readUsernsSysctls() });
  if (refused) {
    stderr.write(`imgbuild: FAILED_PRECONDITION: ${refused}\n`);
    return Promise.resolve(125);
  }
  if (warning) stderr.write(`${warning}\n`);
  const childEnv = { ...env, [ROOTLESS_ENV]: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`, IMGBUILD_ROOT: root, [STARTED_FD_ENV]: '3' };
  return new Promise((resolve) => {
    const child = spawn(args[0]!, args.slice(1), { stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env: childEnv });
    let started = false;
    const fd3 = child.stdio[3] as NodeJS.ReadableStream | null;
    fd3?.on('data', () => {
      started = true;
    });
    fd3?.on('error', () => {});
    const pass = (sig: NodeJS.Signals): void => void child.kill(sig);
    process.on('SIGTERM', pass);
    process.on('SIGINT', () => {});
    child.on('error', (e) => {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      stderr.write(
        missing
          ? `imgbuild: FAILED_PRECONDITION: ${args[0]} is not installed (not found in PATH): install the util-linux package; a user other than root needs it to make imgbuild's user namespace\n`
          : `imgbuild: FAILED_PRECONDITION: cannot start ${args[0]}(1) for a user namespace: ${e.message}\n`,
      );
      resolve(125);
    });
    child.on('close', (code, signal) => {
      if (code !== null && code !== 0 && !started) {
        void explainFailure(args, helpers).then((line) => {
          stderr.write(`imgbuild: FAILED_PRECONDITION: ${line}\n`);
          resolve(125);
        });
        return;
      }
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15));
    });
  });
}

/**
 * Under a seccomp filter (a container), whether a user namespace can be made at all, tried with
 * `unshare --user true`: unshare(1) with --map-users hangs when its unshare(2) is refused (its
 * newuidmap child is left waiting). Outside a filter, the usual case, nothing is run.
 */
function filterRefusesUserNamespace(): string | undefined {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  if (!/^Seccomp:\s*2\s*$/m.test(status)) return undefined;
  const r = spawnSync('unshare', ['--user', 'true'], { encoding: 'utf8' });
  if (r.error || r.status === 0) return undefined; // a missing unshare(1) is named by the preflight
  return r.stderr.trim().split('\n')[0] || `unshare exited with ${r.status}`;
}

/** Why unshare failed: asked again with its stderr kept, then judged with the helpers and the kernel's settings. */
async function explainFailure(args: string[], helpers: MapHelper[]): Promise<string> {
  const said = await unshareStderr(args);
  return usernsFailureMessage(said, { user: userName(), helpers, sysctls: readUsernsSysctls() });
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 0);
  }
}
