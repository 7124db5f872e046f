/**
 * The copying snapshotter ("vfs", as Docker's and containers/storage's driver of that name): every
 * snapshot is a plain directory holding a whole rootfs, so nothing is ever mounted to build one.
 * It is the fallback where overlayfs cannot be mounted (an unprivileged pod: no CAP_SYS_ADMIN).
 *
 *   <root>/metadata.json           kinds, parents, labels, ids (metadata.ts, shared with overlay)
 *   <root>/snapshots/<id>/fs       the whole rootfs of the snapshot
 *   <root>/snapshots/<id>/copied   made once the parent was copied: a later ctime marks a touched entry
 *   <root>/snapshots/<id>/init.json the init placeholders made in fs (never part of a diff)
 *   <root>/new-*, <root>/rm-*      a snapshot dir being created / removed
 *   <root>/diff-*                  a layer's changes being gathered (vfs-diff.ts)
 *
 * A child is a copy of its parent made by `cp -a --reflink=auto` (coreutils 9 clones where the
 * filesystem can, else copy_file_range: no page-cache round trip), keeping owners, modes, times,
 * xattrs and hard links. Its layer is computed by comparing it with the parent (vfs-diff.ts).
 * A view copies nothing: it is the parent's directory, read-only.
 */
import { mkdir, mkdtemp, readFile, rename, rm, rmdir, writeFile, lstat, chmod } from 'node:fs/promises';
import { execFile, type ExecFileOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { join, posix, resolve } from 'node:path';
import { ImgbuildError, throwIfAborted } from '../errors.js';
import { sweepLocks, sweepTempFiles } from '../atomic.js';
import { LEASE_LABEL } from '../store/lease.js';
import type { Mount } from '../sandbox/spec.js';
import { SnapshotNotFoundError, SnapshotStateError } from './errors.js';
import { parentIdsOf, type SnapshotRecord } from './metadata.js';
import { diskUsage, RecordedSnapshotter } from './records.js';
import { hasPlaceholders, type InitLayer, type PrepareOptions, type SnapshotOptions, type Snapshotter } from './snapshotter.js';

/** execFile as a promise, made at each call: at module load it would load node:child_process for every command. */
function run(file: string, args: string[], o: ExecFileOptions = {}): Promise<unknown> {
  return promisify(execFile)(file, args, o);
}

export { vfsRoot } from '../store/paths.js';

/** The placeholders an active snapshot got for its run (absolute paths inside the rootfs). */
export interface VfsInit {
  files: string[];
  dirs: string[];
}

export class VfsSnapshotter extends RecordedSnapshotter implements Snapshotter {
  /** Layers are applied onto a whole rootfs, whiteouts deleting (tar/apply.ts 'flat'). */
  readonly layerForm = 'flat' as const;
  readonly opaqueXattr = 'user.overlay.opaque' as const;

  private constructor(root: string) {
    super(root);
  }

  static async open(rootArg: string, o: { signal?: AbortSignal } = {}): Promise<VfsSnapshotter> {
    const root = resolve(rootArg);
    await mkdir(join(root, 'snapshots'), { recursive: true });
    const sn = new VfsSnapshotter(root);
    await sn.cleanup(o.signal);
    return sn;
  }

  /** A comparison's scratch dir (vfs-diff.ts) cut short by a crash. */
  protected async removeLeftover(name: string): Promise<boolean> {
    if (!name.startsWith('diff-')) return false;
    await rm(join(this.root, name), { recursive: true, force: true }).catch(() => {});
    return true;
  }

  protected async create(kind: 'active' | 'view', key: string, parent: string | undefined, o: PrepareOptions): Promise<Mount[]> {
    throwIfAborted(o.signal);
    if (kind === 'view' && o.init) throw new ImgbuildError('INVALID_ARGUMENT', 'a view cannot have an init layer');
    // The copy is made outside the metadata lock (it can take seconds): the parent is committed,
    // so immutable; that it still exists is checked again under the lock before the child is placed.
    const pre = await this.meta.read();
    const parentRec = parent === undefined ? undefined : Object.hasOwn(pre.snapshots, parent) ? pre.snapshots[parent] : undefined;
    if (parent !== undefined && !parentRec) throw new SnapshotNotFoundError(parent);
    const tmp = await mkdtemp(join(this.root, 'new-'));
    try {
      const fs = join(tmp, 'fs');
      if (kind === 'active' && parentRec) {
        await copyTree(join(this.dirOf(parentRec.id), 'fs'), fs, o.signal);
      } else {
        await mkdir(fs);
        await chmod(fs, 0o755);
      }
      if (kind === 'active') {
        const init = hasPlaceholders(o.init) ? o.init : undefined;
        // Written before the placeholders: what the run changes after it is newer.
        await writeFile(join(tmp, 'copied'), '');
        if (init) {
          const made = await makePlaceholders(fs, init);
          await writeFile(join(tmp, 'init.json'), JSON.stringify(made) + '\n');
        }
      }
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return this.meta.update(async (tx, save) => {
      let placed: string | undefined;
      try {
        tx.checkCreate(key, parent);
        if (parent !== undefined && tx.require(parent).id !== parentRec!.id) throw new SnapshotStateError(parent, 'changed while it was being copied');
        const labels = { ...(o.labels ?? {}), ...(o.lease ? { [LEASE_LABEL]: o.lease.id } : {}) };
        const rec = tx.create(key, kind, parent, labels, false);
        const dest = this.dirOf(rec.id);
        await rm(dest, { recursive: true, force: true });
        await rename(tmp, dest);
        placed = dest;
        await save();
        return this.mountsFor(rec, parent === undefined ? [] : [parentRec!.id]);
      } catch (e) {
        await rm(placed ?? tmp, { recursive: true, force: true });
        throw e;
      }
    }, { signal: o.signal });
  }

  private mountsFor(rec: SnapshotRecord, parentIds: number[]): Mount[] {
    const fs = (id: number): string => join(this.dirOf(id), 'fs');
    if (rec.kind === 'active') return [{ type: 'bind', source: fs(rec.id), options: ['rbind', 'rw'] }];
    if (rec.kind === 'committed' || parentIds[0] === undefined) return [{ type: 'bind', source: fs(rec.id), options: ['rbind', 'ro'] }];
    return [{ type: 'bind', source: fs(parentIds[0]), options: ['rbind', 'ro'] }];
  }

  async mounts(key: string): Promise<Mount[]> {
    const doc = await this.meta.read();
    const rec = Object.hasOwn(doc.snapshots, key) ? doc.snapshots[key] : undefined;
    if (!rec) throw new SnapshotNotFoundError(key);
    return this.mountsFor(rec, parentIdsOf(doc, key));
  }

  /** The rootfs directory of a snapshot: its own for an active or committed one, its parent's for a view. */
  async rootDir(key: string): Promise<string> {
    const m = await this.mounts(key);
    return m[0]!.source;
  }

  async commit(name: string, key: string, o: SnapshotOptions = {}): Promise<void> {
    const doc = await this.meta.read();
    const cur = Object.hasOwn(doc.snapshots, key) ? doc.snapshots[key] : undefined;
    if (!cur) throw new SnapshotNotFoundError(key);
    if (cur.kind !== 'active') throw new SnapshotStateError(key, `only an active snapshot can be committed, it is ${cur.kind}`);
    const dir = this.dirOf(cur.id);
    // The placeholders of the run are not part of the committed rootfs.
    const init = await readInit(dir);
    if (init) await removePlaceholders(join(dir, 'fs'), init);
    const usage = await diskUsage(join(dir, 'fs'), o.signal);
    await this.meta.update(async (tx, save) => {
      const r = tx.commit(name, key, usage, o.labels ?? {});
      if (r.id !== cur.id) throw new SnapshotStateError(key, 'changed while it was being committed');
      delete r.labels[LEASE_LABEL];
      await o.lease?.add({ snapshots: [name] });
      await save();
    }, { signal: o.signal });
    await rm(join(dir, 'init.json'), { force: true }).catch(() => {});
  }

  /** Removes the lock and temp files dead processes left (prune's last step). */
  async sweep(): Promise<string[]> {
    return [...(await sweepLocks(this.root)), ...(await sweepTempFiles(this.root))];
  }

  /** What the comparison of an active snapshot with its parent needs (vfs-diff.ts). */
  async changeBase(key: string): Promise<{ fs: string; parentFs?: string; copiedAt: number; init?: VfsInit }> {
    const doc = await this.meta.read();
    const rec = Object.hasOwn(doc.snapshots, key) ? doc.snapshots[key] : undefined;
    if (!rec) throw new SnapshotNotFoundError(key);
    if (rec.kind !== 'active') throw new SnapshotStateError(key, `only an active snapshot has changes, it is ${rec.kind}`);
    const dir = this.dirOf(rec.id);
    const pid = parentIdsOf(doc, key)[0];
    const copiedAt = (await lstat(join(dir, 'copied'), { bigint: true })).mtimeNs;
    const init = await readInit(dir);
    return {
      fs: join(dir, 'fs'),
      ...(pid !== undefined ? { parentFs: join(this.dirOf(pid), 'fs') } : {}),
      copiedAt: Number(copiedAt / 1000n) / 1000,
      ...(init ? { init } : {}),
    };
  }
}

async function copyTree(from: string, to: string, signal?: AbortSignal): Promise<void> {
  try {
    // `-a` keeps links, modes, owners (when allowed), times, xattrs and hard links.
    await run('cp', ['-a', '--reflink=auto', '--no-target-directory', from, to], { signal, maxBuffer: 1 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const line = (err.stderr ?? err.message).trim().split('\n')[0];
    throw new ImgbuildError('FAILED_PRECONDITION', `cannot copy the parent snapshot: ${line}`, { cause: e });
  }
}

function relOf(p: string): string {
  const n = posix.normalize(`/${p}`).replace(/^\/+/, '').replace(/\/+$/, '');
  if (n === '' || n === '.') throw new ImgbuildError('INVALID_ARGUMENT', `init path ${JSON.stringify(p)} names the root`);
  return n;
}

/**
 * Makes the missing placeholders in `fs` and returns those it made (relative paths), restoring the
 * times of the directories it added to, so that the diff sees no change from them. A path behind
 * a symlink of the rootfs is left alone: the runner binds over what is there.
 */
async function makePlaceholders(fs: string, init: InitLayer): Promise<VfsInit> {
  const made: VfsInit = { files: [], dirs: [] };
  const touched = new Map<string, bigint>();
  const remember = async (dirRel: string): Promise<void> => {
    const p = join(fs, dirRel);
    if (touched.has(p)) return;
    const st = await lstat(p, { bigint: true }).catch(() => undefined);
    if (st?.isDirectory()) touched.set(p, st.mtimeNs);
  };
  const ensureDir = async (rel: string): Promise<boolean> => {
    if (rel === '.' || rel === '') return true;
    const p = join(fs, rel);
    const st = await lstat(p).catch(() => undefined);
    if (st) return st.isDirectory();
    if (!(await ensureDir(posix.dirname(rel)))) return false;
    await remember(posix.dirname(rel));
    await mkdir(p);
    await chmod(p, 0o755);
    made.dirs.push(rel);
    return true;
  };
  for (const d of init.dirs) await ensureDir(relOf(d));
  for (const f of [...init.files, ...(init.mountFiles ?? [])]) {
    const rel = relOf(f);
    if (!(await ensureDir(posix.dirname(rel)))) continue;
    if (await lstat(join(fs, rel)).then(() => true, () => false)) continue;
    await remember(posix.dirname(rel));
    await writeFile(join(fs, rel), '', { mode: 0o644 });
    made.files.push(rel);
  }
  for (const [p, t] of [...touched].sort((a, b) => b[0].length - a[0].length)) await setMtimeExact(p, t);
  return made;
}

/** Removes the placeholders that are still empty, keeping the times of the dirs they were in. */
async function removePlaceholders(fs: string, init: VfsInit): Promise<void> {
  const times = new Map<string, bigint>();
  const remember = async (rel: string): Promise<void> => {
    const p = join(fs, posix.dirname(rel));
    if (times.has(p)) return;
    const st = await lstat(p, { bigint: true }).catch(() => undefined);
    if (st?.isDirectory()) times.set(p, st.mtimeNs);
  };
  for (const f of init.files) {
    const p = join(fs, f);
    const st = await lstat(p).catch(() => undefined);
    // Still the empty placeholder: the run did not make it its own.
    if (!st?.isFile() || st.size !== 0) continue;
    await remember(f);
    await rm(p, { force: true });
  }
  for (const d of [...init.dirs].sort((a, b) => b.length - a.length)) {
    await remember(d);
    await rmdir(join(fs, d)).catch(() => {});
  }
  for (const [p, t] of [...times].sort((a, b) => b[0].length - a[0].length)) await setMtimeExact(p, t);
}

/**
 * Puts a directory's time back to the nanosecond, so the comparison with the parent sees it
 * unchanged: Node's utimes goes through a double and a Date and loses the nanoseconds. A run
 * makes placeholders in a few dirs at most (/etc), so one `touch` each is cheap.
 */
async function setMtimeExact(p: string, ns: bigint): Promise<void> {
  const stamp = `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
  await run('touch', ['-h', '-d', stamp, p]);
}

async function readInit(dir: string): Promise<VfsInit | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'init.json'), 'utf8')) as VfsInit;
  } catch {
    return undefined;
  }
}
