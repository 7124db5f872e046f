/**
 * The layer step (RUN, COPY, ADD, and the mkdir a WORKDIR implies): cache lookup by key, else
 * prepare an active snapshot on the stage's chain, do the work, hash the upper dir's layer (its
 * blob is written only when something needs its bytes: store/lazy.ts) and commit the snapshot
 * under the new chain id. A cache hit touches neither
 * snapshots nor file contents.
 */
import { lchown, lstat, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Descriptor } from '../../image/types.js';
import type { Digest } from '../../image/digest.js';
import type { Mount } from '../../sandbox/spec.js';
import { throwIfAborted } from '../../errors.js';
import { PhaseClock } from '../../phases.js';
import { BuildError } from '../errors.js';
import { stepKey, type CacheRecord, type StepKeyParts } from '../cache.js';
import { chainIdOn } from './image-state.js';
import { resolveChown, resolveRel } from './fs-root.js';
import { ensureSnapshot, withHostMount } from './snapshots.js';
import { planDirectCopy } from './copy-direct.js';
import { syncFilesystem } from '../../snapshots/sync.js';
import { hasPlaceholders } from '../../snapshots/snapshotter.js';
import { appendLayer, historyEntry, keyBase, type StageCtx } from './stage.js';

/** The active snapshot a layer step works in. */
export interface ActiveStep {
  key: string;
  mounts: Mount[];
  /** Where the step's time goes (printed as the step's `times:` line). */
  phases: PhaseClock;
  /**
   * Says the work wrote through a host mount that it has unmounted: the umount flushed the
   * writes, so the step needs no flush of its own before its snapshot is committed.
   */
  unmounted(): void;
}

/**
 * A layer-producing step: cached by `keyParts`; on a miss, `work` runs against a fresh active
 * snapshot on the stage's chain, whose upper dir then becomes the new layer.
 */
export async function layerStep(
  s: StageCtx,
  label: string,
  keyParts: StepKeyParts,
  createdBy: string,
  work: (a: ActiveStep, log: (line: string) => void) => Promise<void>,
  o: { init?: () => Promise<{ files: string[]; dirs: string[] }>; linked?: boolean; phases?: PhaseClock } = {},
): Promise<void> {
  const env = s.env;
  const key = stepKey(keyParts);
  const task = env.reporter.task(label);
  // Made before the cache lookup: a cached COPY's context walk is the step's time too.
  const phases = o.phases ?? new PhaseClock();
  task.phases?.(phases);
  const chainOn = (diffId: Digest): Digest => chainIdOn(s.image.chainId, diffId);
  try {
    if (!env.noCache) {
      let rec: Omit<CacheRecord, 'v'> | undefined = await env.cache.get(key);
      const remote = !rec && env.remoteCache ? await env.remoteCache.get(key, (l) => task.log(l)) : undefined;
      rec ??= remote;
      if (rec) {
        // A linked layer is independent of its parent: its chain id depends on where it lands; an
        // imported one's is computed here, never taken from the cache.
        const chainId = o.linked || remote ? chainOn(rec.diffId) : rec.chainId;
        appendLayer(s, rec.layer, rec.diffId, chainId, rec.history);
        // Kept locally too: the record counts once its layer is in the store (BuildCache.get).
        if (remote) await env.cache.put(key, { ...remote, chainId });
        // --write-layers asks for every layer of the image as a blob, a hit on a lazy one too.
        else if (env.writeLayers) await phases.time('write', () => env.store.materialize(rec.layer.digest, env.signal ? { signal: env.signal } : {}));
        env.stepLog?.({ key, parent: keyParts.parent, chainId, diffId: rec.diffId, layer: rec.layer, history: rec.history });
        task.done('CACHED');
        return;
      }
    }
    const history = historyEntry(s, createdBy, false);
    env.warm?.();
    // Waiting for one of the build's step slots (--parallelism) is the step's time too.
    const queued = phases.start('queue');
    const result = await env.stepLimit(async () => {
      queued();
      throwIfAborted(env.signal);
      // The first step opens the snapshotter (which probes the storage drivers).
      const sn = await phases.time('snapshot', () => env.snapshotter());
      // COPY --link writes into an empty snapshot; the stacked snapshot is unpacked on demand.
      const parent = o.linked ? undefined : await phases.time('unpack', () => ensureSnapshot(env, s.image));
      const activeKey = `build-${randomBytes(8).toString('hex')}`;
      // Placeholders of an init layer (made only on a cache miss: finding them may need a mount).
      const placeholders = o.init ? await o.init() : undefined;
      const init = hasPlaceholders(placeholders) ? { init: placeholders } : {};
      const mounts = await phases.time('snapshot', () => sn.prepare(activeKey, parent, { ...init, lease: env.store.lease }));
      let committed = false;
      let flushed = false;
      try {
        await work({ key: activeKey, mounts, phases, unmounted: () => void (flushed = true) }, (l) => task.log(l));
        // What the work wrote reaches the disk before a snapshot and a cache record say it is
        // there (a linked layer's snapshot is not kept: its blob is written and synced). The
        // flush, mostly the disk's time, runs while the diff reads the same files from memory;
        // the commit waits for it. Settled into a value at once, so that its failure while the
        // diff runs is not an unhandled rejection.
        const flushing = !flushed && !o.linked
          ? sn.upperDir(activeKey).then((upper) => syncFilesystem(upper, env.signal ? { signal: env.signal } : {})).then(() => undefined, (e: unknown) => ({ error: e }))
          : undefined;
        // One span around the pass whose pack, hash and write pieces interleave. Hashed only
        // (no blob written) unless linked: a linked layer's snapshot is not kept.
        const blob = await phases.group('diff', () => sn.diff(activeKey, {
          phases,
          lazy: !o.linked && !env.writeLayers,
          ...(env.sourceDateEpoch !== undefined ? { sourceDateEpoch: env.sourceDateEpoch } : {}),
          ...(env.signal ? { signal: env.signal } : {}),
        })).catch(async (e: unknown) => {
          // The flush ends before the snapshot is removed.
          await flushing;
          throw e;
        });
        const flushFailed = flushing && (await phases.time('sync', () => flushing));
        if (flushFailed) throw flushFailed.error;
        const chainId = chainOn(blob.diffId);
        // Committed or found, the chain's snapshot is leased until the build ends.
        const exists = o.linked || (await sn.acquire(chainId, env.store.lease));
        if (!exists) {
          try {
            await phases.time('snapshot', () => sn.commit(chainId, activeKey, { lease: env.store.lease, ...(blob.usage ? { usage: blob.usage } : {}) }));
            committed = true;
          } catch (e) {
            // A concurrent build may have committed the same chain meanwhile.
            if (!(await sn.acquire(chainId, env.store.lease))) throw e;
          }
        }
        if (blob.lazy && sn.keepLazy) {
          const lazy = blob.lazy;
          await phases.time('sync', () => sn.keepLazy!(chainId, { ...blob, lazy }));
        }
        const layer: Descriptor = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
        return { layer, diffId: blob.diffId, chainId };
      } finally {
        if (!committed) await sn.remove(activeKey).catch(() => {});
      }
    });
    appendLayer(s, result.layer, result.diffId, result.chainId, history);
    await env.cache.put(key, { ...result, history });
    env.stepLog?.({ key, parent: keyParts.parent, chainId: result.chainId, diffId: result.diffId, layer: result.layer, history });
    const times = phases.summary();
    if (times) task.update?.(`times: ${times}`);
    task.done();
  } catch (e) {
    task.fail(e instanceof Error ? e.message : String(e));
    throw e;
  }
}

