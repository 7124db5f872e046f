/**
 * The build orchestrator: parse the Dockerfile, select the target stage and the stages it needs,
 * run independent stages concurrently (layer steps share a p-limit), write the final image into
 * the store (uncompressed layers unless `compression` says otherwise), tag it, and optionally
 * export it (src/archive/archive.ts: an OCI layout dir, an OCI layout tar or a docker-archive).
 */

import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, dirname, resolve } from 'node:path';
import pLimit from 'p-limit';
import { availableParallelism } from 'node:os';
import { OciStore } from '../store/store.js';
import { isProcessAlive } from '../pid.js';
import { mkdirp } from '../fs.js';
import type { Descriptor, ImageConfig, Platform } from '../image/types.js';
import type { Compression } from '../image/media-types.js';
import type { Digest } from '../image/digest.js';
import { loadImage, writeImage } from '../store/images.js';
import { formatReference, parseReference } from '../image/reference.js';
import type { OverlaySnapshotter } from '../snapshots/overlay.js';
import { ImgbuildError, InvalidArgumentError, NotFoundError, throwIfAborted } from '../errors.js';
import { BuildError } from './errors.js';
import type { Stage } from './frontend/instructions.js';
import { buildStageGraph, findStageRef } from './frontend/stages.js';
import { hostPlatformOf, parsePlatformSpec } from './frontend/platform.js';
import { BuildCache } from './cache.js';
import { openContext } from './context.js';
import { dispatchStage, isoTime, latestCreated, type BuildReporter, type DispatchEnv, type ImageState } from './dispatch/dispatch.js';
import type { BuildNetwork } from './dispatch/run-step.js';
import type { SecretSource } from './dispatch/mounts.js';

export interface BuildOptions {
  /** Store root (`<root>/` OCI layout, `<root>/overlay`, `<root>/cache`). */
  root: string;
  /** Build context dir; undefined for a context-less build (Dockerfile from stdin). */
  contextDir?: string;
  /** Path of the Dockerfile (default `<context>/Dockerfile`). */
  dockerfile?: string;
  /** Dockerfile text (wins over `dockerfile`). */
  dockerfileText?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  pull?: boolean;
  secrets?: SecretSource[];
  network?: BuildNetwork;
  platform?: string;
  compression?: Compression;
  /** Manifest/config vocabulary of the result (default oci). */
  format?: 'oci' | 'docker';
  output?: { type: 'oci' | 'docker'; dest: string };
  iidfile?: string;
  /** Seconds since the epoch for `created`, history times and clamped layer mtimes. */
  sourceDateEpoch?: number;
  reporter?: BuildReporter;
  /** Concurrent layer steps (default: number of cores). */
  parallelism?: number;
  signal?: AbortSignal;
}

export interface BuildResult {
  /** The manifest descriptor in the store. */
  descriptor: Descriptor;
  /** Docker-style image id (config digest). */
  imageId: Digest;
  config: ImageConfig;
  /** Full references tagged. */
  tags: string[];
}

export { StageNotFoundError } from './frontend/stages.js';

const NOOP_REPORTER: BuildReporter = { task: () => ({ log() {}, done() {}, fail() {} }) };

/** Where builds keep their scratch dirs, `<pid>-<rand>` each. */
function tmpBaseOf(root: string): string {
  return join(root, 'cache', 'build', 'tmp');
}

/**
 * Removes the scratch dirs of builds whose process is gone, unmounting what a killed build left
 * mounted there first (prune calls this too).
 */
export function removeStaleBuildDirs(root: string): Promise<void> {
  return removeStaleTmp(tmpBaseOf(root));
}

async function removeStaleTmp(base: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(n.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || isProcessAlive(pid)) continue;
    const dir = join(base, n);
    const { mountPointsUnder, unmount } = await import('../snapshots/mount.js');
    if ((await mountPointsUnder(dir)).length) await unmount(dir).catch(() => {});
    if ((await mountPointsUnder(dir)).length === 0) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The context must be a directory: say so in one line rather than fail on the first read in it. */
async function checkContextDir(dir: string): Promise<void> {
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') throw new NotFoundError(`build context ${JSON.stringify(dir)} not found`, { cause: e });
    throw e;
  });
  if (!st.isDirectory()) throw new InvalidArgumentError(`build context ${JSON.stringify(dir)} is not a directory`);
}

