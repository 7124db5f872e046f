/**
 * The build orchestrator: parse the Dockerfile, select the target stage and the stages it needs,
 * run independent stages concurrently (layer steps share a p-limit), write the final image into
 * the store (uncompressed layers unless `compression` says otherwise), tag it, and optionally
 * export it (src/archive/archive.ts: an OCI layout dir, an OCI layout tar or a docker-archive).
 */

import { emitEvents } from '../store/events.js';
import { lstat, mkdir, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, dirname, resolve } from 'node:path';
import { buildCacheDir, buildTmpDir, isolationCacheFile } from '../store/paths.js';
import pLimit from 'p-limit';
import { availableParallelism } from 'node:os';
import { OciStore } from '../store/store.js';
import { isProcessAlive } from '../pid.js';
import { mkdirp } from '../fs.js';
import type { Descriptor, ImageConfig } from '../image/types.js';
import type { Compression } from '../image/media-types.js';
import type { Digest } from '../image/digest.js';
import { findImage, loadImage, writeImage } from '../store/images.js';
import { ensureCompressed } from '../store/layers.js';
import { familiarReference, formatReference, parseReference } from '../image/reference.js';
import { openBuildSnapshotter, type StorageDriver } from './build-snapshotter.js';
import { chooseIsolation } from './isolation.js';
import type { IsolationChoice } from '../sandbox/isolation.js';
import type { Isolation } from '../sandbox/spec.js';
import { mountPointsUnder, unmount } from '../snapshots/mount.js';
import { writeArchiveFile, writeOciLayout } from '../archive/archive.js';
import { throwIfAborted } from '../errors.js';
import { parseUsernsMode, type SubidFiles } from '../host/id-ranges.js';
import { BuildIdRange, checkBuildUserns } from './dispatch/run-userns.js';
import type { Dockerfile, Stage } from './frontend/instructions.js';
import { parseDockerfile } from './frontend/parse.js';
import { loadIgnore, type LoadedIgnore } from './frontend/dockerignore.js';
import { lintDockerfile, violationOf, type LintWarning } from './lint/lint.js';
import { BaseLookups, storeBaseImages } from './lint/base-images.js';
import { shortForm } from './lint/report.js';
import { buildStageGraph, findStageRef, type StageGraph } from './frontend/stages.js';
import { hostPlatformOf, parsePlatformSpec } from './frontend/platform.js';
import { BuildCache } from './cache.js';
import { CacheExchange, warner } from './remote-cache/exchange.js';
import { openSharedCacheMounts } from './remote-cache/mounts.js';
import { isBrokenCacheEntry } from './remote-cache/import.js';
import type { CacheExport, CacheImport } from './remote-cache/options.js';
import { openContext } from './context.js';
import { openInputs, type BuildInputs } from './inputs/build-inputs.js';
import type { ContextSource } from './inputs/context-source.js';
import { SshForwards, type SshSpec } from './inputs/ssh-agent.js';
import { parseNamedContexts, type NamedContext } from './inputs/named-contexts.js';
import { importOciLayout } from './inputs/oci-layout.js';
import { NamedContextImages } from './dispatch/named-context.js';
import { dispatchStage } from './dispatch/dispatch.js';
import { imageFromLoaded, isoTime, latestCreated, type ImageState } from './dispatch/image-state.js';
import type { BuildReporter, DispatchEnv } from './dispatch/stage.js';
import type { BuildSnapshotter, BuildStore } from './dispatch/seams.js';
import type { BuildNetwork } from './dispatch/run-step.js';
import type { SecretSource } from './dispatch/mounts.js';
import { checkEntitlements, releaseStaleStepNetworks, runSandboxOptions, StepNetworks } from './dispatch/run-network.js';
import type { HostDnsSource } from '../host/resolv-conf.js';
import { PhaseClock, timed, type BuildTrace } from '../phases.js';
import { tracedReporter } from './trace.js';

export type { BuildReporter, StepReporter } from './dispatch/stage.js';