/**
 * Creates the pending WORKDIRs inside a mounted rootfs: missing dirs 0755, owned by the USER in
 * effect at their WORKDIR (its /etc/passwd entry, a number as uid and gid; root when unknown),
 * as BuildKit's mkdir with the stage's user does. `direct`: written into an upper dir, the owners
 * and the WORKDIRs still missing in the image as copy-direct.ts found them.
 */
export async function createWorkdir(s: StageCtx, root: string, direct?: { ownerOf(user: string | undefined): Promise<{ uid: number; gid: number }>; workdirs: { path: string; user?: string }[] }): Promise<void> {
  for (const p of direct?.workdirs ?? pendingWorkdirs(s)) {
    const owner = direct ? await direct.ownerOf(p.user) : p.user ? await resolveChown(root, p.user).catch(() => ({ uid: 0, gid: 0 })) : { uid: 0, gid: 0 };
    const rel = await resolveRel(root, p.path, true);
    let cur = root;
    for (const comp of rel.split('/').filter(Boolean)) {
      cur = `${cur}/${comp}`;
      const st = await lstat(cur).catch(() => undefined);
      if (st?.isDirectory()) continue;
      try {
        await mkdir(cur, { mode: 0o755 });
      } catch (e) {
        // Named inside the image, not by the host path of the build's mount.
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'EEXIST') throw new BuildError(`WORKDIR ${p.path}: a part of it is not a directory in the image`, { code: 'FAILED_PRECONDITION', cause: e });
        throw e;
      }
      if (owner.uid !== 0 || owner.gid !== 0) await lchown(cur, owner.uid, owner.gid);
    }
  }
  s.pendingWorkdirs = [];
}

/** The WORKDIRs the next layer step creates (the image's own when none was set in this stage). */
export function pendingWorkdirs(s: StageCtx): { path: string; user?: string }[] {
  const wd = s.image.config.config?.WorkingDir;
  return s.pendingWorkdirs ?? (wd && wd !== '/' ? [{ path: wd }] : []);
}

/** The layer step of a WORKDIR that no later layer step of the stage created. */
export async function workdirStep(s: StageCtx): Promise<void> {
  const wd = s.image.config.config?.WorkingDir ?? '/';
  await layerStep(s, `[${s.label}] WORKDIR ${wd}`, keyBase(s, { kind: 'workdir-mkdir', path: wd }), `WORKDIR ${wd}`, async (active) => {
    // Made in the upper dir where the image holds only dirs on the way (copy-direct.ts).
    const upper = s.env.mountForCopy ? undefined : await planDirectCopy({ mounts: active.mounts, workdirs: pendingWorkdirs(s) });
    if (!upper) return withHostMount(s.env, active.mounts, (root) => createWorkdir(s, root), active.phases, active.unmounted);
    active.phases.timeSync('copy-up', () => upper.prepare());
    await createWorkdir(s, upper.root, upper);
  });
  s.workdirPending = false;
}
