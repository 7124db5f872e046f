/**
 * Dispatch: per-stage state and one handler per instruction (buildkit `dispatch*`).
 *
 * A stage builds its image in a private draft that handlers change in place, and publishes it as
 * an ImageState (config + layer descriptors + chain id) that nothing changes afterwards: so a step
 * costs the same however many came before it. Config-only instructions add a history entry with
 * `empty_layer: true`.
 * Layer steps (RUN, COPY, ADD, and the mkdir a WORKDIR implies) go through `layerStep`: cache
 * lookup by key, else prepare an overlay snapshot on the parent chain, do the work, pack the upper
 * dir into an uncompressed layer (diffSnapshot), and commit the snapshot under the new chain id.
 * A cache hit touches neither snapshots nor file contents.
 */
import { mkdir, mkdtemp, rm, rmdir, chmod, stat, writeFile, open as openFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { createGunzip } from 'node:zlib';
import { join, posix } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { LimitFunction } from 'p-limit';
import type { OciStore } from '../../store/store.js';
import type { Descriptor, History, ImageConfig, Platform, HealthConfig } from '../../image/types.js';
import type { Compression } from '../../image/media-types.js';
import type { Digest } from '../../image/digest.js';
import { chainIds, type LoadedImage } from '../../image/model.js';
import { findImage } from '../../store/images.js';
import { BlobNotFoundError, ImageNotFoundError } from '../../store/errors.js';
import type { OverlaySnapshotter } from '../../snapshots/overlay.js';
import type { Mount } from '../../sandbox/spec.js';
import { deferredTrust } from '../../registry/trust.js';
import { ImgbuildError, throwIfAborted } from '../../errors.js';
import { BuildError, withLocation } from '../errors.js';
import type { Add, Arg, Copy, Dockerfile, Healthcheck, Instruction, Run, Stage, CommandLine } from '../frontend/instructions.js';
import { expandInstruction } from '../frontend/instructions.js';
import { processWord, lex, type EnvGetter, type EscapeChar } from '../frontend/shell-lex.js';
import { BuildCache, stepKey, type StepKeyParts } from '../cache.js';
import { formatPlatform, isProxyArg, parsePlatformSpec } from '../frontend/platform.js';
import type { BuildContext } from '../context.js';
import { applyCopy, parseChmod, planCopy, planDigest, type CopyPlan, type SourceTree } from './copy.js';
import { resolveChown, resolveProcessUser, resolveInRoot } from './fs-root.js';
import { INIT_FILES, lineWriter, networkFiles, RunFailedError, sandboxSpec, type BuildNetwork } from './run-step.js';
import { prepareRunMounts, secretDirOf, withCacheLocks, type SecretSource } from './mounts.js';

/** The image a stage has built, as published to other stages and the build: never changed. */
export interface ImageState {
  readonly config: ImageConfig;
  readonly layers: readonly Descriptor[];
  /** Chain id of the top layer (the committed snapshot's key); undefined without layers. */
  readonly chainId?: Digest;
}

/** Receives step progress (the CLI passes its Progress; structurally the same shape). */
export interface StepReporter {
  log(line: string): void;
  done(note?: string): void;
  fail(msg?: string): void;
}
export interface BuildReporter {
  task(label: string): StepReporter;
}

/** Everything a stage's dispatch needs from the build (one per build, shared by stages). */
export interface DispatchEnv {
  store: OciStore;
  root: string;
  snapshotter(): Promise<OverlaySnapshotter>;
  cache: BuildCache;
  noCache: boolean;
  pull: boolean;
  context: BuildContext;
  /** Scratch dir of this build (mount points, per-step files); removed at the end. */
  tmpDir: string;
  compression: Compression;
  sourceDateEpoch?: number;
  network: BuildNetwork;
  secrets: Map<string, SecretSource>;
  buildArgs: ReadonlyMap<string, string>;
  /** Values of the meta ARGs (before the first FROM), predefined platform args included. */
  metaArgs: ReadonlyMap<string, string>;
  platform: Platform;
  escape: EscapeChar;
  dockerfile: Dockerfile;
  reporter: BuildReporter;
  /** The result of another stage by name or index (built on demand); undefined when no such stage. */
  stage(ref: string, from: Stage): Promise<ImageState | undefined>;
  /** Limits concurrent layer steps across stages. */
  stepLimit: LimitFunction;
  /** Serialises unpacking of one chain id between concurrent stages. */
  unpacking: Map<string, Promise<unknown>>;
  signal?: AbortSignal;
  /** Pulls an image that is not in the store (undefined when pulling is unavailable). */
  pullImage?: (ref: string, platform: Platform) => Promise<void>;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_SHELL = ['/bin/sh', '-c'];
/** Where a `RUN <<EOF` script with a `#!` line is bound: /dev is the sandbox's own tmpfs. */
const HEREDOC_SCRIPT_PATH = '/dev/.imgbuild-heredoc';

export function isoTime(epoch?: number): string {
  return (epoch !== undefined ? new Date(epoch * 1000) : new Date()).toISOString().replace(/\.000Z$/, 'Z');
}

export function emptyImage(platform: Platform): ImageState {
  return {
    config: {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: [DEFAULT_PATH] },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    },
    layers: [],
  };
}

export function imageFromLoaded(img: LoadedImage): ImageState {
  const config = JSON.parse(img.rawConfig.toString('utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  const chain = chainIds(diffIds);
  return { config, layers: img.manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })), ...(chain.length ? { chainId: chain[chain.length - 1] as Digest } : {}) };
}

/**
 * The image of a stage being built: the stage's own deep copy of its starting image, changed in
 * place. A copy of the whole config per step (it holds a history entry per step, and every label)
 * made builds quadratic in their instructions: 10,000 LABELs took 77 s.
 */
