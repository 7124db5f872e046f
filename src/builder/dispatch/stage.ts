/**
 * A stage being dispatched: what the build gives every stage (DispatchEnv), the stage's own
 * mutable state (StageCtx, its DraftImage included), and the helpers instructions share: the
 * Env list, history entries, the environment a step sees and the base of a step's cache key.
 */
import type { BuildIdRange } from './run-userns.js';
import type { PhaseClock } from '../../phases.js';
import type { LimitFunction } from 'p-limit';
import type { Descriptor, History, ImageConfig, Platform } from '../../image/types.js';
import type { Digest } from '../../image/digest.js';
import type { CommandLine, Instruction, Stage } from '../frontend/instructions.js';
import { lex, type EnvGetter, type EscapeChar } from '../frontend/shell-lex.js';
import { formatPlatform } from '../frontend/platform.js';
import type { StepKeyParts } from '../cache.js';
import type { BuildContext } from '../context.js';
import type { BuildNetwork } from './run-step.js';
import type { RunSandboxOptions, StepNetworks } from './run-network.js';
import type { SecretSource } from './mounts.js';
import type { SshForwards } from '../inputs/ssh-agent.js';
import type { BuildSnapshotter, BuildStore, CacheMountSeam, RemoteStepCache, StepCache, StepLogEntry } from './seams.js';
import type { Isolation } from '../../sandbox/spec.js';
import { DEFAULT_PATH, isoTime, type DraftImage, type ImageState } from './image-state.js';

/** Receives step progress (the CLI passes its Progress; structurally the same shape). */
export interface StepReporter {
  log(line: string): void;
  /** A status line of the step (`naming to ...`), when the reporter shows them. */
  update?(detail: string): void;
  /** A warning of the step, `WARN: <line>` as BuildKit prints a vertex's warnings. */
  warn?(line: string): void;
  done(note?: string): void;
  fail(msg?: string): void;
  /** The clock timing the step's phases, for a reporter that shows them (a `--trace` file). */
  phases?(clock: PhaseClock): void;
}
export interface BuildReporter {
  task(label: string): StepReporter;
  /** One warning line of the build, not tied to a step (a cache that cannot be used). */
  warn?(line: string): void;
}

/** Everything a stage's dispatch needs from the build (one per build, shared by stages). */
export interface DispatchEnv {
  store: BuildStore;
  /** Store root (RUN --mount=type=cache dirs live under it). */
  root: string;
  snapshotter(): Promise<BuildSnapshotter>;
  cache: StepCache;
  /** Caches imported with --cache-from, asked after `cache` misses (remote-cache/import.ts). */
  remoteCache?: RemoteStepCache;
  /** Told every layer step's result, hit or built (for --cache-to). */
  stepLog?(entry: StepLogEntry): void;
  noCache: boolean;
  /** Write layer blobs at build time, not when first needed (BuildOptions.writeLayers). */
  writeLayers?: boolean;
  /** COPY, ADD and WORKDIR never write the upper dir directly (BuildOptions.mountForCopy). */
  mountForCopy?: boolean;
  pull: boolean;
  context: BuildContext;
  /** Scratch dir of this build (mount points, per-step files); removed at the end. */
  tmpDir: string;
  sourceDateEpoch?: number;
  network: BuildNetwork;
  /** Entitlements, hostname, extra hosts, ulimits, /dev/shm size and DNS source of RUN steps. */
  runSandbox?: RunSandboxOptions;
  /** `--userns=auto`: the build's id range, which RUN steps run in (run-userns.ts). */
  idRange?: BuildIdRange;
  /** How RUN steps are isolated (settled by the first one that runs). */
  isolation?(): Promise<Isolation>;
  /**
   * Called by a step that missed the cache: starts in the background what a later RUN waits for
   * (the isolation probe, one helper start), so that it overlaps this step's own work.
   */
  warm?(): void;
  /** The bridged namespaces of RUN steps (one per step, removed by the build when it ends). */
  networks?: StepNetworks;
  secrets: Map<string, SecretSource>;
  /** The `--ssh` agents (RUN --mount=type=ssh). */
  ssh?: SshForwards;
  /** The ssh agent socket git uses for an ssh remote (`--ssh default`), when one was given. */
  sshAuthSock?: string;
  buildArgs: ReadonlyMap<string, string>;
  /** Values of the meta ARGs (before the first FROM), predefined platform args included. */
  metaArgs: ReadonlyMap<string, string>;
  platform: Platform;
  escape: EscapeChar;
  reporter: BuildReporter;
  /** The result of another stage by name or index (built on demand); undefined when no such stage. */
  stage(ref: string, from: Stage): Promise<ImageState | undefined>;
  /** Whether `ref` names a stage before `from` (without building it). */
  isStage?(ref: string, from: Stage): boolean;
  /** Limits concurrent layer steps across stages. */
  stepLimit: LimitFunction;
  /** Serialises unpacking of one chain id between concurrent stages. */
  unpacking: Map<string, Promise<unknown>>;
  signal?: AbortSignal;
  /** Pulls an image that is not in the store. */
  pullImage(ref: string, platform: Platform): Promise<void>;
  /** RUN cache mounts a build cache exports or imports (absent: neither). */
  cacheMounts?: CacheMountSeam;
}

