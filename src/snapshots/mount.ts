/**
 * Host-side mounting of snapshotter `Mount[]` by exec'ing mount(8)/umount(8): Node cannot call
 * mount(2) itself (the sandbox mounts inside its own helper). Used to COPY into a step's rootfs,
 * to read a snapshot for commit/export, and by tests.
 *
 * Overlay mounts carry RELATIVE lowerdir/upperdir/workdir paths plus a `cwd`; mount(8) is run
 * with that working directory, so the kernel resolves the paths there and long layer stacks stay
 * under the one-page limit of mount data (containerd's compactLowerdirOption idea).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { throwIfAborted, InvalidArgumentError } from '../errors.js';
import type { Mount } from '../sandbox/spec.js';
import { MountError } from './errors.js';
import { isOwnerAlive, selfStartTime } from '../pid.js';

interface RunResult {
  status: number | null;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; signal?: AbortSignal } = {}): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
      signal: opts.signal,
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (stderr.length < 8192) stderr += s;
    });
    child.on('error', fail);
    child.on('close', (status) => done({ status, stderr }));
  });
}

/** Decodes the octal escapes mountinfo uses for space, tab, newline and backslash. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points (in mount order) at or below `dir`, read from /proc/self/mountinfo. */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ')[4];
    if (f === undefined) continue;
    const m = unescapeMountinfo(f);
    if (m === dir || m.startsWith(dir.endsWith('/') ? dir : `${dir}/`)) out.push(m);
  }
  return out;
}

export async function isMountPoint(path: string): Promise<boolean> {
  const p = await realpath(path).catch(() => resolve(path));
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => {
    const f = l.split(' ')[4];
    return f !== undefined && unescapeMountinfo(f) === p;
  });
}

function destinationOf(m: Mount, target: string): string {
  if (m.target === undefined || m.target === '' || m.target === '/') return target;
  // Mount targets are paths inside the rootfs; join (never resolve) so they stay under `target`.
  const rel = m.target.split('/').filter((c) => c !== '' && c !== '.');
  if (rel.includes('..')) throw new InvalidArgumentError(`mount target ${JSON.stringify(m.target)} climbs out of the rootfs`);
  return join(target, ...rel);
}

async function mountOne(m: Mount, dest: string, signal?: AbortSignal): Promise<void> {
  if (m.cwd !== undefined && !isAbsolute(m.cwd)) throw new InvalidArgumentError(`mount cwd must be absolute: ${m.cwd}`);
  if (m.type === 'fuse.fuse-overlayfs') {
    // A filesystem in user space: its daemon mounts it (in this mount namespace) and serves it
    // until it is unmounted; umount(8) ends it like any other mount.
    const r = await run('fuse-overlayfs', ['-o', m.options.join(','), dest], { cwd: m.cwd, signal }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return { status: 127, stderr: 'fuse-overlayfs is not installed (Debian package fuse-overlayfs)' };
      throw e;
    });
    // (It warns about options it ignores on success: only the status says whether it mounted.)
    if (r.status !== 0) throw new MountError(dest, r.status, r.stderr.split('\n').filter((l) => !/^unknown argument ignored/.test(l)).join('\n'));
    return;
  }
  const args: string[] = [];
  const bind = m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');
  if (!bind) args.push('-t', m.type);
  if (m.options.length > 0) args.push('-o', m.options.join(','));
  args.push(m.source, dest);
  const r = await run('mount', args, { cwd: m.cwd, signal });
  // mount(8) itself turns `bind,ro` into a bind plus a read-only remount.
  if (r.status !== 0) throw new MountError(dest, r.status, r.stderr);
}

/**
 * Mounts every entry of `mounts` in order on `target` (or on `target`/`m.target`). When one
 * fails, the mounts already made are undone before the error is thrown.
 */
export async function mountAll(mounts: Mount[], target: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const root = await realpath(target);
  const done: string[] = [];
  try {
    for (const m of mounts) {
      throwIfAborted(opts.signal);
      const dest = destinationOf(m, root);
      await mountOne(m, dest, opts.signal);
      done.push(dest);
    }
  } catch (e) {
    for (const d of done.reverse()) await umountOnce(d).catch(() => {});
    throw e;
  }
}

async function umountOnce(path: string): Promise<void> {
  const r = await run('umount', [path]);
  if (r.status !== 0) throw new MountError(path, r.status, r.stderr, 'umount');
}

/**
 * Unmounts everything mounted at or below `target`, deepest and most recent first (like
 * `umount -R`). A busy mount is retried briefly before giving up with MountError; a target that
 * is not mounted is fine.
 */