interface DraftImage {
  config: ImageConfig;
  layers: Descriptor[];
  chainId?: Digest;
}

function draftOf(img: ImageState): DraftImage {
  return structuredClone({ config: img.config, layers: [...img.layers], ...(img.chainId ? { chainId: img.chainId } : {}) });
}

/** The chain id of the layer `diffId` on top of the chain `parent` (OCI image spec). */
export function chainIdOn(parent: Digest | undefined, diffId: Digest): Digest {
  return parent === undefined ? diffId : (chainIds([parent, diffId])[1] as Digest);
}

function changeConfig(s: StageCtx, fn: (c: NonNullable<ImageConfig['config']>) => void, history?: History): void {
  fn((s.image.config.config ??= {}));
  if (history) addHistory(s, history);
}

function addHistory(s: StageCtx, h: History): void {
  (s.image.config.history ??= []).push(h);
  if (h.created && (s.latest === undefined || h.created > s.latest)) s.latest = h.created;
}

function appendLayer(s: StageCtx, layer: Descriptor, diffId: Digest, chainId: Digest, history: History): void {
  const img = s.image;
  if (img.config.rootfs?.type !== 'layers' || !Array.isArray(img.config.rootfs.diff_ids)) img.config.rootfs = { type: 'layers', diff_ids: [] };
  img.config.rootfs.diff_ids.push(diffId);
  img.layers.push(layer);
  img.chainId = chainId;
  addHistory(s, history);
}

function envList(img: ImageState | DraftImage): string[] {
  return img.config.config?.Env ?? [];
}

function envKey(e: string): string {
  const eq = e.indexOf('=');
  return eq < 0 ? e : e.slice(0, eq);
}

/** Where each variable of an Env list is (its last entry, the one in effect). */
function envIndex(list: readonly string[]): Map<string, number> {
  const at = new Map<string, number>();
  list.forEach((e, i) => at.set(envKey(e), i));
  return at;
}

/** The value of `key` in the stage's Env, found through its index. */
function envGet(s: StageCtx, key: string): string | undefined {
  const i = s.envAt.get(key);
  if (i === undefined) return undefined;
  const e = envList(s.image)[i] as string;
  const eq = e.indexOf('=');
  return eq < 0 ? '' : e.slice(eq + 1);
}

/** Sets a variable where it is, or appends it (BuildKit's addEnv: a changed variable keeps its place). */
function setEnv(s: StageCtx, c: NonNullable<ImageConfig['config']>, key: string, value: string): void {
  const list = (c.Env ??= []);
  const i = s.envAt.get(key);
  if (i !== undefined) {
    list[i] = `${key}=${value}`;
  } else {
    s.envAt.set(key, list.length);
    list.push(`${key}=${value}`);
  }
}

/** Per-stage mutable dispatch state, the image's draft included (published when the stage ends). */
interface StageCtx {
  env: DispatchEnv;
  stage: Stage;
  label: string;
  image: DraftImage;
  /** The newest `created` of the image (latestCreated), kept up to date as history grows. */
  latest: string | undefined;
  /** envIndex of the image's Env, kept up to date by setEnv. */
  envAt: Map<string, number>;
  /** ARGs declared in this stage and their values (unset ARGs are absent). */
  args: Map<string, string>;
  /** CMD set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  /** WORKDIR named a dir that the next layer step must create. */
  workdirPending: boolean;
  step: number;
  steps: number;
}

function getter(s: StageCtx): EnvGetter {
  return (name) => envGet(s, name) ?? s.args.get(name);
}

/** The environment a RUN sees: ENV, then ARGs not shadowed by ENV (BuildKit). */
function runEnv(s: StageCtx): string[] {
  let env = envList(s.image).slice();
  if (envGet(s, 'PATH') === undefined) env = [DEFAULT_PATH, ...env];
  const extra: string[] = [];
  for (const [k, v] of s.args) if (envGet(s, k) === undefined) extra.push(`${k}=${v}`);
  return [...env, ...extra];
}

function created(s: StageCtx): string {
  return isoTime(s.env.sourceDateEpoch);
}

/**
 * Config-only steps take the time of the newest entry before them rather than the clock, so a
 * rebuild whose layer steps all hit the cache yields the very same image (and id).
 */
function historyEntry(s: StageCtx, createdBy: string, empty: boolean): History {
  let when = created(s);
  if (empty && s.env.sourceDateEpoch === undefined) when = s.latest ?? isoTime(0);
  return { created: when, created_by: createdBy, comment: 'imgbuild', ...(empty ? { empty_layer: true } : {}) };
}

/** The newest `created` among the image's history and config (ISO strings compare in order). */
export function latestCreated(img: ImageState): string | undefined {
  let best = img.config.created;
  for (const h of img.config.history ?? []) if (h.created && (!best || h.created > best)) best = h.created;
  return best;
}

function commandArgs(s: StageCtx, c: CommandLine): string[] {
  return c.form === 'exec' ? c.args : [...shellOf(s), c.command];
}

function shellOf(s: StageCtx): string[] {
  return s.image.config.config?.Shell?.length ? (s.image.config.config.Shell as string[]) : DEFAULT_SHELL;
}

function firstLine(ins: Instruction): string {
  const text = ins.original.split('\n')[0] ?? '';
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

// --------------------------------------------------------------------------------------------
// Images and snapshots

async function loadBase(env: DispatchEnv, ref: string, platform: Platform): Promise<ImageState> {
  // Leased before use: a concurrent `prune -a` may untag the image, but not delete what the build
  // goes on to use. When it deleted the image while it was being read (blobs missing), the image
  // is looked up again: gone now, it is pulled (or not found) like any missing image.
  for (let attempt = 1; ; attempt++) {
    let img: LoadedImage | undefined;
    try {
      img = await findBase(env, ref, platform);
    } catch (e) {
      if (!(e instanceof BlobNotFoundError) || attempt >= 3) throw e;
      continue;
    }
    const blobs = [img.descriptor.digest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)];
    if (img.indexDescriptor) blobs.push(img.indexDescriptor.digest);
    const missing = await env.store.protect(blobs);
    if (missing.length === 0) return imageFromLoaded(img);
    if (attempt >= 3) throw new BlobNotFoundError(missing[0]!);
  }
}