export interface BuildOptions {
  /** Store root (`<root>/` OCI layout, `<root>/overlay`, `<root>/cache`). */
  root: string;
  /** Build context dir; undefined for a context-less build (Dockerfile from stdin). */
  contextDir?: string;
  /** Path of the Dockerfile (default `<context>/Dockerfile`). */
  dockerfile?: string;
  /** Dockerfile text (wins over `dockerfile`). */
  dockerfileText?: string;
  /** The context when it is not `contextDir`: stdin, a tar archive, git, a URL (inputs/context-source.ts). */
  contextSource?: ContextSource;
  /** The Dockerfile's path inside a context that is not a local dir (default `Dockerfile`). */
  dockerfileInContext?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  /**
   * Write each layer's blob at build time. By default a layer is only hashed and its blob written
   * when something needs the bytes (push, save, `--output`: store/lazy.ts), so a tool reading
   * the store root as an OCI layout (skopeo `oci:<root>`) sees a built image whole only then.
   */
  writeLayers?: boolean;
  /**
   * COPY, ADD and a WORKDIR's mkdir always write through a host mount of the step's rootfs, also
   * where writing its upper dir directly gives the same layer (dispatch/copy-direct.ts): the
   * reference that is tested against.
   */
  mountForCopy?: boolean;
  pull?: boolean;
  /** The snapshotter: overlay, or vfs (copies, no mount); default overlay where it mounts, else vfs. */
  storageDriver?: StorageDriver;
  /** How RUN steps are isolated: `oci`, `chroot` (unprivileged pods), or `auto` (the default: probed on the first RUN). */
  isolation?: IsolationChoice;
  secrets?: SecretSource[];
  /** `--ssh` agents: an id and a socket or key files (none: $SSH_AUTH_SOCK). */
  ssh?: SshSpec[];
  /** RUN's network: `default` (a namespace of its own on the bridge, the default), `none` or `host`. */
  network?: BuildNetwork;
  /** Entitlements (`network.host`, `security.insecure`) for RUN --network=host and --security=insecure. */
  allow?: string[];
  /** `--userns`: RUN steps in the host's user namespace (the default) or in a range of their own (`auto[:size=N]`, as root). */
  userns?: string;
  /** Where `--userns=auto` reads the subordinate ranges (default /etc/subuid and /etc/subgid). */
  subidFiles?: SubidFiles;
  /** `--add-host` entries for RUN's /etc/hosts (`name:ip`, `name=ip`, `name:host-gateway`). */
  addHosts?: string[];
  /** `--ulimit` values for RUN (`nofile=1024:2048`). */
  ulimits?: string[];
  /** Size of RUN's /dev/shm (`--shm-size`, `128m`). */
  shmSize?: string;
  /** Where the host's DNS configuration is read for RUN's resolv.conf (default: /etc/resolv.conf, and systemd-resolved's upstream list behind 127.0.0.53). */
  dns?: HostDnsSource;
  platform?: string;
  compression?: Compression;
  /** Manifest/config vocabulary of the result (default oci). */
  format?: 'oci' | 'docker';
  output?: { type: 'oci' | 'docker'; dest: string };
  iidfile?: string;
  /** `--label`s set on the image built (over the Dockerfile's). */
  labels?: Record<string, string>;
  /** `--build-context name=value` values (inputs/named-contexts.ts); relative paths against the working directory. */
  buildContexts?: string[];
  /** `--cache-from`: caches whose steps are reused when the local cache misses (remote-cache/). */
  cacheFrom?: CacheImport[];
  /** `--cache-to`: where the build's steps are written as a cache once the image is stored. */
  cacheTo?: CacheExport[];
  /** The environment registry credentials are read with (docker config, helpers); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Seconds since the epoch for `created`, history times and clamped layer mtimes. */
  sourceDateEpoch?: number;
  reporter?: BuildReporter;
  /** `--trace`: the build's steps and their phases are recorded in it (src/phases.ts). */
  trace?: BuildTrace;
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
  /** What BuildKit's Dockerfile checks found (printed as the build went; see src/builder/lint). */
  warnings: LintWarning[];
}

const NOOP_REPORTER: BuildReporter = { task: () => ({ log() {}, done() {}, fail() {} }) };

/** Where builds keep their scratch dirs, `<pid>-<rand>` each. */
function tmpBaseOf(root: string): string {
  return buildTmpDir(root);
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
    await releaseStaleStepNetworks(dir).catch(() => {});
    await removeScratch(dir);
  }
}

/**
 * Unmounts what is left mounted under a build's scratch dir and removes it, unless something
 * stays mounted. /proc/self/mountinfo is read once when nothing is mounted there (a cached
 * build's case), and not at all when the dir is gone.
 */