/** Per-stage mutable dispatch state, the image's draft included (published when the stage ends). */
export interface StageCtx {
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
  /**
   * The dirs WORKDIRs named since the last layer step and the USER then in effect: each is made,
   * owned by that user (BuildKit), also when a later WORKDIR moved on (`WORKDIR /a` then `WORKDIR /`).
   */
  pendingWorkdirs?: { path: string; user?: string }[];
  step: number;
  steps: number;
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];

export function changeConfig(s: StageCtx, fn: (c: NonNullable<ImageConfig['config']>) => void, history?: History): void {
  fn((s.image.config.config ??= {}));
  if (history) addHistory(s, history);
}

function addHistory(s: StageCtx, h: History): void {
  (s.image.config.history ??= []).push(h);
  if (h.created && (s.latest === undefined || h.created > s.latest)) s.latest = h.created;
}

export function appendLayer(s: StageCtx, layer: Descriptor, diffId: Digest, chainId: Digest, history: History): void {
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
export function envIndex(list: readonly string[]): Map<string, number> {
  const at = new Map<string, number>();
  list.forEach((e, i) => at.set(envKey(e), i));
  return at;
}

/** The value of `key` in the stage's Env, found through its index. */
export function envGet(s: StageCtx, key: string): string | undefined {
  const i = s.envAt.get(key);
  if (i === undefined) return undefined;
  const e = envList(s.image)[i] as string;
  const eq = e.indexOf('=');
  return eq < 0 ? '' : e.slice(eq + 1);
}

/** Sets a variable where it is, or appends it (BuildKit's addEnv: a changed variable keeps its place). */
export function setEnv(s: StageCtx, c: NonNullable<ImageConfig['config']>, key: string, value: string): void {
  const list = (c.Env ??= []);
  const i = s.envAt.get(key);
  if (i !== undefined) {
    list[i] = `${key}=${value}`;
  } else {
    s.envAt.set(key, list.length);
    list.push(`${key}=${value}`);
  }
}

/** Variables as words of the stage see them: ENV first, then the stage's ARGs. */
export function getter(s: StageCtx): EnvGetter {
  return (name) => envGet(s, name) ?? s.args.get(name);
}

/** The environment a RUN sees: ENV, then ARGs not shadowed by ENV (BuildKit). */
export function runEnv(s: StageCtx): string[] {
  let env = envList(s.image).slice();
  if (envGet(s, 'PATH') === undefined) env = [DEFAULT_PATH, ...env];
  const extra: string[] = [];
  for (const [k, v] of s.args) if (envGet(s, k) === undefined) extra.push(`${k}=${v}`);
  return [...env, ...extra];
}

/**
 * Config-only steps take the time of the newest entry before them rather than the clock, so a
 * rebuild whose layer steps all hit the cache yields the very same image (and id).
 */
export function historyEntry(s: StageCtx, createdBy: string, empty: boolean): History {
  let when = isoTime(s.env.sourceDateEpoch);
  if (empty && s.env.sourceDateEpoch === undefined) when = s.latest ?? isoTime(0);
  return { created: when, created_by: createdBy, comment: 'imgbuild', ...(empty ? { empty_layer: true } : {}) };
}

export function shellOf(s: StageCtx): string[] {
  return s.image.config.config?.Shell?.length ? (s.image.config.config.Shell as string[]) : DEFAULT_SHELL;
}

/** A command line as it is run: exec form as is, shell form through the stage's SHELL. */
export function commandArgs(s: StageCtx, c: CommandLine): string[] {
  return c.form === 'exec' ? c.args : [...shellOf(s), c.command];
}

/** The first line of an instruction as written, shortened for a progress label. */
export function firstLine(ins: Instruction): string {
  return shorten(ins.original.split('\n')[0] ?? '');
}

function shorten(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/**
 * A step's title as BuildKit shows it: the instruction's first line with the stage's ENV and ARG
 * values expanded, quotes and unset variables left as written (its processCmdEnv).
 */
export function stepTitle(s: StageCtx, ins: Instruction): string {
  const text = ins.original.split('\n')[0] ?? '';
  try {
    return shorten(lex(text, getter(s), { escape: s.env.escape, rawQuotes: true, skipUnsetEnv: true }).result);
  } catch {
    return shorten(text);
  }
}

/** The parts of a step's cache key that come from the stage: parent chain, env, user, workdir. */
export function keyBase(s: StageCtx, instruction: unknown, extra: Partial<StepKeyParts> = {}): StepKeyParts {
  const c = s.image.config.config ?? {};
  return {
    parent: s.image.chainId ?? `empty:${formatPlatform({ os: s.image.config.os, architecture: s.image.config.architecture })}`,
    instruction,
    env: runEnv(s),
    ...(c.User ? { user: c.User } : {}),
    workdir: (c.WorkingDir || '/') + (s.workdirPending ? ` (create ${JSON.stringify(s.pendingWorkdirs ?? [])})` : ''),
    ...extra,
  };
}