async function findBase(env: DispatchEnv, ref: string, platform: Platform): Promise<LoadedImage> {
  if (!env.pull) {
    try {
      return await findImage(env.store, ref, { platform });
    } catch (e) {
      if (!(e instanceof ImageNotFoundError) || !env.pullImage) throw e;
    }
  }
  if (!env.pullImage) throw new ImageNotFoundError(ref);
  await env.pullImage(ref, platform);
  return findImage(env.store, ref, { platform });
}

/** Makes sure the committed snapshot of `img`'s chain exists (unpacking layers when missing). */
async function ensureSnapshot(env: DispatchEnv, img: ImageState): Promise<string | undefined> {
  if (!img.chainId) return undefined;
  const chain = img.chainId;
  const sn = await env.snapshotter();
  const inflight = env.unpacking.get(chain);
  if (inflight) await inflight.catch(() => {});
  // Leased when found (or unpacked), so a concurrent prune keeps it for the rest of the build.
  if (await sn.acquire(chain, env.store.lease, env.signal ? { signal: env.signal } : {})) return chain;
  const p = (async () => {
    const { unpackImage } = await import('../../snapshots/unpack.js');
    await unpackImage(env.store, sn, [...img.layers], [...img.config.rootfs.diff_ids], { lease: env.store.lease, ...(env.signal ? { signal: env.signal } : {}) });
  })();
  env.unpacking.set(chain, p);
  try {
    await p;
  } finally {
    env.unpacking.delete(chain);
  }
  return chain;
}

/** Mounts `mounts` on a fresh dir under the build tmp dir, runs fn, always unmounts. */
async function withHostMount<T>(env: DispatchEnv, mounts: Mount[], fn: (root: string) => Promise<T>): Promise<T> {
  const { mountAll, unmount } = await import('../../snapshots/mount.js');
  const target = await mkdtemp(join(env.tmpDir, 'mnt-'));
  await mountAll(mounts, target, env.signal ? { signal: env.signal } : {});
  try {
    return await fn(target);
  } finally {
    await unmount(target);
    await rmdir(target).catch(() => {});
  }
}

/** A read-only host view of an image's rootfs for the duration of fn. */
async function withImageRoot<T>(env: DispatchEnv, img: ImageState, fn: (root: string) => Promise<T>): Promise<T> {
  const parent = await ensureSnapshot(env, img);
  if (!parent) {
    const empty = await mkdtemp(join(env.tmpDir, 'empty-'));
    try {
      return await fn(empty);
    } finally {
      await rmdir(empty).catch(() => {});
    }
  }
  const sn = await env.snapshotter();
  const key = `build-view-${randomBytes(8).toString('hex')}`;
  const mounts = await sn.view(key, parent, { lease: env.store.lease });
  try {
    return await withHostMount(env, mounts, fn);
  } finally {
    await sn.remove(key).catch(() => {});
  }
}

interface ActiveStep {
  key: string;
  mounts: Mount[];
}

/**
 * A layer-producing step: cached by `keyParts`; on a miss, `work` runs against a fresh active
 * snapshot on the stage's chain, whose upper dir then becomes the new layer.
 */
async function layerStep(
  s: StageCtx,
  label: string,
  keyParts: StepKeyParts,
  createdBy: string,
  work: (a: ActiveStep, log: (line: string) => void) => Promise<void>,
  o: { initFiles?: string[]; initDirs?: string[]; linked?: boolean } = {},
): Promise<void> {
  const env = s.env;
  const key = stepKey(keyParts);
  const task = env.reporter.task(label);
  const chainOn = (diffId: Digest): Digest => chainIdOn(s.image.chainId, diffId);
  try {
    if (!env.noCache) {
      const rec = await env.cache.get(key);
      if (rec) {
        // A linked layer is independent of its parent: its chain id depends on where it lands.
        appendLayer(s, rec.layer, rec.diffId, o.linked ? chainOn(rec.diffId) : rec.chainId, rec.history);
        task.done('CACHED');
        return;
      }
    }
    const history = historyEntry(s, createdBy, false);
    const result = await env.stepLimit(async () => {
      throwIfAborted(env.signal);
      const sn = await env.snapshotter();
      // COPY --link writes into an empty snapshot; the stacked snapshot is unpacked on demand.
      const parent = o.linked ? undefined : await ensureSnapshot(env, s.image);
      const activeKey = `build-${randomBytes(8).toString('hex')}`;
      const init = o.initFiles?.length || o.initDirs?.length ? { init: { files: o.initFiles ?? [], dirs: o.initDirs ?? [] } } : {};
      const mounts = await sn.prepare(activeKey, parent, { ...init, lease: env.store.lease });
      let committed = false;
      try {
        await work({ key: activeKey, mounts }, (l) => task.log(l));
        const { diffSnapshot } = await import('../../snapshots/diff.js');
        const blob = await diffSnapshot(env.store, sn, activeKey, {
          compression: 'none',
          ...(env.sourceDateEpoch !== undefined ? { sourceDateEpoch: env.sourceDateEpoch } : {}),
          ...(env.signal ? { signal: env.signal } : {}),
        });
        const chainId = chainOn(blob.diffId);
        // Committed or found, the chain's snapshot is leased until the build ends.
        const exists = o.linked || (await sn.acquire(chainId, env.store.lease));
        if (!exists) {
          try {
            await sn.commit(chainId, activeKey, { lease: env.store.lease });
            committed = true;
          } catch (e) {
            // A concurrent build may have committed the same chain meanwhile.
            if (!(await sn.acquire(chainId, env.store.lease))) throw e;
          }
        }
        const layer: Descriptor = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
        return { layer, diffId: blob.diffId, chainId };
      } finally {
        if (!committed) await sn.remove(activeKey).catch(() => {});
      }
    });
    appendLayer(s, result.layer, result.diffId, result.chainId, history);
    await env.cache.put(key, { ...result, history });
    task.done();
  } catch (e) {
    task.fail(e instanceof Error ? e.message : String(e));
    throw e;
  }
}