async function removeScratch(dir: string): Promise<void> {
  if (!(await lstat(dir).catch(() => undefined))) return;
  if ((await mountPointsUnder(dir).catch(() => [])).length) {
    await unmount(dir).catch(() => {});
    if ((await mountPointsUnder(dir).catch(() => [])).length) return;
  }
  await rm(dir, { recursive: true, force: true }).catch(() => {});
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  // Tmp dirs under the root become bind-mount sources in the sandbox, whose cwd is not ours:
  // a relative `--root` is resolved once, here.
  const o: BuildOptions = {
    ...opts, root: resolve(opts.root),
    ...(opts.trace ? { reporter: tracedReporter(opts.reporter ?? NOOP_REPORTER, opts.trace) } : {}),
  };
  // The build's scratch dir, made when first needed: a context from stdin, an archive, git or a
  // URL is materialized in it before the Dockerfile is read, and goes with it however the build ends.
  const tmpDir = join(tmpBaseOf(o.root), `${process.pid}-${randomBytes(4).toString('hex')}`);
  const newRoot = !(await stat(o.root).catch(() => undefined));
  // `--ssh` and `--build-context` values are checked (and key files read) before anything else is done.
  const contexts = await parseNamedContexts(o.buildContexts ?? [], process.cwd());
  const ssh = await SshForwards.open(o.ssh ?? [], process.env);
  try {
    const reporter = o.reporter ?? NOOP_REPORTER;
    // git over ssh uses the `default` agent: a socket as it is, keys served from the scratch dir.
    let sshAuthSock = ssh.hostSocket('default');
    if (sshAuthSock === undefined && ssh.has('default')) {
      await mkdir(tmpDir, { recursive: true });
      sshAuthSock = (await ssh.serve('default', tmpDir, 'ssh-default.sock')).path;
    }
    const inputs = await timed(o.trace?.clock, 'inputs', () => openInputs({
      ...o,
      task: (label) => reporter.task(label),
      ...(o.contextSource ? { contextSource: o.contextSource } : {}),
      ...(sshAuthSock ? { sshAuthSock } : {}),
    }, tmpDir));
    return await buildWith(o, inputs, tmpDir, { ssh, ...(sshAuthSock ? { sshAuthSock } : {}) }, contexts);
  } finally {
    await ssh.close();
    await removeScratch(tmpDir);
    // A build that could not start leaves no store behind: the dirs its scratch needed go (empty only).
    if (newRoot) for (let d = dirname(tmpDir); d.startsWith(o.root); d = dirname(d)) if (!(await rmdir(d).then(() => true, () => false))) break;
  }
}