export async function unmount(target: string): Promise<void> {
  const root = await realpath(target).catch(() => resolve(target));
  for (let attempt = 0; ; attempt++) {
    const points = await mountPointsUnder(root);
    if (points.length === 0) return;
    // Deepest path first; among equal paths the later (stacked on top) entry first.
    const order = points
      .map((p, i) => ({ p, i }))
      .sort((a, b) => b.p.length - a.p.length || b.i - a.i);
    try {
      for (const { p } of order) await umountOnce(p);
    } catch (e) {
      if (attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 25 * (attempt + 1)));
    }
  }
}

/** Temporary mount points of `cp` and `export`: `<tmp>/imgbuild-<kind>-<pid>-<start>-XXXXXX`. */
const TEMP_MOUNT = /^imgbuild-(rootfs|export)-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

/** A private temporary directory to mount a rootfs on, named for this process (see sweepTempMounts). */
export function makeTempMountDir(kind: 'rootfs' | 'export'): Promise<string> {
  return mkdtemp(join(tmpdir(), `imgbuild-${kind}-${process.pid}-${selfStartTime()}-`));
}

/**
 * Unmounts and removes the temporary mount points whose process is gone (a `cp` or `export`
 * killed while it held a stopped container's layer mounted). Returns the directories removed.
 */
export async function sweepTempMounts(): Promise<string[]> {
  const base = await realpath(tmpdir()).catch(() => tmpdir());
  const seen = new Set<string>();
  for (const p of await mountPointsUnder(base)) {
    const rel = p.slice(base.length + 1).split('/')[0] ?? '';
    const m = TEMP_MOUNT.exec(rel);
    if (m && !(await isOwnerAlive(Number(m[2]), m[3]))) seen.add(join(base, rel));
  }
  const removed: string[] = [];
  for (const dir of seen) {
    await unmount(dir);
    await rmdir(dir).catch(() => {});
    removed.push(dir);
  }
  return removed;
}

/** A rootfs as the sandbox takes it, and the undoing of what was mounted for it (sandboxRootfs). */
export interface SandboxRootfs {
  rootfs: Mount[];
  /**
   * Called once the sandbox's process exists (its mount namespace holds its own copy): lazily
   * unmounts this process's copy. Idempotent; a no-op when nothing was mounted.
   */
  detach(): Promise<void>;
  /** Unmounts at once (the sandbox has ended: ours is the last copy, so its data is flushed). */
  release(): Promise<void>;
}

/**
 * Where a fuse-overlayfs rootfs is mounted for a sandbox: `<snapshot>/merged`, beside its upper
 * dir, for a writable one. That directory must outlive the container: removing a mount point
 * detaches the mounts on it in every namespace (Linux >= 3.18), the container's own included. It
 * goes with the snapshot, when nothing can use it any more.
 */
function mergedDirOf(m: Mount): string | undefined {
  const upper = m.options.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
  if (upper === undefined || m.cwd === undefined) return undefined;
  return join(resolve(m.cwd, upper), '..', 'merged');
}

/**
 * The rootfs a sandbox can mount itself. A fuse-overlayfs rootfs needs its daemon, which only the
 * host can start: it is mounted here (mergedDirOf) and the sandbox binds that. Once the sandbox
 * runs, `detach` drops this process's copy, so the container's mount namespace holds the last one:
 * when its last process is gone the mount goes with it and the daemon ends by itself, detached or
 * not, without anyone left to unmount it (the daemon lives in our namespace: were our copy kept, it
 * would keep itself alive). Any other rootfs passes through at no cost.
 */
export async function sandboxRootfs(rootfs: Mount[], o: { signal?: AbortSignal } = {}): Promise<SandboxRootfs> {
  const fuse = rootfs.find((m) => m.type === 'fuse.fuse-overlayfs');
  if (!fuse) return { rootfs, detach: async () => {}, release: async () => {} };
  const merged = mergedDirOf(fuse);
  const dir = merged ?? (await makeTempMountDir('rootfs'));
  if (merged) await mkdir(merged, { recursive: true });
  try {
    await mountAll(rootfs, dir, o);
  } catch (e) {
    await rmdir(dir).catch(() => {});
    throw e;
  }
  let done = false;
  return {
    rootfs: [{ type: 'bind', source: dir, options: ['rbind', 'rw'] }],
    detach: async () => {
      if (done) return;
      done = true;
      for (const p of (await mountPointsUnder(dir)).reverse()) await run('umount', ['-l', p]);
    },
    release: async () => {
      if (done) return;
      done = true;
      await unmount(dir);
      // The sandbox is gone: nothing mounts on it any more (a committed snapshot keeps no merged dir).
      await rmdir(dir).catch(() => {});
    },
  };
}