function keyBase(s: StageCtx, instruction: unknown, extra: Partial<StepKeyParts> = {}): StepKeyParts {
  const c = s.image.config.config ?? {};
  return {
    parent: s.image.chainId ?? `empty:${formatPlatform({ os: s.image.config.os, architecture: s.image.config.architecture })}`,
    instruction,
    env: runEnv(s),
    ...(c.User ? { user: c.User } : {}),
    workdir: (c.WorkingDir || '/') + (s.workdirPending ? ' (create)' : ''),
    ...extra,
  };
}

/** Creates the pending WORKDIR inside a mounted rootfs (root-owned, 0755, like buildah). */
async function createWorkdir(s: StageCtx, root: string): Promise<void> {
  const wd = s.image.config.config?.WorkingDir;
  if (!wd || wd === '/') return;
  const host = await resolveInRoot(root, wd);
  try {
    await mkdir(host, { recursive: true, mode: 0o755 });
  } catch (e) {
    // Named inside the image, not by the host path of the build's mount.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') throw new BuildError(`WORKDIR ${wd}: a part of it is not a directory in the image`, { code: 'FAILED_PRECONDITION', cause: e });
    throw e;
  }
}

// --------------------------------------------------------------------------------------------
// Handlers

async function dispatchRun(s: StageCtx, ins: Run, label: string): Promise<void> {
  const env = s.env;
  let args: string[];
  let createdBy: string;
  /** A heredoc script with its own interpreter (`#!`), run as a file bound into /dev. */
  let script: string | undefined;
  const hd = ins.heredocs;
  if (ins.command.form === 'shell' && hd.length > 0) {
    const cmd = ins.command.command.trim();
    const only = hd.length === 1 && /^<<-?["']?[A-Za-z0-9_.-]+["']?$/.test(cmd) ? hd[0] : undefined;
    if (only && !only.content.startsWith('#!')) {
      args = [...shellOf(s), only.content];
    } else if (only) {
      // A script with its own interpreter: run it as a file (BuildKit does the same).
      script = only.content;
      args = [HEREDOC_SCRIPT_PATH];
    } else {
      args = [...shellOf(s), `${ins.command.command}\n${hd.map((h) => `${h.content}${h.name}\n`).join('')}`];
    }
  } else {
    args = commandArgs(s, ins.command);
  }
  createdBy = `RUN ${script !== undefined ? ins.original.split('\n')[0] : args.join(' ')}`;
  const argNames = [...s.args.keys()].filter((k) => envGet(s, k) === undefined);
  if (argNames.length) createdBy = `RUN |${argNames.length} ${argNames.map((k) => `${k}=${s.args.get(k) ?? ''}`).join(' ')} ${createdBy.slice(4)}`;
  const network: BuildNetwork = ins.network === 'host' ? 'host' : ins.network === 'none' ? 'none' : env.network;
  const mountsForKey = ins.mounts.map((m) => (m.type === 'secret' ? { type: 'secret', id: m.id, target: m.target, env: m.env } : m));
  const fromChains: string[] = [];
  for (const m of ins.mounts) {
    if ((m.type === 'bind' || m.type === 'cache') && m.from) {
      const st = await env.stage(m.from, s.stage);
      fromChains.push(st?.chainId ?? m.from);
    }
  }
  let contextDigest: string | undefined;
  if (ins.mounts.some((m) => m.type === 'bind' && !m.from) && env.context.dir) {
    const tree: SourceTree = { root: env.context.dir, kind: 'context', ignore: env.context.ignore, statCache: env.context.stat };
    const sources = ins.mounts.filter((m) => m.type === 'bind' && !m.from).map((m) => (m as { source?: string }).source ?? '.');
    contextDigest = planDigest(await planCopy({ sources, tree, hash: true, ...(env.signal ? { signal: env.signal } : {}) }));
  }
  const keyParts = keyBase(s, { kind: 'run', args, heredocs: hd, mounts: mountsForKey, network, security: ins.security }, {
    shell: shellOf(s),
    content: JSON.stringify({ fromChains, contextDigest }),
  });
  const workdir = s.image.config.config?.WorkingDir || '/';
  const userSpec = s.image.config.config?.User ?? '';
  // Proxy build args reach RUN without an ARG line and stay out of history and cache keys (BuildKit).
  const proxyEnv = [...env.buildArgs].filter(([k]) => isProxyArg(k) && !s.args.has(k)).map(([k, v]) => `${k}=${v}`);
  const stepEnv = [...runEnv(s), ...proxyEnv];
  // Mount targets are placeholders in the snapshot's init layer, so the sandbox creating them
  // never leaves empty dirs or files in the step's layer.
  const mountInit = await mountPlaceholders(ins, workdir, env.context.dir);
  const workdirPending = s.workdirPending;
  await layerStep(s, label, keyParts, createdBy, async (active, log) => {
    const scratch = await mkdtemp(join(env.tmpDir, 'run-'));
    const viewKeys: { key: string; dir: string }[] = [];
    let scriptFile: string | undefined;
    try {
      const sn = await env.snapshotter();
      // Name lookups and the WORKDIR mkdir need the rootfs on the host (only when needed).
      let user = { uid: 0, gid: 0, additionalGids: [] as number[] };
      const numeric = /^(\d+)(?::(\d+))?$/.exec(userSpec);
      const needUserLookup = userSpec !== '' && userSpec !== 'root' && !(numeric && numeric[2] !== undefined);
      if (needUserLookup || workdirPending) {
        await withHostMount(env, active.mounts, async (root) => {
          if (workdirPending) await createWorkdir(s, root);
          if (needUserLookup) user = await resolveProcessUser(root, userSpec);
        });
      } else if (numeric) {
        user = { uid: Number(numeric[1]), gid: Number(numeric[2]), additionalGids: [] };
      }
      if (script !== undefined) {
        scriptFile = join(scratch, 'script');
        await writeFile(scriptFile, script);
        await chmod(scriptFile, 0o755);
      }
      const prepared = await prepareRunMounts(ins.mounts, {
        storeRoot: env.root,
        scratch,
        contextDir: env.context.dir,
        fromRoot: async (from) => {
          const st = await env.stage(from, s.stage);
          if (!st) throw new ImgbuildError('NOT_FOUND', `RUN --mount from=${from}: no such stage or image`);
          const dir = await mkdtemp(join(scratch, 'from-'));
          // Materialise the stage's rootfs read-only through a view mount kept for the step.
          const parent = await ensureSnapshot(env, st);
          if (parent) {
            const vkey = `build-view-${randomBytes(8).toString('hex')}`;
            const { mountAll } = await import('../../snapshots/mount.js');
            await mountAll(await sn.view(vkey, parent, { lease: env.store.lease }), dir);
            viewKeys.push({ key: vkey, dir });
          }
          return dir;
        },
        secrets: env.secrets,
        workdir,
      });
      const files = await networkFiles(join(scratch, 'etc'), network);
      const extra = scriptFile
        ? [{ type: 'bind' as const, source: scriptFile, destination: HEREDOC_SCRIPT_PATH, options: ['rbind', 'ro'] }]
        : [];
      const spec = sandboxSpec({
        rootfs: active.mounts,
        args,
        env: [...stepEnv, ...prepared.env],
        cwd: workdir,
        user,
        network,
        mounts: [...files, ...extra, ...prepared.mounts],
      });
      // The init layer of the prepared snapshot only has the standard placeholders; mount
      // targets for RUN --mount are created by the sandbox on the rootfs if missing.
      const { runSandbox } = await import('../../sandbox/sandbox.js');
      try {
        const out = lineWriter(log);
        const r = await withCacheLocks(prepared.locks, () => runSandbox(spec, { stdout: out, stderr: out, ...(env.signal ? { signal: env.signal } : {}) }));
        out.end();
        if (r.exitCode !== 0 || r.signal) throw new RunFailedError(args.join(' '), r.exitCode, r.signal);
      } finally {
        const dir = secretDirOf(prepared);
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    } finally {
      const { unmount } = await import('../../snapshots/mount.js');
      for (const v of viewKeys.splice(0)) {
        await unmount(v.dir).catch(() => {});
        await (await env.snapshotter()).remove(v.key).catch(() => {});
      }
      await rm(scratch, { recursive: true, force: true }).catch(() => {});
    }
  }, { initFiles: [...INIT_FILES, ...mountInit.files], initDirs: mountInit.dirs });
  s.workdirPending = false;
}

async function mountPlaceholders(ins: Run, workdir: string, contextDir: string | undefined): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const m of ins.mounts) {
    if (m.type === 'secret') {
      if (m.target || !m.env) files.push(posix.resolve('/', m.target ?? `/run/secrets/${m.id ?? ''}`));
      continue;
    }
    if (m.type === 'ssh') continue;
    const target = posix.resolve(workdir || '/', m.target);
    if (m.type === 'bind' && !m.from && contextDir) {
      const st = await stat(await resolveInRoot(contextDir, m.source ?? '/')).catch(() => undefined);
      if (st && !st.isDirectory()) {
        files.push(target);
        continue;
      }
    }
    dirs.push(target);
  }
  return { files, dirs };
}

