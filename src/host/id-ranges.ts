/**
 * `--userns=auto` as root, as podman does it: each container (or build) gets a range of host ids
 * of its own, taken from the subordinate ranges /etc/subuid and /etc/subgid give the user
 * `containers`, and its root is the range's first id. A range is held by a record file named for
 * its owner, in a directory of the store; records are written under one lock, so two owners never
 * hold overlapping ranges. An owner that no longer exists (a container removed, a build killed)
 * gives its range back: the caller says which owners are alive, and dead ones are swept whenever
 * a range is allocated.
 */
import { chmod, lchown, lstat, readFile, readdir, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ImgbuildError, InvalidArgumentError } from '../errors.js';
import { withLock } from '../lock.js';
import { mkdirp } from '../fs.js';
import { isOwnerAlive } from '../pid.js';

/** The user whose subordinate ranges `--userns=auto` takes ids from (podman's convention). */
export const AUTO_USERNS_USER = 'containers';
/** The size of an automatic range when none is asked for (podman's default). */
export const DEFAULT_AUTO_SIZE = 65536;

export interface SubidFiles {
  subuid: string;
  subgid: string;
}

export const DEFAULT_SUBID_FILES: SubidFiles = { subuid: '/etc/subuid', subgid: '/etc/subgid' };

/** The files named by IMGBUILD_SUBUID_FILE / IMGBUILD_SUBGID_FILE, else /etc/subuid and /etc/subgid. */
export function subidFilesFromEnv(env: NodeJS.ProcessEnv): SubidFiles {
  return { subuid: env.IMGBUILD_SUBUID_FILE || DEFAULT_SUBID_FILES.subuid, subgid: env.IMGBUILD_SUBGID_FILE || DEFAULT_SUBID_FILES.subgid };
}

export interface Span {
  start: number;
  size: number;
}

/** A user namespace's mapping: container id 0 is `uid`/`gid`.start on the host, for `size` ids. */
export interface IdRangeMapping {
  uid: number;
  gid: number;
  size: number;
}

/** `--userns`: the host's namespace, or an automatic range of `size` ids. */
export type UsernsMode = { kind: 'host' } | { kind: 'auto'; size: number };

/** Reads `--userns` as podman does: `host` or '' (the default), `auto[:size=N]`. */
export function parseUsernsMode(v: string | undefined): UsernsMode {
  if (v === undefined || v === '' || v === 'host') return { kind: 'host' };
  const [mode, opts] = [v.split(':')[0]!, v.includes(':') ? v.slice(v.indexOf(':') + 1) : ''];
  if (mode !== 'auto') {
    if (['keep-id', 'nomap', 'private', 'ns'].includes(mode)) throw new ImgbuildError('NOT_IMPLEMENTED', `--userns=${v} is not supported: use auto or host`);
    throw new InvalidArgumentError(`invalid --userns ${JSON.stringify(v)}: use auto[:size=N] or host`);
  }
  let size = DEFAULT_AUTO_SIZE;
  for (const o of opts.split(',').filter(Boolean)) {
    const [k, val] = [o.slice(0, o.indexOf('=') < 0 ? o.length : o.indexOf('=')), o.slice(o.indexOf('=') + 1)];
    if (k !== 'size' || !/^[0-9]+$/.test(val)) throw new InvalidArgumentError(`invalid --userns option ${JSON.stringify(o)}: auto takes size=N`);
    size = Number(val);
    if (size < 1 || size > 0xffffffff) throw new InvalidArgumentError(`invalid --userns size ${val}: between 1 and 4294967295`);
  }
  return { kind: 'auto', size };
}