async function readDockerfile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`Dockerfile ${JSON.stringify(path)} not found`, { cause: e });
    if (code === 'EISDIR') throw new InvalidArgumentError(`Dockerfile ${JSON.stringify(path)} is a directory`, { cause: e });
    throw e;
  }
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  // Tmp dirs under the root become bind-mount sources in the sandbox, whose cwd is not ours:
  // a relative `--root` is resolved once, here.
  const o: BuildOptions = { ...opts, root: resolve(opts.root) };
  const signal = o.signal;
  const reporter = o.reporter ?? NOOP_REPORTER;
  const dockerfilePath = o.dockerfile ?? (o.contextDir ? join(o.contextDir, 'Dockerfile') : undefined);
  if (o.contextDir !== undefined) await checkContextDir(o.contextDir);
  let text = o.dockerfileText;
  if (text === undefined) {
    if (!dockerfilePath) throw new InvalidArgumentError('no Dockerfile given');
    text = await readDockerfile(dockerfilePath);
  }
  const { parseDockerfile } = await import('./frontend/parse.js');
  const df = parseDockerfile(text, dockerfilePath ? { file: dockerfilePath } : {});
  if (df.stages.length === 0) throw new BuildError('the Dockerfile has no FROM instruction');
  const escape = df.directives.escape;
  const platform = o.platform ? parsePlatformSpec(o.platform) : hostPlatformOf();
  const buildArgs = new Map(Object.entries(o.buildArgs ?? {}));
  // Meta ARGs, the target and the stages it needs (throws StageNotFoundError for an unknown target).
  const graph = buildStageGraph(df, { buildArgs, platform, ...(o.target !== undefined ? { target: o.target } : {}) });
  const metaArgs = graph.meta;
  // Opened once the Dockerfile is known good: a build that cannot start leaves no store behind.
  const store = await OciStore.open(o.root);

  const tmpBase = tmpBaseOf(o.root);
  await removeStaleTmp(tmpBase);
  const tmpDir = join(tmpBase, `${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmpDir, { recursive: true });
  const context = await openContext(o.contextDir ? resolve(o.contextDir) : undefined, {
    cacheDir: join(o.root, 'cache', 'build'),
    ...(dockerfilePath ? { dockerfilePath } : {}),
  });
  const cache = await BuildCache.open(store);
  let snP: Promise<OverlaySnapshotter> | undefined;
  const results = new Map<Stage, Promise<ImageState>>();
  // The registry client is loaded only when a base image is missing (it is heavy to import).
  const pullImage: DispatchEnv['pullImage'] = async (ref, p) => {
    const mod = (await import('../registry/pull.js')) as { pullImage?: (s: OciStore, r: string, o?: { platform?: Platform; signal?: AbortSignal }) => Promise<Descriptor> };
    if (typeof mod.pullImage !== 'function') throw new ImgbuildError('NOT_IMPLEMENTED', `image ${ref} is not in the store and pulling is not available`);
    const task = reporter.task(`pull ${ref}`);
    try {
      await mod.pullImage(store, ref, { platform: p, ...(signal ? { signal } : {}) });
      task.done();
    } catch (e) {
      task.fail(e instanceof Error ? e.message : String(e));
      throw e;
    }
  };

  const env: DispatchEnv = {
    store,
    root: o.root,
    snapshotter: () => {
      snP ??= import('../snapshots/overlay.js').then((m) => m.OverlaySnapshotter.open(join(o.root, 'overlay'), signal ? { signal } : {}));
      return snP;
    },
    cache,
    noCache: o.noCache ?? false,
    pull: o.pull ?? false,
    context,
    tmpDir,
    compression: o.compression ?? 'none',
    ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    network: o.network ?? 'none',
    secrets: new Map((o.secrets ?? []).map((s) => [s.id, s])),
    buildArgs,
    metaArgs,
    platform,
    escape,
    dockerfile: df,
    reporter,
    stage: (ref, from) => {
      const st = findStageRef(df.stages, ref, from.index, true);
      return st ? runStage(st) : Promise.resolve(undefined);
    },
    stepLimit: pLimit(Math.max(1, o.parallelism ?? availableParallelism())),
    unpacking: new Map(),
    ...(signal ? { signal } : {}),
    pullImage,
  };
  const runStage = (st: Stage): Promise<ImageState> => {
    let p = results.get(st);
    if (!p) {
      p = dispatchStage(env, st);
      p.catch(() => {});
      results.set(st, p);
    }
    return p;
  };

  try {
    // Start every stage the target needs right away, so independent ones run concurrently.
    for (const i of graph.needed) void runStage(df.stages[i]!);
    const finalImage = await runStage(df.stages[graph.target]!);
    throwIfAborted(signal);
    await Promise.allSettled([...results.values()]);

    const config: ImageConfig = JSON.parse(JSON.stringify(finalImage.config)) as ImageConfig;
    // Without SOURCE_DATE_EPOCH the image is as new as its newest step, so a fully cached
    // rebuild gives the same image id.
    config.created = o.sourceDateEpoch !== undefined ? isoTime(o.sourceDateEpoch) : latestCreated(finalImage) ?? isoTime();
    let layers = [...finalImage.layers];
    const compression = o.compression ?? 'none';
    if (compression !== 'none') {
      const { ensureCompressed } = await import('../store/layers.js');
      const task = reporter.task(`compressing ${layers.length} layers (${compression})`);
      layers = await Promise.all(layers.map((l) => ensureCompressed(store, l, compression, { ...(o.format ? { format: o.format } : {}), ...(signal ? { signal } : {}) })));
      task.done();
    }
    const task = reporter.task('writing image');
    const descriptor = await writeImage(store, config, layers, o.format ? { format: o.format } : {});
    const manifest = JSON.parse((await store.read(descriptor)).toString('utf8')) as { config: Descriptor };
    const imageId = manifest.config.digest;
    const tags: string[] = [];
    for (const t of o.tags ?? []) {
      const full = formatReference(parseReference(t));
      // A rebuild that changed nothing leaves index.json alone (no lock, no rewrite).
      if ((await store.resolve(full))?.digest !== descriptor.digest) await store.tag(full, descriptor);
      tags.push(full);
    }
    if (tags.length === 0) await store.keepUntagged(descriptor);
    task.done(`DONE ${imageId.slice(0, 19)}`);
    if (o.iidfile) {
      await mkdirp(dirname(resolve(o.iidfile)));
      await writeFile(o.iidfile, imageId);
    }
    if (o.output) {
      const t = reporter.task(`exporting to ${o.output.type} ${o.output.dest}`);
      const { writeArchiveFile, writeOciLayout } = await import('../archive/archive.js');
      const image = await loadImage(store, descriptor);
      const named = tags.length ? tags.map((ref) => ({ image, ref })) : [{ image }];
      // An OCI layout names the image once (by its first tag): ref.name values must stay unique.
      const first = named.slice(0, 1);
      // type=oci to a directory writes an OCI layout there; to a `.tar` (or type=docker) a tarball.
      // OCI layouts name the image by its tag in ref.name (what `skopeo oci:DIR:TAG` looks up); the
      // docker form also carries an OCI layout, as `docker save` does since Docker 25.
      if (o.output.type === 'docker') await writeArchiveFile(store, named, o.output.dest, { format: 'docker', ociLayout: true, ...(signal ? { signal } : {}) });
      else if (o.output.dest.endsWith('.tar')) await writeArchiveFile(store, first, o.output.dest, { format: 'oci', refName: 'tag', ...(signal ? { signal } : {}) });
      else await writeOciLayout(store, first, o.output.dest, { refName: 'tag' });
      t.done();
    }
    await context.stat.save();
    return { descriptor, imageId, config, tags };
  } finally {
    await Promise.allSettled([...results.values()]);
    // The image is tagged (or the build failed): nothing needs protecting from prune any more.
    await store.release().catch(() => {});
    const { mountPointsUnder, unmount } = await import('../snapshots/mount.js');
    if ((await mountPointsUnder(tmpDir).catch(() => [])).length) await unmount(tmpDir).catch(() => {});
    if ((await mountPointsUnder(tmpDir).catch(() => [])).length === 0) await rm(tmpDir, { recursive: true, force: true }).catch(() => {});
  }
}