async function buildWith(
  o: BuildOptions, inputs: BuildInputs, tmpDir: string, agents: Pick<DispatchEnv, 'ssh' | 'sshAuthSock'>, contexts: ReadonlyMap<string, NamedContext>,
): Promise<BuildResult> {
  const signal = o.signal;
  const reporter = o.reporter ?? NOOP_REPORTER;
  const dockerfilePath = inputs.dockerfilePath;
  const df = parseDockerfile(inputs.dockerfileText, inputs.dockerfileName ? { file: inputs.dockerfileName } : {});
  const escape = df.directives.escape;
  const platform = o.platform ? parsePlatformSpec(o.platform) : hostPlatformOf();
  const buildArgs = new Map(Object.entries(o.buildArgs ?? {}));
  // Meta ARGs, the target and the stages it needs (throws StageNotFoundError for an unknown target).
  const graph = buildStageGraph(df, { buildArgs, platform, ...(o.target !== undefined ? { target: o.target } : {}) });
  const metaArgs = graph.meta;
  const network = o.network ?? 'default';
  const runSandbox = runSandboxOptions({
    buildArgs,
    ...(o.allow ? { allow: o.allow } : {}),
    ...(o.addHosts ? { addHosts: o.addHosts } : {}),
    ...(o.ulimits ? { ulimits: o.ulimits } : {}),
    ...(o.shmSize !== undefined ? { shmSize: o.shmSize } : {}),
    ...(o.dns ? { dns: o.dns } : {}),
  });
  const userns = parseUsernsMode(o.userns);
  checkBuildUserns(userns);
  // What a RUN may not do without an entitlement fails the build before any step runs (BuildKit).
  let runs = false;
  for (const i of graph.needed) {
    for (const ins of df.stages[i]!.instructions) {
      if (ins.kind !== 'run') continue;
      checkEntitlements(ins, runSandbox.allow, network);
      runs = true;
    }
  }
  // A local context's .dockerignore, read once for lint and the context.
  const ignore = inputs.contextDir !== undefined && !inputs.materialized ? await loadIgnore(inputs.contextDir, inputs.dockerfilePath) : undefined;
  // Opened once the Dockerfile is known good: a build that cannot start leaves no store behind.
  const store = await OciStore.open(o.root);
  // `--pull` looks every base up again after pulling it: nothing lint found is reused.
  const bases = o.pull ? undefined : new BaseLookups(store);
  const warnings = await lintBuild(o, inputs, store, reporter, { df, graph }, ignore, bases).catch(async (e: unknown) => {
    await store.release().catch(() => {});
    throw e;
  });

  const tmpBase = tmpBaseOf(o.root);
  await removeStaleTmp(tmpBase);
  await mkdir(tmpDir, { recursive: true });
  const context = await timed(o.trace?.clock, 'context', () => openContext(inputs.contextDir ? resolve(inputs.contextDir) : undefined, {
    // A context made for this build has its own paths each time: no stat cache is kept for it.
    ...(inputs.materialized ? { ignoreFile: false } : { cacheDir: buildCacheDir(o.root) }),
    ...(ignore ? { loadedIgnore: ignore } : {}),
    ...(dockerfilePath ? { dockerfilePath } : {}),
  }));
  const cache = await BuildCache.open(store);
  const exchange = await CacheExchange.open(store, {
    ...(o.cacheFrom ? { cacheFrom: o.cacheFrom } : {}), ...(o.cacheTo ? { cacheTo: o.cacheTo } : {}),
    useImports: !o.noCache, ...(o.env ? { env: o.env } : {}), reporter, ...(signal ? { signal } : {}),
  });
  // RUN cache mounts travel with the cache when an export asks for them or an import holds some.
  const exportMounts = (o.cacheTo ?? []).some((e) => e.cacheMounts);
  const cacheMounts = openSharedCacheMounts({
    store, scratch: tmpDir, exporting: exportMounts,
    ...(exchange?.imported ? { imported: exchange.imported } : {}), say: warner(reporter), ...(signal ? { signal } : {}),
  });
  // Images of OCI layouts named as contexts are read into the store first (buildx resolves them up front).
  const preloaded = new Map<string, ImageState>();
  for (const c of contexts.values()) {
    if (c.source.kind === 'oci-layout') preloaded.set(c.name, imageFromLoaded(await importOciLayout(store, c.source.path, { ...c.source, platform })));
  }
  const named = new NamedContextImages(contexts, preloaded);
  let snP: Promise<BuildSnapshotter> | undefined;
  let isolationP: Promise<Isolation> | undefined;
  const results = new Map<Stage, Promise<ImageState>>();
  const networks = new StepNetworks(tmpDir, signal ? { signal } : {});
  const idRange = userns.kind === 'auto' ? new BuildIdRange(o.root, userns.size, { ...(o.subidFiles ? { files: o.subidFiles } : {}), ...(signal ? { signal } : {}) }) : undefined;

  const env: DispatchEnv = {
    store: buildStore(store, bases),
    root: o.root,
    // Opened by the first step that needs a snapshot: a fully cached build never does.
    snapshotter: () => {
      snP ??= openBuildSnapshotter(store, o.root, { ...(o.storageDriver ? { driver: o.storageDriver } : {}), ...(signal ? { signal } : {}) });
      return snP;
    },
    cache,
    ...(exchange?.imported ? { remoteCache: exchange.imported } : {}),
    ...(o.cacheTo?.length ? { stepLog: (e) => exchange?.steps.push(e) } : {}),
    ...(cacheMounts ? { cacheMounts } : {}),
    noCache: o.noCache ?? false,
    writeLayers: o.writeLayers ?? false,
    ...(o.mountForCopy ? { mountForCopy: true } : {}),
    pull: o.pull ?? false,
    context,
    tmpDir,
    ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    network,
    runSandbox,
    ...(idRange ? { idRange } : {}),
    // Found by the first RUN that runs, started at the first cache miss of a build that has one
    // (`warm`): a build without a RUN, or fully cached, never probes.
    isolation: () => {
      isolationP ??= chooseIsolation(o.isolation ?? 'auto', reporter, { tmpDir, cacheFile: isolationCacheFile(o.root), ...(signal ? { signal } : {}) });
      return isolationP;
    },
    // The RUN that awaits the probe handles its failure; this start only moves it earlier.
    ...(runs ? { warm: () => void env.isolation!().catch(() => {}) } : {}),
    networks,
    secrets: new Map((o.secrets ?? []).map((s) => [s.id, s])),
    ...agents,
    buildArgs,
    metaArgs,
    platform,
    escape,
    reporter,
    stage: (ref, from) => {
      const st = findStageRef(df.stages, ref, from.index, true);
      if (st) return runStage(st);
      // A named context stands where an image of its name would be (BuildKit).
      const nc = named.find(ref);
      return nc ? named.image(nc, env, from) : Promise.resolve(undefined);
    },
    isStage: (ref, from) => findStageRef(df.stages, ref, from.index, true) !== undefined || named.find(ref) !== undefined,
    stepLimit: pLimit(Math.max(1, o.parallelism ?? availableParallelism())),
    unpacking: new Map(),
    ...(signal ? { signal } : {}),
    pullImage: async (ref, platform) => {
      const task = reporter.task(`pull ${ref}`);
      try {
        // Imported here: loading the registry client cost every build ~5 ms (docs/architecture.md, Measurements).
        const { pullImage } = await import('../registry/pull.js');
        await pullImage(store, ref, { platform, ...(signal ? { signal } : {}) });
        task.done();
      } catch (e) {
        task.fail(e instanceof Error ? e.message : String(e));
        throw e;
      }
    },
  };
  const runStage = (st: Stage): Promise<ImageState> => {
    let p = results.get(st);
    if (!p) {
      // A stage named like a named context is replaced by it, and not built (BuildKit).
      const nc = st.name !== undefined ? named.find(st.name) : undefined;
      p = nc ? named.image(nc, env, st) : dispatchStage(env, st);
      p.catch(() => {});
      results.set(st, p);
    }
    return p;
  };

  const dispatchAll = async (): Promise<ImageState> => {
    for (let attempt = 1; ; attempt++) {
      try {
        // Start every stage the target needs right away, so independent ones run concurrently.
        for (const i of neededStages(graph, (i) => named.find(df.stages[i]!.name ?? '') !== undefined)) void runStage(df.stages[i]!);
        const img = await runStage(df.stages[graph.target]!);
        throwIfAborted(signal);
        await Promise.allSettled([...results.values()]);
        // The image is complete in the store: layers of imported hits that nothing unpacked come now.
        await exchange?.imported?.fetchLayers(img.layers);
        return img;
      } catch (e) {
        await Promise.allSettled([...results.values()]);
        // An imported layer that turned out broken once its content was needed: the stages start
        // again without it (the steps that ran meanwhile are local hits now).
        if (!isBrokenCacheEntry(e) || attempt >= 10 || signal?.aborted) throw e;
        results.clear();
        exchange?.restart();
      }
    }
  };

  try {
    const finalImage = await dispatchAll();

    const config: ImageConfig = JSON.parse(JSON.stringify(finalImage.config)) as ImageConfig;
    // `--label`: on the image built, over the Dockerfile's, with no history entry (BuildKit).
    if (o.labels && Object.keys(o.labels).length) (config.config ??= {}).Labels = { ...(config.config?.Labels ?? {}), ...o.labels };
    // Without SOURCE_DATE_EPOCH the image is as new as its newest step, so a fully cached
    // rebuild gives the same image id.
    config.created = o.sourceDateEpoch !== undefined ? isoTime(o.sourceDateEpoch) : latestCreated(finalImage) ?? isoTime();
    let layers = [...finalImage.layers];
    const compression = o.compression ?? 'none';
    if (compression !== 'none') {
      const task = reporter.task(`compressing ${layers.length} layers (${compression})`);
      // Traced, each layer's compression is shown in the task (they run at once: on lanes of their own).
      const clock = o.trace ? new PhaseClock() : undefined;
      if (clock) task.phases?.(clock);
      layers = await Promise.all(layers.map((l) => timed(clock, 'compress', () => ensureCompressed(store, l, compression, { ...(o.format ? { format: o.format } : {}), ...(signal ? { signal } : {}) }))));
      task.done();
    }
    // BuildKit's export step; the image id is printed once, by the caller (the CLI on stdout).
    const task = reporter.task('exporting to image');
    const descriptor = await writeImage(store, config, layers, o.format ? { format: o.format } : {});
    const manifest = JSON.parse((await store.read(descriptor)).toString('utf8')) as { config: Descriptor };
    const imageId = manifest.config.digest;
    const tags: string[] = [];
    for (const t of o.tags ?? []) {
      const full = formatReference(parseReference(t));
      // A rebuild that changed nothing leaves index.json alone (no lock, no rewrite).
      if ((await store.resolve(full))?.digest !== descriptor.digest) await store.tag(full, descriptor);
      tags.push(full);
      task.update?.(`naming to ${full} done`);
    }
    if (tags.length === 0) await store.keepUntagged(descriptor);
    await emitEvents(store.root, [
      { type: 'image', action: 'build', id: imageId, attributes: { name: tags[0] ? familiarReference(parseReference(tags[0])) : imageId } },
      ...tags.map((t) => ({ type: 'image' as const, action: 'tag', id: imageId, attributes: { name: familiarReference(parseReference(t)) } })),
    ]);
    task.done();
    if (o.iidfile) {
      await mkdirp(dirname(resolve(o.iidfile)));
      await writeFile(o.iidfile, imageId);
    }
    if (o.output) {
      const t = reporter.task(`exporting to ${o.output.type} ${o.output.dest}`);
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
    await timed(o.trace?.clock, 'context', () => context.stat.save());
    // After the image is stored: a failed export fails the build (unless ignore-error) with the image kept.
    if (o.cacheTo?.length) await exchange?.exportAll(store, config.rootfs.diff_ids, exportMounts && cacheMounts ? await cacheMounts.export(o.root) : []);
    return { descriptor, imageId, config, tags, warnings };
  } finally {
    await exchange?.dispose().catch(() => {});
    await Promise.allSettled([...results.values()]);
    // A failed build keeps the stat cache as it was (a saved one is closed already).
    context.stat.close();
    // Before the scratch dir goes: it records the step networks until they are removed.
    await networks.close().catch(() => {});
    await idRange?.release().catch(() => {});
    // The image is tagged (or the build failed): nothing needs protecting from prune any more.
    await store.release().catch(() => {});
    await removeScratch(tmpDir);
  }
}

/**
 * BuildKit's Dockerfile checks on the stages the build needs, printed as `WARN: Rule: message
 * (line N)` under a step of their own; under `error=true` a finding fails the build before any
 * step runs.
 */
async function lintBuild(
  o: BuildOptions, inputs: BuildInputs, store: OciStore, reporter: BuildReporter, parsed: { df: Dockerfile; graph: StageGraph }, ignore: LoadedIgnore | undefined,
  bases: BaseLookups | undefined,
): Promise<LintWarning[]> {
  const r = await lintDockerfile(inputs.dockerfileText, {
    ...(inputs.dockerfileName ? { file: inputs.dockerfileName } : {}),
    buildArgs: new Map(Object.entries(o.buildArgs ?? {})),
    scope: 'build',
    ...(o.target !== undefined ? { target: o.target } : {}),
    ...(o.platform !== undefined ? { platform: o.platform } : {}),
    baseImage: storeBaseImages(store, bases?.forLint),
    parsed,
    ...(ignore ? { ignore } : {}),
  });
  if (r.warnings.length > 0) {
    const t = reporter.task(`[internal] check ${inputs.dockerfileName ? inputs.dockerfileName.split('/').pop() : 'Dockerfile'}`);
    for (const w of r.warnings) (t.warn ?? t.log).call(t, shortForm(w));
    const v = violationOf(r);
    if (v) {
      t.fail(v.detail);
      throw v;
    }
    t.done();
  }
  return r.warnings;
}

/** The store as dispatch uses it (dispatch/seams.ts). */
function buildStore(store: OciStore, bases: BaseLookups | undefined): BuildStore {
  return {
    lease: store.lease,
    protect: (digests) => store.protect(digests),
    findImage: bases ? bases.forBuild : (ref, platform) => findImage(store, ref, { platform }),
    materialize: (d, o) => store.materialize(d, o),
  };
}

/** The stages the target needs, a stage replaced by a named context needing none of its own. */
function neededStages(graph: StageGraph, replaced: (i: number) => boolean): number[] {
  const seen = new Set<number>();
  const visit = (i: number): void => {
    if (seen.has(i)) return;
    seen.add(i);
    if (!replaced(i)) for (const d of graph.stages[i]!.stageDeps) visit(d);
  };
  visit(graph.target);
  return [...seen].sort((a, b) => a - b);
}
