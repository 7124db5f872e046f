/**
 * The volume store: `<root>/volumes/<name>/` holds `volume.json` (driver, options, labels, creation
 * time), `_data/` (the content, Docker's path) and `users/<container id>` (one empty file per
 * container that mounts it). A volume appears whole or not at all (made as `.creating-*`, renamed
 * into place) and is deleted by renaming it to `.removing-*` first.
 *
 * Every change (create, use, release, remove) happens under one lock, `<root>/volumes/.lock`, and
 * a container names itself as a user before its creation goes on: so `volume rm` either sees that
 * user and refuses, or removes the volume before the container asks for it (and then gets a new,
 * empty one) — it never deletes data a container is about to mount. A user file whose container
 * is gone (a creation killed midway, a removal cut short) counts for nothing: the caller says which
 * containers exist (`live`), as the containers area knows them.
 */
import { mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sweepLocks, withLock } from '../lock.js';
import { namesIn } from '../fs.js';
import { isProcessAlive } from '../pid.js';
import { volumeDataDir, volumeDir, volumesDir } from '../store/paths.js';
import { emitEvents } from '../store/events.js';
import { VolumeInUseError, VolumeNotFoundError } from './errors.js';
import { treeSize, volumeFilter } from './usage.js';
import type { Volume, VolumeUsage } from './types.js';

export type { Volume, VolumeUsage } from './types.js';
export { treeSize, volumeFilter } from './usage.js';
import { ANONYMOUS_LABEL, checkDriver, checkDriverOptions, checkVolumeName, LOCAL_DRIVER } from './local-driver.js';

export interface CreateVolumeOptions {
  name?: string;
  driver?: string;
  /** The driver's options (`-o type=tmpfs`). */
  options?: Record<string, string>;
  labels?: Record<string, string>;
  /** Made for one container's `-v /path` or an image's VOLUME: labelled as anonymous. */
  anonymous?: boolean;
  signal?: AbortSignal;
}

/** Which container ids exist (the containers area answers; user files of others are stale). */
export type LiveContainers = () => Promise<Set<string>>;

const META = 'volume.json';
const USERS = 'users';
const ENTRY = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Docker's volume events (`create`, `destroy`) in the store's journal; never fails. */
function emitVolumeEvents(root: string, action: 'create' | 'destroy', names: readonly string[]): Promise<void> {
  return emitEvents(root, names.map((id) => ({ type: 'volume' as const, action, id, attributes: { driver: LOCAL_DRIVER } })));
}

function withVolumesLock<T>(root: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return withLock(join(volumesDir(root), '.volumes'), fn, { signal });
}

/** Whether anonymous: made for one container, removed with it by `rm -v` and `run --rm`. */
export function isAnonymous(v: Pick<Volume, 'Labels'>): boolean {
  return Object.hasOwn(v.Labels, ANONYMOUS_LABEL);
}