/**
 * fetch() for an ADD URL. Node's own trusts its default CA store; when the `imgbuild` executable
 * deferred NODE_EXTRA_CA_CERTS (src/registry/trust.ts), an https URL goes through undici's
 * fetch (the package's: its Agent must match its fetch) with those certificates added.
 */
async function fetchForAdd(url: string, signal?: AbortSignal): Promise<{ ok: boolean; status: number; statusText: string; data: Buffer; lastModified: string | null }> {
  const ca = url.startsWith('https:') ? deferredTrust(process.env) : undefined;
  const read = async (res: { ok: boolean; status: number; statusText: string; arrayBuffer(): Promise<ArrayBuffer>; headers: { get(n: string): string | null } }) => ({
    ok: res.ok,
    status: res.status,
    statusText: res.statusText,
    data: Buffer.from(await res.arrayBuffer()),
    lastModified: res.headers.get('last-modified'),
  });
  // fetch() reports every network failure as "fetch failed": the reason is its cause.
  const failed = (e: unknown): never => {
    if (signal?.aborted) throw e;
    const reason = (e as { cause?: { message?: string; code?: string } }).cause;
    const why = reason?.message ?? (e as Error).message;
    throw new ImgbuildError('UNAVAILABLE', `ADD ${url}: ${why}${reason?.code && !why.includes(reason.code) ? ` (${reason.code})` : ''}`, { cause: e });
  };
  if (!ca) return read(await fetch(url, signal ? { signal } : {}).catch(failed));
  const undici = createRequire(import.meta.url)('undici') as typeof import('undici');
  const dispatcher = new undici.Agent({ connect: { ca } });
  try {
    return await read(await undici.fetch(url, { dispatcher, ...(signal ? { signal } : {}) }).catch(failed));
  } finally {
    await dispatcher.close();
  }
}