/** Every range a subuid/subgid file's text gives `name` (lines `name:start:count`). */
export function subordinateRanges(text: string, name: string): Span[] {
  const out: Span[] = [];
  for (const line of text.split('\n')) {
    const [who, start, size] = line.trim().split(':');
    if (who !== name) continue;
    const s = Number(start);
    const n = Number(size);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(n) && s >= 0 && n > 0) out.push({ start: s, size: n });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The first `size` ids inside `ranges` that overlap nothing in `used`. */
export function firstFit(ranges: Span[], used: Span[], size: number): number | undefined {
  const taken = [...used].sort((a, b) => a.start - b.start);
  for (const r of ranges) {
    let s = r.start;
    for (const u of taken) {
      if (u.start + u.size <= s) continue;
      if (u.start >= s + size) break;
      s = u.start + u.size;
    }
    if (s + size <= r.start + r.size) return s;
  }
  return undefined;
}

interface RangeRecord {
  owner: string;
  uid: number;
  gid: number;
  size: number;
}

function isRecord(v: unknown): v is RangeRecord {
  const r = v as RangeRecord;
  return typeof r === 'object' && r !== null && typeof r.owner === 'string' && [r.uid, r.gid, r.size].every((n) => Number.isSafeInteger(n));
}

/** The owner name of container `id`'s range. */
export const containerOwner = (id: string): string => `ctr-${id}`;
/** The owner name of a build's range: the building process. */
export const buildOwner = (pid: number, startTime: string, tag: string): string => `build-${pid}-${startTime}-${tag}`;

/**
 * Whether an owner exists: a container while anything of it is in `containersDir` (its directory,
 * or one being made or deleted: what prune finishes), a build while its process runs.
 */
export function ownersAlive(containersDir: string): (owner: string) => Promise<boolean> {
  let names: Promise<string[]> | undefined;
  return async (owner) => {
    let m = /^ctr-([0-9a-f]{64})$/.exec(owner);
    if (m) {
      const id = m[1]!;
      names ??= readdir(containersDir).catch(() => [] as string[]);
      return (await names).some((n) => n === id || n === `.removing-${id}` || n.startsWith(`.creating-${id}-`));
    }
    m = /^build-([0-9]+)-([0-9]+)-[0-9a-z]+$/.exec(owner);
    return m ? isOwnerAlive(Number(m[1]), m[2]) : false;
  };
}

const recordFile = (dir: string, owner: string): string => join(dir, `${owner}.json`);

async function readRecords(dir: string): Promise<RangeRecord[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: RangeRecord[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try {
      const v = JSON.parse(await readFile(join(dir, n), 'utf8')) as unknown;
      if (isRecord(v)) out.push(v);
    } catch {
      // removed meanwhile, or a half-written temp file (never named .json)
    }
  }
  return out;
}

export interface AllocateOptions {
  /** Which subuid/subgid files to read (tests give fixtures). */
  files?: SubidFiles;
  /** Whether a record's owner still exists; records of dead owners are removed first. */
  isLive: (owner: string) => Promise<boolean>;
  signal?: AbortSignal;
}

async function readSubid(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

/**
 * Gives `owner` a range of `size` uids and gids no live owner holds, recorded in `dir`. An owner
 * that has one already gets it again.
 */
export async function allocateIdRange(dir: string, owner: string, size: number, o: AllocateOptions): Promise<IdRangeMapping> {
  const files = o.files ?? DEFAULT_SUBID_FILES;
  const [uidText, gidText] = await Promise.all([readSubid(files.subuid), readSubid(files.subgid)]);
  const uids = subordinateRanges(uidText, AUTO_USERNS_USER);
  const gids = subordinateRanges(gidText, AUTO_USERNS_USER);
  for (const [list, file, opt] of [[uids, files.subuid, '--add-subuids'], [gids, files.subgid, '--add-subgids']] as const) {
    if (list.length === 0) {
      throw new ImgbuildError(
        'FAILED_PRECONDITION',
        `--userns=auto: no subordinate ${opt === '--add-subuids' ? 'uid' : 'gid'} range for user ${AUTO_USERNS_USER} in ${file}: add one with usermod ${opt} 2147483647-4294967294 ${AUTO_USERNS_USER} (or the line ${AUTO_USERNS_USER}:2147483647:2147483648)`,
      );
    }
  }
  await mkdirp(dir);
  return withLock(join(dir, '.lock'), async () => {
    const live: RangeRecord[] = [];
    for (const r of await readRecords(dir)) {
      if (r.owner === owner) return { uid: r.uid, gid: r.gid, size: r.size };
      if (await o.isLive(r.owner)) live.push(r);
      else await rm(recordFile(dir, r.owner), { force: true });
    }
    const uid = firstFit(uids, live.map((r) => ({ start: r.uid, size: r.size })), size);
    const gid = firstFit(gids, live.map((r) => ({ start: r.gid, size: r.size })), size);
    if (uid === undefined || gid === undefined) {
      throw new ImgbuildError(
        'UNAVAILABLE',
        `--userns=auto: no free range of ${size} ${uid === undefined ? 'uids' : 'gids'} left for user ${AUTO_USERNS_USER} in ${uid === undefined ? files.subuid : files.subgid} (${live.length} in use)`,
      );
    }
    const rec: RangeRecord = { owner, uid, gid, size };
    const tmp = join(dir, `.${owner}.tmp`);
    await writeFile(tmp, JSON.stringify(rec));
    await rename(tmp, recordFile(dir, owner));
    return { uid, gid, size };
  }, o.signal ? { signal: o.signal } : {});
}

/** Gives `owner`'s range back (nothing when it has none). */
export async function releaseIdRange(dir: string, owner: string): Promise<void> {
  await rm(recordFile(dir, owner), { force: true });
}

/** Removes the records of owners that are gone; returns them. */
export async function sweepIdRanges(dir: string, isLive: (owner: string) => Promise<boolean>): Promise<string[]> {
  const gone: string[] = [];
  for (const r of await readRecords(dir)) {
    if (await isLive(r.owner)) continue;
    await rm(recordFile(dir, r.owner), { force: true });
    gone.push(r.owner);
  }
  return gone;
}

/** The ranges held now, by owner (inspect and tests). */
export async function heldIdRanges(dir: string): Promise<Map<string, IdRangeMapping>> {
  return new Map((await readRecords(dir)).map((r) => [r.owner, { uid: r.uid, gid: r.gid, size: r.size }]));
}

/**
 * Moves the owners of everything under `dir` (itself included) into the range (`up`: container
 * id n becomes the host's start + n) or back out of it (`down`). Ids outside the range being left
 * are left alone (a whiteout overlay made as the host's root stays 0).
 */
export async function shiftOwners(dir: string, m: IdRangeMapping, direction: 'up' | 'down', o: { signal?: AbortSignal } = {}): Promise<void> {
  const move = (id: number, start: number): number => {
    if (direction === 'up') return id < m.size ? id + start : id;
    return id >= start && id - start < m.size ? id - start : id;
  };
  const visit = async (p: string): Promise<void> => {
    o.signal?.throwIfAborted();
    const st = await lstat(p);
    const uid = move(st.uid, m.uid);
    const gid = move(st.gid, m.gid);
    if (uid !== st.uid || gid !== st.gid) {
      await lchown(p, uid, gid);
      // chown clears the setuid and setgid bits: they are put back.
      if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) await chmod(p, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const n of await readdir(p)) await visit(join(p, n));
  };
  await visit(dir);
}
