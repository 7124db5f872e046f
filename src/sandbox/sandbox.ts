/**
 * The sandbox facade: turns a SandboxSpec into bootstrap records for the native helper
 * (native/build/imgbuild-sandbox) and runs it in the foreground, detached, or as an exec into
 * a running container.
 */
import { mkdirSync, existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ImgbuildError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { DEFAULT_CAPABILITIES, capabilityMask, normalizeCapability } from './capabilities.js';
import { mapWaitStatus, runHelper } from './native.js';
import {
  BootstrapWriter,
  CloneFlags,
  Mode,
  MountFlags,
  RLIMITS,
  RLIM_INFINITY,
  Tag,
  parseMountOptions,
} from './protocol.js';
import { seccompProgram } from './seccomp/filter.js';
import type { SeccompProfile } from './seccomp/profile.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, type IdMap, type SandboxSpec } from './spec.js';

export interface SandboxIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  signal?: AbortSignal;
  /**
   * Called with the host pid of the container process once it exists (before it execs); with a
   * terminal also a `resize` that changes the pty size (the process gets SIGWINCH).
   */
  onStart?: (info: { pid: number; resize?: (rows: number, cols: number) => void }) => void;
  /** Called once the process has exec'd, with when (`monotonicMs()` milliseconds): the set-up is over. */
  onExec?: (atMs: number) => void;
  /** Relay these signals received by this Node process to the container (`--sig-proxy`). */
  forwardSignals?: readonly NodeJS.Signals[];
  /** Initial terminal size when `terminal` is set. */
  terminalSize?: { rows: number; cols: number };
  /** Where compiled seccomp programs are kept between runs (the store's cache). */
  seccompCacheDir?: string;
  /**
   * Held by the helper and its monitor until the container has exited (never by the container's
   * programs): the peer of a rootless network helper's exit descriptor, which then ends.
   */
  lifeline?: Socket;
}

export interface SandboxResult {
  exitCode: number;
  signal?: NodeJS.Signals;
}

export interface Detached {
  /** Host pid of the container's pid 1. */
  pid: number;
  /** Host pid of the monitor that waits for the container and writes the status file. */
  monitorPid: number;
}

export interface ExecProcess {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  terminal?: boolean;
  /** Kept capabilities; default Docker's default set. */
  capabilities?: string[];
  noNewPrivileges?: boolean;
  /** The syscall filter: a Docker seccomp profile, Docker's default when omitted, none when false. */
  seccomp?: false | SeccompProfile;
}

/** The signals a foreground `run` relays by default. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** Path of the native helper binary. */
export function helperPath(): string {
  // dist/sandbox/sandbox.js, src/sandbox/sandbox.ts and the CLI bundle dist/cli/bundle.cjs all sit
  // two levels below the package root.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'imgbuild-sandbox');
}

function checkedHelper(): string {
  const h = helperPath();
  if (!existsSync(h)) {
    throw new NotFoundError(`sandbox helper ${h} is missing; build it with \`make -C ${dirname(dirname(h))}\` (needs make and a C compiler; Debian: build-essential)`);
  }
  return h;
}

/**
 * The host dir the rootfs is mounted on. Each container mounts it inside its own private mount
 * namespace, so one shared, never-removed empty dir serves all of them.
 */
function rootfsDir(): string {
  const uid = process.getuid?.() ?? 0;
  // A rootless CLI is uid 0 in its user namespace (IMGBUILD_ROOTLESS, src/host/userns.ts): named
  // for its host uid, never root's dir.
  const hostUid = process.env.IMGBUILD_ROOTLESS?.split(':')[0] ?? String(uid);
  const d = join(tmpdir(), hostUid === '0' ? 'imgbuild-sandbox-rootfs' : `imgbuild-sandbox-rootfs-${hostUid}`);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  // The name is predictable in a shared /tmp: use it only if it is our own private directory,
  // never a symlink or a dir someone else created first.
  const st = lstatSync(d);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new ImgbuildError('FAILED_PRECONDITION', `${d} is not a private directory owned by uid ${uid}; remove it`);
  }
  return d;
}