/** Downloads an ADD URL into `dir`; returns the file path, its name and mtime. */
async function download(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<{ path: string; name: string; mtimeMs: number }> {
  const res = await fetchForAdd(url, signal);
  if (!res.ok) throw new ImgbuildError('UNAVAILABLE', `ADD ${url}: HTTP ${res.status} ${res.statusText}`);
  const data = res.data;
  if (checksum) {
    const [alg, hex] = checksum.split(':');
    if (alg !== 'sha256' && alg !== 'sha384' && alg !== 'sha512') throw new ImgbuildError('INVALID_ARGUMENT', `ADD --checksum: unsupported algorithm ${alg}`);
    const actual = createHash(alg).update(data).digest('hex');
    if (actual !== hex) throw new ImgbuildError('FAILED_PRECONDITION', `ADD ${url}: checksum mismatch: expected ${checksum}, got ${alg}:${actual}`);
  }
  const u = new URL(url);
  const name = posix.basename(u.pathname) || 'index.html';
  const path = join(dir, `dl-${randomBytes(6).toString('hex')}`);
  await writeFile(path, data, { mode: 0o600 });
  await chmod(path, 0o600);
  const lm = res.lastModified;
  const mtimeMs = lm ? Date.parse(lm) : 0;
  return { path, name, mtimeMs: Number.isFinite(mtimeMs) ? mtimeMs : 0 };
}

/** Extracts a local archive (tar, optionally gzip/bzip2/xz/zstd compressed) into `destDir`. */
export async function extractArchive(archive: string, destDir: string, signal?: AbortSignal): Promise<void> {
  const fh = await openFile(archive, 'r');
  const head = Buffer.alloc(6);
  await fh.read(head, 0, 6, 0);
  await fh.close();
  let stream: Readable;
  const viaTool = (cmd: string): Readable => {
    const p = spawn(cmd, ['-dc', archive], { stdio: ['ignore', 'pipe', 'inherit'] });
    return p.stdout;
  };
  if (head[0] === 0x1f && head[1] === 0x8b) stream = createReadStream(archive).pipe(createGunzip());
  else if (head.subarray(0, 3).toString('latin1') === 'BZh') stream = viaTool('bzip2');
  else if (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') stream = viaTool('xz');
  else if (head.readUInt32LE(0) === 0xfd2fb528) stream = viaTool('zstd');
  else stream = createReadStream(archive);
  const { applyLayer } = await import('../../tar/apply.js');
  await applyLayer(destDir, stream, { mode: 'flat', ...(signal ? { signal } : {}) });
}

async function dispatchCopy(s: StageCtx, ins: Copy | Add, label: string): Promise<void> {
  const env = s.env;
  const isAdd = ins.kind === 'add';
  // `--from` is expanded with the meta ARGs (the stage graph is fixed before dispatch, as in BuildKit).
  const from = ins.kind === 'copy' && ins.from !== undefined ? processWord(ins.from, (n) => env.metaArgs.get(n), env.escape) : undefined;
  const chmod = ins.chmod ? parseChmod(ins.chmod) : undefined;
  const inline = new Map<string, Buffer>();
  for (const h of ins.heredocs) {
    const text = h.expand ? lex(h.content, getter(s), { escape: env.escape, skipProcessQuotes: true }).result : h.content;
    inline.set(h.name, Buffer.from(text));
  }
  const urls = isAdd ? ins.sources.filter((x) => /^https?:\/\//.test(x)) : [];
  if (isAdd && ins.sources.some((x) => /^git@|\.git(#.*)?$/.test(x) && !/^https?:\/\//.test(x))) {
    throw new ImgbuildError('NOT_IMPLEMENTED', 'ADD of git repositories is not supported');
  }
  const localSources = ins.sources.filter((x) => !urls.includes(x));
  let content: string;
  let plan: CopyPlan | undefined;
  let fromImage: ImageState | undefined;
  const scratch = await mkdtemp(join(env.tmpDir, 'copy-'));
  try {
    const downloads: { path: string; name: string; mtimeMs: number }[] = [];
    for (const u of urls) downloads.push(await download(u, scratch, (ins as Add).checksum, env.signal));
    if (from) {
      fromImage = await env.stage(from, s.stage);
      if (!fromImage) {
        // Not a stage: an image reference.
        fromImage = await loadBase(env, from, env.platform);
      }
      content = JSON.stringify({ from: fromImage.chainId ?? 'empty', sources: localSources });
    } else {
      const tree: SourceTree | undefined = env.context.dir ? { root: env.context.dir, kind: 'context', ignore: env.context.ignore, statCache: env.context.stat } : undefined;
      plan = await planCopy({
        sources: localSources, tree, exclude: ins.exclude, parents: ins.parents, inline, hash: true,
        detectArchives: isAdd && (ins as Add).unpack !== false,
        ...(env.signal ? { signal: env.signal } : {}),
      });
      content = planDigest(plan);
    }
    if (downloads.length) {
      const { hashFile } = await import('../context.js');
      content += JSON.stringify(await Promise.all(downloads.map(async (d) => [d.name, await hashFile(d.path)])));
    }
    const createdBy = `${isAdd ? 'ADD' : 'COPY'} ${ins.original.replace(/^\s*\S+\s+/, '').split('\n')[0]}`;
    const keyParts = keyBase(s, {
      kind: ins.kind, sources: ins.sources, dest: ins.dest, from: from ?? null, chown: ins.chown, chmod: ins.chmod,
      link: ins.link, exclude: ins.exclude, parents: ins.parents, checksum: isAdd ? (ins as Add).checksum : undefined,
      unpack: isAdd ? (ins as Add).unpack : undefined,
    }, { content });
    // --link: the layer does not depend on the parent's files (BuildKit), so neither does its key.
    if (ins.link) {
      keyParts.parent = 'link';
      keyParts.env = [];
      delete keyParts.user;
      keyParts.workdir = s.image.config.config?.WorkingDir || '/';
    }
    const workdir = s.image.config.config?.WorkingDir || '/';
    const workdirPending = s.workdirPending && !ins.link;
    const parentImage = s.image;
    // With nothing below (scratch, or --link) the upper dir is the whole rootfs: write into it
    // directly and skip the host mount (measured at ~30 ms per mount+umount here).
    const direct = ins.link || !parentImage.chainId;
    await layerStep(s, label, keyParts, createdBy, async (active) => {
      const inRoot = async <T>(fn: (root: string) => Promise<T>): Promise<T> =>
        direct ? fn(await (await env.snapshotter()).upperDir(active.key)) : withHostMount(env, active.mounts, fn);
      await inRoot(async (root) => {
        if (workdirPending) await createWorkdir(s, root);
        // Names in --chown come from the stage's /etc/passwd, also for a linked (empty) layer.
        const chown = !ins.chown ? undefined
          : ins.link && !/^\d+(:\d+)?$/.test(ins.chown) ? await withImageRoot(env, parentImage, (r) => resolveChown(r, ins.chown as string))
            : await resolveChown(root, ins.chown);
        const apply = async (p: CopyPlan): Promise<void> => {
          await applyCopy(p, {
            root, dest: ins.dest, workdir,
            ...(chown ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}),
            extract: (archive, dir) => extractArchive(archive, dir, env.signal),
            ...(env.signal ? { signal: env.signal } : {}),
          });
        };
        if (fromImage) {
          await withImageRoot(env, fromImage, async (srcRoot) => {
            const p = await planCopy({ sources: localSources, tree: { root: srcRoot, kind: 'image' }, exclude: ins.exclude, parents: ins.parents, ...(env.signal ? { signal: env.signal } : {}) });
            await apply(p);
          });
        } else if (plan) {
          const all: CopyPlan = { ...plan, multiple: plan.multiple || downloads.length + localSources.length > 1 };
          for (const d of downloads) {
            all.items.push({ source: d.name, name: d.name, isDir: false, entries: [{ rel: '', type: 'file', src: d.path, mode: 0o600, uid: 0, gid: 0, mtimeMs: d.mtimeMs }] });
          }
          await apply(all);
        }
      });
    }, { linked: ins.link });
    if (!ins.link) s.workdirPending = false;
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}

function parsePorts(words: string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    const [port = '', proto = 'tcp'] = w.split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(port);
    if (!m) throw new ImgbuildError('INVALID_ARGUMENT', `invalid EXPOSE port ${JSON.stringify(w)}`);
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    for (let p = lo; p <= hi; p++) out.push(`${p}/${proto.toLowerCase()}`);
  }
  return out;
}

function healthConfig(h: Healthcheck): HealthConfig {
  if (h.test[0] === 'NONE') return { Test: ['NONE'] };
  return {
    Test: h.test,
    ...(h.interval !== undefined ? { Interval: h.interval } : {}),
    ...(h.timeout !== undefined ? { Timeout: h.timeout } : {}),
    ...(h.startPeriod !== undefined ? { StartPeriod: h.startPeriod } : {}),
    ...(h.startInterval !== undefined ? { StartInterval: h.startInterval } : {}),
    ...(h.retries !== undefined ? { Retries: h.retries } : {}),
  };
}

function dispatchArg(s: StageCtx, ins: Arg): void {
  for (const a of ins.args) {
    const fromBuild = s.env.buildArgs.get(a.key);
    let v: string | undefined;
    if (fromBuild !== undefined) v = fromBuild;
    else if (a.value !== undefined) v = processWord(a.value, getter(s), s.env.escape);
    else v = s.env.metaArgs.get(a.key);
    if (v !== undefined) s.args.set(a.key, v);
    else s.args.delete(a.key);
  }
}

/** Dispatches one instruction of a stage. */
async function dispatchInstruction(s: StageCtx, raw: Instruction, label: string): Promise<void> {
  const esc = s.env.escape;
  const g = getter(s);
  const ins = raw.kind === 'arg' || raw.kind === 'run' ? raw : expandInstruction(raw, (w) => processWord(w, g, esc));
  const cfgStep = (by: string, fn: (c: NonNullable<ImageConfig['config']>) => void): void => {
    const t = s.env.reporter.task(label);
    changeConfig(s, fn, historyEntry(s, by, true));
    t.done();
  };
  switch (ins.kind) {
    case 'run':
      return dispatchRun(s, expandInstruction(ins, (w) => processWord(w, g, esc)), label);
    case 'copy':
    case 'add':
      return dispatchCopy(s, ins, label);
    case 'arg':
      dispatchArg(s, ins);
      return;
    case 'env':
      cfgStep(`ENV ${ins.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, (c) => {
        for (const p of ins.pairs) setEnv(s, c, p.key, p.value);
      });
      return;
    case 'label':
      cfgStep(`LABEL ${ins.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, (c) => {
        c.Labels ??= {};
        for (const p of ins.pairs) c.Labels[p.key] = p.value;
      });
      return;
    case 'maintainer':
      changeConfig(s, () => {}, historyEntry(s, `MAINTAINER ${ins.maintainer}`, true));
      s.image.config.author = ins.maintainer;
      return;
    case 'workdir': {
      const cur = s.image.config.config?.WorkingDir || '/';
      const wd = posix.resolve(cur, ins.path);
      cfgStep(`WORKDIR ${wd}`, (c) => {
        c.WorkingDir = wd;
      });
      if (wd !== '/') s.workdirPending = true;
      return;
    }
    case 'user':
      cfgStep(`USER ${ins.user}`, (c) => {
        c.User = ins.user;
      });
      return;
    case 'cmd': {
      const args = commandArgs(s, ins.command);
      cfgStep(`CMD ${JSON.stringify(args)}`, (c) => {
        c.Cmd = args;
      });
      s.cmdSet = true;
      return;
    }
    case 'entrypoint': {
      const args = commandArgs(s, ins.command);
      cfgStep(`ENTRYPOINT ${JSON.stringify(args)}`, (c) => {
        c.Entrypoint = args;
        if (!s.cmdSet) c.Cmd = null;
      });
      return;
    }
    case 'expose': {
      const ports = parsePorts(ins.ports.flatMap((p) => p.split(/\s+/).filter(Boolean)));
      cfgStep(`EXPOSE ${ports.join(' ')}`, (c) => {
        c.ExposedPorts ??= {};
        for (const p of ports) c.ExposedPorts[p] = {};
      });
      return;
    }
    case 'volume':
      cfgStep(`VOLUME ${JSON.stringify(ins.paths)}`, (c) => {
        c.Volumes ??= {};
        for (const p of ins.paths) {
          if (p.trim() === '') throw new ImgbuildError('INVALID_ARGUMENT', 'VOLUME specified can not be an empty string');
          c.Volumes[p] = {};
        }
      });
      return;
    case 'stopsignal':
      cfgStep(`STOPSIGNAL ${ins.signal}`, (c) => {
        c.StopSignal = ins.signal;
      });
      return;
    case 'healthcheck':
      cfgStep(`HEALTHCHECK ${JSON.stringify(ins.test)}`, (c) => {
        c.Healthcheck = healthConfig(ins);
      });
      return;
    case 'onbuild':
      cfgStep(`ONBUILD ${ins.expression}`, (c) => {
        (c.OnBuild ??= []).push(ins.expression);
      });
      return;
    case 'shell':
      cfgStep(`SHELL ${JSON.stringify(ins.shell)}`, (c) => {
        c.Shell = ins.shell;
      });
      return;
    default: {
      const k = (ins as { kind: string }).kind;
      throw new ImgbuildError('NOT_IMPLEMENTED', `instruction ${k.toUpperCase()} is not supported`);
    }
  }
}

/** Resolves a stage's FROM into its starting image (another stage, scratch, or an image). */
async function startImage(env: DispatchEnv, stage: Stage): Promise<{ image: ImageState; platform: Platform }> {
  const meta: EnvGetter = (n) => env.metaArgs.get(n);
  const name = processWord(stage.from.image, meta, env.escape);
  const platform = stage.from.platform ? parsePlatformSpec(processWord(stage.from.platform, meta, env.escape)) : env.platform;
  if (name.toLowerCase() === 'scratch') return { image: emptyImage(platform), platform };
  const fromStage = await env.stage(name, stage);
  if (fromStage) return { image: fromStage, platform };
  return { image: await loadBase(env, name, platform), platform };
}

/** Builds one stage and returns its final image. */
export async function dispatchStage(env: DispatchEnv, stage: Stage): Promise<ImageState> {
  const stageLabel = stage.name ?? `stage-${stage.index}`;
  const steps = stage.instructions.length + 1;
  const fromTask = env.reporter.task(`[${stageLabel} 1/${steps}] ${firstLine(stage.from)}`);
  let start: { image: ImageState; platform: Platform };
  try {
    start = await startImage(env, stage);
    fromTask.done();
  } catch (e) {
    fromTask.fail(e instanceof Error ? e.message : String(e));
    throw withLocation(e, stage.from.range, 'FROM');
  }
  const s: StageCtx = {
    env, stage, label: stageLabel, image: draftOf(start.image), latest: latestCreated(start.image),
    envAt: envIndex(start.image.config.config?.Env ?? []),
    args: new Map(), cmdSet: false, workdirPending: false, step: 1, steps,
  };
  // Predefined platform args are visible once declared in the stage (ARG TARGETARCH).
  const onbuild = s.image.config.config?.OnBuild ?? [];
  if (onbuild.length) {
    changeConfig(s, (c) => {
      c.OnBuild = null;
    });
    const { parseDockerfile } = await import('../frontend/parse.js');
    const parsed = parseDockerfile(`FROM scratch\n${onbuild.join('\n')}\n`, { file: 'ONBUILD' });
    for (const ins of parsed.stages[0]?.instructions ?? []) {
      await dispatchInstruction(s, ins, `[${stageLabel} ONBUILD] ${firstLine(ins)}`).catch((e: unknown) => {
        throw withLocation(e, stage.from.range, 'ONBUILD');
      });
    }
  }
  for (const ins of stage.instructions) {
    throwIfAborted(env.signal);
    s.step++;
    const label = `[${stageLabel} ${s.step}/${steps}] ${firstLine(ins)}`;
    try {
      await dispatchInstruction(s, ins, label);
    } catch (e) {
      throw withLocation(e, ins.range, ins.kind.toUpperCase());
    }
  }
  if (s.workdirPending) {
    const wd = s.image.config.config?.WorkingDir ?? '/';
    await layerStep(s, `[${stageLabel}] WORKDIR ${wd}`, keyBase(s, { kind: 'workdir-mkdir', path: wd }), `WORKDIR ${wd}`, async (active) => {
      await withHostMount(env, active.mounts, (root) => createWorkdir(s, root));
    });
    s.workdirPending = false;
  }
  return s.image;
}

export { BuildError };