async function readVolume(root: string, name: string): Promise<Volume | undefined> {
  if (!ENTRY.test(name)) return undefined;
  let text: string;
  try {
    text = await readFile(join(volumeDir(root, name), META), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
  const v = JSON.parse(text) as Partial<Volume>;
  return {
    CreatedAt: v.CreatedAt ?? '',
    Driver: v.Driver ?? LOCAL_DRIVER,
    Labels: v.Labels ?? {},
    Mountpoint: volumeDataDir(root, name),
    Name: name,
    Options: v.Options ?? {},
    Scope: 'local',
  };
}

/** The volume `name`, or VolumeNotFoundError. */
export async function getVolume(root: string, name: string): Promise<Volume> {
  const v = await readVolume(root, name);
  if (!v) throw new VolumeNotFoundError(name);
  return v;
}

/** Every volume, by name. */
export async function listVolumes(root: string): Promise<Volume[]> {
  const names = (await namesIn(volumesDir(root))).filter((n) => ENTRY.test(n)).sort();
  const all = await Promise.all(names.map((n) => readVolume(root, n)));
  return all.filter((v): v is Volume => v !== undefined);
}

/** Docker's creation time: RFC 3339 in local time, to the second. */
function createdAt(d = new Date()): string {
  const off = -d.getTimezoneOffset();
  const p = (n: number): string => String(Math.trunc(Math.abs(n))).padStart(2, '0');
  const local = new Date(d.getTime() + off * 60_000);
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p(off / 60)}:${p(off % 60)}`;
  return `${local.toISOString().slice(0, 19)}${zone}`;
}

/** Makes a volume (the lock is held): whole under a temporary name, then renamed into place. */
async function makeVolume(root: string, name: string, o: CreateVolumeOptions): Promise<Volume> {
  const tmp = join(volumesDir(root), `.creating-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const labels = { ...(o.labels ?? {}), ...(o.anonymous ? { [ANONYMOUS_LABEL]: '' } : {}) };
  const meta = { CreatedAt: createdAt(), Driver: LOCAL_DRIVER, Labels: labels, Options: o.options ?? {} };
  try {
    await mkdir(join(tmp, '_data'), { recursive: true, mode: 0o755 });
    await mkdir(join(tmp, USERS));
    await writeFile(join(tmp, META), `${JSON.stringify(meta, null, 2)}\n`);
    await rename(tmp, volumeDir(root, name));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  await emitVolumeEvents(root, 'create', [name]);
  return { ...meta, Mountpoint: volumeDataDir(root, name), Name: name, Scope: 'local' };
}

function checkCreate(name: string, o: CreateVolumeOptions): void {
  checkVolumeName(name);
  checkDriver(name, o.driver);
  checkDriverOptions(name, o.options ?? {});
}

/**
 * `volume create [NAME]`: a new volume (a random 64-hex name when none is given), or the existing
 * one of that name, as Docker returns it.
 */
export async function createVolume(root: string, o: CreateVolumeOptions = {}): Promise<Volume> {
  const name = o.name ?? randomBytes(32).toString('hex');
  checkCreate(name, o);
  await mkdir(volumesDir(root), { recursive: true });
  return withVolumesLock(root, async () => (await readVolume(root, name)) ?? makeVolume(root, name, o), o.signal);
}

/** A volume a container asks for: by name (made on first use), or a new anonymous one. */
export interface VolumeRequest {
  /** Absent: a new anonymous volume. */
  name?: string;
  /** For a volume made by this request (`--mount volume-opt=`, `volume-label=`). */
  create?: Omit<CreateVolumeOptions, 'name' | 'anonymous' | 'signal'>;
}

/**
 * Gets (or makes) each requested volume and records container `id` as its user, all under the
 * lock, so that no `volume rm` can come between. Returns them in the order asked, with whether
 * each was made by this call (a new volume is empty: the caller may copy image content in).
 */
export async function useVolumes(
  root: string,
  id: string,
  requests: readonly VolumeRequest[],
  o: { signal?: AbortSignal } = {},
): Promise<{ volume: Volume; created: boolean }[]> {
  const named = requests.map((r) => r.name ?? randomBytes(32).toString('hex'));
  requests.forEach((r, i) => checkCreate(named[i]!, { ...r.create, anonymous: r.name === undefined }));
  await mkdir(volumesDir(root), { recursive: true });
  return withVolumesLock(root, async () => {
    const out: { volume: Volume; created: boolean }[] = [];
    const made: string[] = [];
    try {
      for (const [i, r] of requests.entries()) {
        const name = named[i]!;
        let volume = await readVolume(root, name);
        const created = volume === undefined;
        volume ??= await makeVolume(root, name, { ...r.create, anonymous: r.name === undefined });
        if (created) made.push(name);
        await writeFile(join(volumeDir(root, name), USERS, id), '');
        out.push({ volume, created });
      }
    } catch (e) {
      // Undo: no user file of ours stays behind, and nothing this call made.
      for (const { volume } of out) await unlink(join(volumeDir(root, volume.Name), USERS, id)).catch(() => {});
      for (const n of made) await deleteVolumeDir(root, n);
      throw e;
    }
    return out;
  }, o.signal);
}

/** Renames a volume's directory away, then deletes it (the lock is held for the rename). */
async function deleteVolumeDir(root: string, name: string): Promise<void> {
  const gone = join(volumesDir(root), `.removing-${name}-${randomBytes(4).toString('hex')}`);
  try {
    await rename(volumeDir(root, name), gone);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await rm(gone, { recursive: true, force: true });
  await emitVolumeEvents(root, 'destroy', [name]);
}

/** The containers that use volume `name` (stale user files, of containers gone, are removed). */
async function usersOf(root: string, name: string, live: Set<string>): Promise<string[]> {
  const dir = join(volumeDir(root, name), USERS);
  const users: string[] = [];
  for (const u of await namesIn(dir)) {
    if (live.has(u)) users.push(u);
    else await unlink(join(dir, u)).catch(() => {});
  }
  return users.sort();
}

/**
 * Container `id` no longer uses these volumes (it is being removed). With `removeAnonymous`
 * (`rm -v`, `run --rm`), its anonymous volumes that no other container uses go too; named
 * volumes never do. Returns the names removed.
 */
export async function releaseVolumes(
  root: string,
  id: string,
  names: readonly string[],
  o: { removeAnonymous?: boolean; live: LiveContainers; signal?: AbortSignal },
): Promise<string[]> {
  if (names.length === 0) return [];
  const removed: string[] = [];
  const gone: string[] = [];
  await withVolumesLock(root, async () => {
    const live = o.removeAnonymous ? await o.live() : new Set<string>();
    live.delete(id);
    for (const name of names) {
      await unlink(join(volumeDir(root, name), USERS, id)).catch(() => {});
      if (!o.removeAnonymous) continue;
      const v = await readVolume(root, name);
      if (!v || !isAnonymous(v) || (await usersOf(root, name, live)).length > 0) continue;
      const to = join(volumesDir(root), `.removing-${name}-${randomBytes(4).toString('hex')}`);
      await rename(volumeDir(root, name), to);
      gone.push(to);
      removed.push(name);
    }
  }, o.signal);
  // Deleted outside the lock: the volume is out of sight already.
  await Promise.all(gone.map((g) => rm(g, { recursive: true, force: true })));
  await emitVolumeEvents(root, 'destroy', removed);
  return removed;
}

/**
 * `volume rm [-f] NAME`: refused while a container uses it (Docker's message, naming them);
 * `force` makes a missing volume no error (it never removes a volume in use, as in Docker).
 */
export async function removeVolume(root: string, name: string, o: { force?: boolean; live: LiveContainers; signal?: AbortSignal }): Promise<void> {
  let to: string | undefined;
  await mkdir(volumesDir(root), { recursive: true });
  await withVolumesLock(root, async () => {
    const v = await readVolume(root, name);
    if (!v) {
      if (o.force) return;
      throw new VolumeNotFoundError(name);
    }
    const users = await usersOf(root, name, await o.live());
    if (users.length > 0) throw new VolumeInUseError(name, users);
    to = join(volumesDir(root), `.removing-${name}-${randomBytes(4).toString('hex')}`);
    await rename(volumeDir(root, name), to);
  }, o.signal);
  if (to) {
    await rm(to, { recursive: true, force: true });
    await emitVolumeEvents(root, 'destroy', [name]);
  }
}

/**
 * Every volume with its size and users (for `system df` and `system prune`; `withSize: false`
 * skips the walk of each volume's files).
 */
export async function volumeUsage(root: string, o: { live: LiveContainers; withSize?: boolean }): Promise<VolumeUsage[]> {
  const [volumes, live] = await Promise.all([listVolumes(root), o.live()]);
  return Promise.all(
    volumes.map(async (v) => {
      const users = (await namesIn(join(volumeDir(root, v.Name), USERS))).filter((u) => live.has(u)).sort();
      const size = o.withSize === false ? -1 : await treeSize(v.Mountpoint);
      return { ...v, size, users };
    }),
  );
}

/**
 * `volume prune [-a]`: removes the volumes no container uses — anonymous ones only unless `all`
 * (Docker 23+) — that pass `filter`. A volume is judged and renamed away under the lock, so one a
 * container starts to use meanwhile is kept. Returns the names and the bytes reclaimed.
 */
export async function pruneVolumes(
  root: string,
  o: { all?: boolean; filters?: readonly string[]; live: LiveContainers; signal?: AbortSignal },
): Promise<{ removed: string[]; bytes: number }> {
  const keep = volumeFilter(o.filters ?? []);
  const gone: { name: string; dir: string }[] = [];
  await mkdir(volumesDir(root), { recursive: true });
  await withVolumesLock(root, async () => {
    const live = await o.live();
    for (const v of await listVolumes(root)) {
      if (!o.all && !isAnonymous(v)) continue;
      const users = await usersOf(root, v.Name, live);
      if (users.length > 0 || !keep({ ...v, size: 0, users })) continue;
      const to = join(volumesDir(root), `.removing-${v.Name}-${randomBytes(4).toString('hex')}`);
      await rename(volumeDir(root, v.Name), to);
      gone.push({ name: v.Name, dir: to });
    }
  }, o.signal);
  let bytes = 0;
  for (const g of gone) {
    bytes += await treeSize(join(g.dir, '_data'));
    await rm(g.dir, { recursive: true, force: true });
  }
  await emitVolumeEvents(root, 'destroy', gone.map((g) => g.name));
  return { removed: gone.map((g) => g.name), bytes };
}

/** Deletes what killed processes left in the volumes dir: half-made and half-removed volumes, lock files. */
export async function sweepVolumes(root: string): Promise<void> {
  await sweepLocks(volumesDir(root)).catch(() => {});
  await withVolumesLock(root, async () => {
    for (const n of await namesIn(volumesDir(root))) {
      const m = /^\.creating-.+-(\d+)-[0-9a-f]{8}$/.exec(n);
      if (n.startsWith('.removing-') || (m && !isProcessAlive(Number(m[1])))) await rm(join(volumesDir(root), n), { recursive: true, force: true });
    }
  }).catch(() => {});
}