function mapText(maps: IdMap[] | undefined, what: string): string {
  if (!maps || maps.length === 0) throw new InvalidArgumentError(`a user namespace needs ${what}`);
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

function absolute(p: string, what: string): void {
  if (!isAbsolute(p)) throw new InvalidArgumentError(`${what} must be an absolute path, got ${JSON.stringify(p)}`);
}

function processRecords(
  w: BootstrapWriter,
  p: { args: string[]; env: string[]; cwd: string; user: { uid: number; gid: number; additionalGids?: number[] };
    capabilities?: string[]; noNewPrivileges?: boolean; terminal?: boolean },
  size?: { rows: number; cols: number },
  seccomp: false | SeccompProfile | undefined = undefined,
  seccompCacheDir?: string,
): void {
  if (p.args.length === 0) throw new InvalidArgumentError('process.args is empty');
  absolute(p.cwd, 'process.cwd');
  for (const a of p.args) w.str(Tag.ARGV, a);
  for (const e of p.env) w.str(Tag.ENV, e);
  w.str(Tag.CWD, p.cwd);
  w.u32(Tag.UID, p.user.uid).u32(Tag.GID, p.user.gid);
  for (const g of p.user.additionalGids ?? []) w.u32(Tag.ADDGID, g);
  const caps = p.capabilities ?? DEFAULT_CAPABILITIES;
  w.u64(Tag.CAPS, capabilityMask(caps));
  if (p.noNewPrivileges) w.u32(Tag.NO_NEW_PRIVS, 1);
  const prog = seccomp === false ? undefined : seccompProgram(seccomp, caps.map(normalizeCapability), seccompCacheDir ? { cacheDir: seccompCacheDir } : {});
  if (prog) w.bytes(Tag.SECCOMP, prog);
  if (p.terminal) {
    w.u32(Tag.TERMINAL, 1);
    if (size) w.winsize(size.rows, size.cols);
  }
}

/**
 * Device nodes under a mount stay inert (nodev) unless the mount is a bind of one device file
 * (a `--device`-style grant), a devpts, or asks for `dev` explicitly. With CAP_MKNOD in the
 * default set this, with nodev on the rootfs and /dev, stands in for a devices cgroup: a node
 * made or found in a volume cannot be opened.
 */
function deviceNodesAllowed(m: { type: string; source: string; options: string[]; cwd?: string }): boolean {
  if (m.type === 'devpts' || m.options.includes('dev')) return true;
  if (m.type !== 'bind' && !m.options.includes('bind') && !m.options.includes('rbind')) return false;
  try {
    const st = statSync(resolve(m.cwd ?? '/', m.source));
    return st.isCharacterDevice() || st.isBlockDevice();
  } catch {
    return false; // the helper reports a missing source
  }
}

function toBigLimit(n: number): bigint {
  return n < 0 || !Number.isFinite(n) ? RLIM_INFINITY : BigInt(Math.floor(n));
}

/** Encodes a spec as bootstrap records (exported for tests and debugging). */
export function encodeSpec(
  spec: SandboxSpec,
  mode: number,
  extra: (w: BootstrapWriter) => void = () => {},
  size?: { rows: number; cols: number },
  seccompCacheDir?: string,
): Buffer {
  const w = new BootstrapWriter();
  w.u32(Tag.MODE, mode);
  processRecords(w, spec.process, size, spec.seccomp, seccompCacheDir);
  let ns = 0;
  const uid = process.getuid?.() ?? 0;
  // Not root: only a user namespace gives the capabilities the setup needs; map our own ids to
  // the container's root (the one mapping an unprivileged process may write itself).
  const rootless = uid !== 0 && !spec.namespaces.includes('user');
  for (const n of rootless ? [...spec.namespaces, 'user' as const] : spec.namespaces) ns |= CloneFlags[n];
  if (rootless) {
    w.str(Tag.UIDMAP, `0 ${uid} 1\n`);
    w.str(Tag.GIDMAP, `0 ${process.getgid?.() ?? 0} 1\n`);
  } else if (spec.namespaces.includes('user')) {
    w.str(Tag.UIDMAP, mapText(spec.uidMappings, 'uidMappings'));
    w.str(Tag.GIDMAP, mapText(spec.gidMappings, 'gidMappings'));
    if (spec.rootfsIdmap) w.u32(Tag.ROOTFS_IDMAP, 1);
  }
  if (spec.netnsPath) {
    absolute(spec.netnsPath, 'netnsPath');
    w.str(Tag.NETNS_PATH, spec.netnsPath);
    ns &= ~CloneFlags.net;
  }
  if (spec.pidnsPath) {
    absolute(spec.pidnsPath, 'pidnsPath');
    w.str(Tag.PIDNS_PATH, spec.pidnsPath);
    ns &= ~CloneFlags.pid;
  }
  if (spec.ipcnsPath) {
    absolute(spec.ipcnsPath, 'ipcnsPath');
    w.str(Tag.IPCNS_PATH, spec.ipcnsPath);
    ns &= ~CloneFlags.ipc;
  }
  w.u32(Tag.NS_FLAGS, ns >>> 0);
  if (spec.rootfs.length === 0) throw new InvalidArgumentError('spec.rootfs has no mounts');
  for (const m of spec.rootfs) {
    const o = parseMountOptions(m.type, m.options);
    w.mount(Tag.ROOTFS_MOUNT, {
      flags: o.flags, propagation: o.propagation, type: m.type, source: m.source,
      destination: (m.target ?? '').replace(/^\/+/, ''), data: o.data, cwd: m.cwd ?? '',
    });
  }
  for (const m of spec.mounts) {
    absolute(m.destination, 'mount destination');
    const o = parseMountOptions(m.type, m.options);
    w.mount(Tag.MOUNT, {
      flags: o.flags | (spec.privileged || deviceNodesAllowed(m) ? 0 : MountFlags.NODEV), propagation: o.propagation, type: m.type, source: m.source,
      destination: m.destination, data: o.data, cwd: m.cwd ?? '',
    });
  }
  if (spec.hostname !== undefined) w.str(Tag.HOSTNAME, spec.hostname);
  if (spec.domainname) w.str(Tag.DOMAINNAME, spec.domainname);
  if (spec.netIface) w.str(Tag.NET_IFACE, `${spec.netIface.name} ${spec.netIface.address} ${spec.netIface.prefixLength} ${spec.netIface.gateway}`);
  for (const r of spec.process.rlimits ?? []) {
    const res = RLIMITS[r.type.toUpperCase()];
    if (res === undefined) throw new InvalidArgumentError(`unknown rlimit ${JSON.stringify(r.type)}`);
    w.rlimit(res, toBigLimit(r.soft), toBigLimit(r.hard));
  }
  for (const p of spec.maskedPaths ?? DEFAULT_MASKED_PATHS) w.str(Tag.MASKED, p);
  for (const p of spec.readonlyPaths ?? DEFAULT_READONLY_PATHS) w.str(Tag.READONLY, p);
  for (const c of spec.cgroupPaths ?? []) w.str(Tag.CGROUP_PATH, c);
  if (spec.init) w.u32(Tag.INIT, 1);
  if (spec.privileged) w.u32(Tag.PRIVILEGED, 1);
  for (const d of spec.devices ?? []) {
    absolute(d.path, 'device path');
    w.device({ mode: (d.type === 'b' ? 0o060000 : 0o020000) | (d.fileMode & 0o7777), major: d.major, minor: d.minor, uid: d.uid, gid: d.gid, path: d.path });
  }
  if (spec.readonlyRootfs) w.u32(Tag.READONLY_ROOTFS, 1);
  if (spec.isolation === 'chroot') w.u32(Tag.CHROOT, 1);
  w.str(Tag.ROOTFS_DIR, rootfsDir());
  extra(w);
  return w.finish();
}

/** Runs the spec's process to completion; stdio are the given streams (or a pty with `terminal`). */
export async function runSandbox(spec: SandboxSpec, io: SandboxIO): Promise<SandboxResult> {
  const bootstrap = encodeSpec(spec, Mode.RUN, io.lifeline ? (w) => void w.u32(Tag.LIFELINE, 1) : undefined, io.terminalSize, io.seccompCacheDir);
  const out = await runHelper({
    helper: checkedHelper(),
    bootstrap,
    ...(io.lifeline ? { lifeline: io.lifeline } : {}),
    ...(io.stdin ? { stdin: io.stdin } : {}),
    ...(io.stdout ? { stdout: io.stdout } : {}),
    ...(io.stderr ? { stderr: io.stderr } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
    ...startHooks(io, spec.process.terminal ?? false),
    ...(io.onExec ? { onExec: io.onExec } : {}),
    ...(io.forwardSignals ? { forwardSignals: io.forwardSignals } : {}),
  });
  return mapWaitStatus(out.waitStatus ?? 0);
}

/** onStart wiring: with a terminal, the control stream is opened and `resize` handed over. */
function startHooks(io: SandboxIO, terminal: boolean) {
  if (!io.onStart) return {};
  if (!terminal) return { onPid: (pid: number) => io.onStart?.({ pid }) };
  let resize: ((rows: number, cols: number) => void) | undefined;
  return {
    control: true,
    onControl: (r: (rows: number, cols: number) => void) => {
      resize = r;
    },
    onPid: (pid: number) => io.onStart?.(resize ? { pid, resize } : { pid }),
  };
}

/**
 * Starts a container that outlives this process: the helper becomes its monitor (own session),
 * sends stdout+stderr to logPath and writes {exitCode, signal, oomKilled, finishedAt} JSON to
 * statusPath when it ends. Resolves once the process has exec'd.
 */
export async function startDetached(
  spec: SandboxSpec,
  o: { logPath: string; statusPath: string; stdinPath?: string; signal?: AbortSignal; seccompCacheDir?: string; lifeline?: Socket },
): Promise<Detached> {
  absolute(o.logPath, 'logPath');
  absolute(o.statusPath, 'statusPath');
  const bootstrap = encodeSpec(spec, Mode.DETACHED, (w) => {
    w.str(Tag.LOG_PATH, o.logPath).str(Tag.STATUS_PATH, o.statusPath);
    if (o.stdinPath !== undefined) {
      absolute(o.stdinPath, 'stdinPath');
      w.str(Tag.STDIN_PATH, o.stdinPath);
    }
    if (o.lifeline) w.u32(Tag.LIFELINE, 1);
  }, undefined, o.seccompCacheDir);
  const out = await runHelper({
    helper: checkedHelper(),
    bootstrap,
    detached: true,
    ...(o.lifeline ? { lifeline: o.lifeline } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (out.pid === undefined || out.monitorPid === undefined) throw new Error('unreachable: detached start without pids');
  return { pid: out.pid, monitorPid: out.monitorPid };
}

/** cgroup dirs of `pid` that differ from ours (so the exec'd process is accounted with the container). */
function cgroupsOf(pid: number): string[] {
  const parse = (p: string) =>
    readFileSync(p, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [, ctrl = '', path = '/'] = l.match(/^\d+:([^:]*):(.*)$/) ?? [];
        return { ctrl, path };
      });
  const mine = new Map(parse('/proc/self/cgroup').map((c) => [c.ctrl, c.path]));
  const dirs: string[] = [];
  for (const { ctrl, path } of parse(`/proc/${pid}/cgroup`)) {
    if (path === '/' || mine.get(ctrl) === path) continue;
    const name = ctrl === '' ? (existsSync('/sys/fs/cgroup/unified') ? 'unified' : '') : ctrl.replace(/^name=/, '');
    const dir = join('/sys/fs/cgroup', name, path);
    if (existsSync(join(dir, 'cgroup.procs'))) dirs.push(dir);
  }
  return dirs;
}

/**
 * Runs a process in a running container as execIn does, but detached (`exec -d`): its stdio is the
 * container's /dev/null and the helper stays, orphaned, as its monitor (reaping it). Resolves with
 * its host pid once it has exec'd.
 */
export async function execDetached(pid: number, p: ExecProcess, o: { seccompCacheDir?: string } = {}): Promise<number> {
  if (!Number.isInteger(pid) || pid <= 0) throw new InvalidArgumentError(`bad pid ${pid}`);
  if (!existsSync(`/proc/${pid}`)) throw new NotFoundError(`no process ${pid} to exec into`);
  const w = new BootstrapWriter();
  w.u32(Tag.MODE, Mode.EXEC).u32(Tag.TARGET_PID, pid).u32(Tag.EXEC_DETACHED, 1);
  processRecords(w, { ...p, terminal: false }, undefined, p.seccomp, o.seccompCacheDir);
  for (const c of cgroupsOf(pid)) w.str(Tag.CGROUP_PATH, c);
  const out = await runHelper({ helper: checkedHelper(), bootstrap: w.finish(), detached: true });
  if (out.pid === undefined) throw new Error('unreachable: detached exec without a pid');
  return out.pid;
}

/** Joins every namespace (and the cgroups) of a running container and runs a process there. */
export async function execIn(pid: number, p: ExecProcess, io: SandboxIO): Promise<SandboxResult> {
  if (!Number.isInteger(pid) || pid <= 0) throw new InvalidArgumentError(`bad pid ${pid}`);
  if (!existsSync(`/proc/${pid}`)) throw new NotFoundError(`no process ${pid} to exec into`);
  const w = new BootstrapWriter();
  w.u32(Tag.MODE, Mode.EXEC).u32(Tag.TARGET_PID, pid);
  processRecords(w, p, io.terminalSize, p.seccomp, io.seccompCacheDir);
  for (const c of cgroupsOf(pid)) w.str(Tag.CGROUP_PATH, c);
  const out = await runHelper({
    helper: checkedHelper(),
    bootstrap: w.finish(),
    ...(io.stdin ? { stdin: io.stdin } : {}),
    ...(io.stdout ? { stdout: io.stdout } : {}),
    ...(io.stderr ? { stderr: io.stderr } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
    ...startHooks(io, p.terminal ?? false),
    ...(io.forwardSignals ? { forwardSignals: io.forwardSignals } : {}),
  });
  return mapWaitStatus(out.waitStatus ?? 0);
}

export { resourceLimits, toOciConfig } from './oci-config.js';
