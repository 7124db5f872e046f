/**
 * The stage graph of a parsed Dockerfile (buildkit dockerfile2llb's first pass): meta ARGs resolved
 * from defaults and `--build-arg`, each stage's base (previous stage, image or scratch), its
 * dependencies through `FROM <stage>`, `COPY --from` and `RUN --mount from=`, the stages a target
 * needs, and topological levels so that independent stages can be built concurrently.
 */
import type { Platform } from '../../image/types.js';
import { BuildError } from '../errors.js';
import type { Dockerfile, Instruction, SourceRange, Stage } from './instructions.js';
import { hostPlatformOf, predefinedPlatformArgs } from './platform.js';
import { suggestWithin } from './flags.js';
import { processWord, ShellExpansionError } from './shell-lex.js';

export class StageNotFoundError extends BuildError {
  readonly target: string;
  constructor(target: string, known: string[]) {
    // BuildKit's hint when a name is close; else the names there are.
    const close = suggestWithin(target.toLowerCase(), known, 2);
    const hint = close ? ` (did you mean ${close}?)` : known.length ? ` (stages: ${known.join(', ')})` : '';
    super(`target stage ${JSON.stringify(target)} could not be found${hint}`, { code: 'NOT_FOUND' });
    this.name = 'StageNotFoundError';
    this.target = target;
  }
}

export type StageBase =
  | { kind: 'stage'; index: number }
  | { kind: 'image'; ref: string }
  | { kind: 'scratch' };

/** Something a stage reads from: an earlier stage or an external image (for COPY --from / mounts). */
export type StageSource = { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface StageDependency {
  source: StageSource;
  /** Which instruction made the reference. */
  via: 'from' | 'copy' | 'mount';
  range: SourceRange;
}

export interface ResolvedStage {
  stage: Stage;
  index: number;
  name?: string;
  /** The FROM image with meta ARGs expanded. */
  base: StageBase;
  /** FROM --platform with meta ARGs expanded, when given. */
  platform?: string;
  /** Every reference to another stage or image, in order. */
  deps: StageDependency[];
  /** Indices of the stages this one needs (deduplicated, ascending). */
  stageDeps: number[];
}

export interface StageGraph {
  /** Meta ARG values (platform args included) usable in FROM lines. */
  meta: Map<string, string>;
  stages: ResolvedStage[];
  /** Index of the target stage. */
  target: number;
  /** Indices of the stages needed for the target, ascending (target included). */
  needed: number[];
  /** Needed stages grouped by level: every stage's dependencies are in earlier levels. */
  levels: number[][];
  /** External images referenced by needed stages (FROM, COPY --from, mount from=). */
  images: string[];
}

export interface StageGraphOptions {
  /** `--build-arg` values. */
  buildArgs?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Stage name to build; the last stage when omitted. */
  target?: string;
  /** Target platform (for TARGET* args) and build platform (BUILD*). */
  platform?: Platform;
  buildPlatform?: Platform;
}

function toMap(m: StageGraphOptions['buildArgs']): Map<string, string> {
  if (!m) return new Map();
  if (m instanceof Map) return new Map(m);
  return new Map(Object.entries(m as Record<string, string>));
}

/**
 * Values of the ARGs declared before the first FROM: a `--build-arg` wins over the default, and a
 * default is expanded with the platform args and the meta ARGs above it. An ARG with neither stays
 * unset. Only declared names (and the platform args) are visible to FROM lines, as in BuildKit.
 */
export function resolveMetaArgs(df: Dockerfile, buildArgs: ReadonlyMap<string, string>, platformArgs: ReadonlyMap<string, string>): Map<string, string> {
  const meta = new Map(platformArgs);
  const escape = df.directives.escape;
  for (const a of df.metaArgs) {
    for (const d of a.args) {
      const given = buildArgs.get(d.key);
      let v: string | undefined = given;
      if (v === undefined && d.value !== undefined) {
        try {
          v = processWord(d.value, (n) => meta.get(n), escape);
        } catch (e) {
          throw locate(e, a.range);
        }
      }
      if (v !== undefined) meta.set(d.key, v);
      // A predefined ARG declared without a value keeps its value (BuildKit).
      else if (!platformArgs.has(d.key)) meta.delete(d.key);
    }
  }
  return meta;
}

function locate(e: unknown, range: SourceRange): BuildError {
  if (e instanceof ShellExpansionError) return new BuildError(e.message, { range, cause: e });
  if (e instanceof BuildError) return e;
  return new BuildError(e instanceof Error ? e.message : String(e), { range, cause: e });
}

/** Finds an earlier stage by name (case-insensitive) or, when `allowIndex`, by its number. */
export function findStageRef(stages: readonly Stage[], ref: string, before: number, allowIndex: boolean): Stage | undefined {
  if (allowIndex && /^\d+$/.test(ref)) {
    const i = Number(ref);
    return i < before ? stages[i] : undefined;
  }
  const lower = ref.toLowerCase();
  for (let i = 0; i < before; i++) if (stages[i]!.name === lower) return stages[i];
  return undefined;
}

/** Resolves the stage graph for a target (see the module comment). */
export function buildStageGraph(df: Dockerfile, o: StageGraphOptions = {}): StageGraph {
  const escape = df.directives.escape;
  const buildArgs = toMap(o.buildArgs);
  const buildPlatform = o.buildPlatform ?? hostPlatformOf();
  let target = df.stages.length - 1;
  if (o.target !== undefined && o.target !== '') {
    const s = df.stages.find((x) => x.name === o.target!.toLowerCase());
    if (!s) throw new StageNotFoundError(o.target, df.stages.flatMap((x) => (x.name ? [x.name] : [])));
    target = s.index;
  }
  const platformArgs = predefinedPlatformArgs(o.platform ?? buildPlatform, buildPlatform);
  // TARGETSTAGE: the target as asked for, else the last stage's name, else "default" (BuildKit).
  platformArgs.set('TARGETSTAGE', o.target || (df.stages[target]?.name ?? 'default'));
  const meta = resolveMetaArgs(df, buildArgs, platformArgs);
  const expandMeta = (w: string, range: SourceRange, env: ReadonlyMap<string, string> = meta): string => {
    try {
      return processWord(w, (n) => env.get(n), escape);
    } catch (e) {
      throw locate(e, range);
    }
  };

  const resolved: ResolvedStage[] = df.stages.map((stage) => {
    const from = stage.from;
    const image = expandMeta(from.image, from.range);
    if (image === '') {
      throw new BuildError(`base name (${from.image}) should not be blank`, { range: from.range, instruction: 'FROM' });
    }
    const deps: StageDependency[] = [];
    let base: StageBase;
    const prev = findStageRef(df.stages, image, stage.index, false);
    if (prev) {
      base = { kind: 'stage', index: prev.index };
      deps.push({ source: { kind: 'stage', index: prev.index }, via: 'from', range: from.range });
    } else if (image.toLowerCase() === 'scratch') {
      base = { kind: 'scratch' };
    } else {
      base = { kind: 'image', ref: image };
      deps.push({ source: { kind: 'image', ref: image }, via: 'from', range: from.range });
    }

    // COPY --from / from= see the meta ARGs (as dispatch expands them) and stage-local ARGs
    // (re-declared meta ARGs or new ones), the latter winning.
    const local = new Map<string, string>(meta);
    const refer = (ref: string, via: 'copy' | 'mount', ins: Instruction): void => {
      const name = expandMeta(ref, ins.range, local);
      // A variable no ARG in scope gives a value: BuildKit allows none there, and says so.
      if (name === '' && ref.includes('$')) {
        throw new BuildError(via === 'copy'
          ? 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround'
          : "'from' doesn't support variable expansion, define alias stage instead", { range: ins.range });
      }
      if (name === '') throw new BuildError(`${via === 'copy' ? '--from' : 'mount from='} value ${JSON.stringify(ref)} is empty after expansion`, { range: ins.range });
      if (/^\d+$/.test(name)) {
        const i = Number(name);
        if (i >= stage.index) {
          throw new BuildError(`invalid from flag value ${name}: refers to current or future build stage`, { range: ins.range });
        }
        deps.push({ source: { kind: 'stage', index: i }, via, range: ins.range });
        return;
      }
      const s = findStageRef(df.stages, name, stage.index, false);
      // BuildKit refuses a COPY from a later stage rather than pulling an image of that name.
      const later = s || via !== 'copy' ? undefined : df.stages.slice(stage.index + 1).find((x) => x.name === name.toLowerCase());
      if (later) {
        throw new BuildError(`cannot copy from stage ${JSON.stringify(name)}, it needs to be defined before current stage ${JSON.stringify(stage.name ?? `stage-${stage.index}`)}`, { range: ins.range });
      }
      deps.push({ source: s ? { kind: 'stage', index: s.index } : { kind: 'image', ref: name }, via, range: ins.range });
    };
    for (const ins of stage.instructions) {
      if (ins.kind === 'arg') {
        for (const d of ins.args) {
          const v =
            buildArgs.get(d.key) ??
            (d.value !== undefined ? expandMeta(d.value, ins.range, local) : meta.get(d.key));
          if (v !== undefined) local.set(d.key, v);
        }
      } else if (ins.kind === 'copy' && ins.from !== undefined) {
        refer(ins.from, 'copy', ins);
      } else if (ins.kind === 'run') {
        for (const m of ins.mounts) {
          if ((m.type === 'bind' || m.type === 'cache') && m.from !== undefined) refer(m.from, 'mount', ins);
        }
      }
    }
    const stageDeps = [...new Set(deps.flatMap((d) => (d.source.kind === 'stage' ? [d.source.index] : [])))].sort((a, b) => a - b);
    const r: ResolvedStage = { stage, index: stage.index, base, deps, stageDeps };
    if (stage.name !== undefined) r.name = stage.name;
    if (from.platform !== undefined) r.platform = expandMeta(from.platform, from.range);
    return r;
  });

  const neededSet = new Set<number>();
  const visit = (i: number): void => {
    if (neededSet.has(i)) return;
    neededSet.add(i);
    for (const d of resolved[i]!.stageDeps) visit(d);
  };
  visit(target);
  const needed = [...neededSet].sort((a, b) => a - b);

  // Dependencies always point to earlier stages, so one pass in index order gives the levels.
  const level = new Map<number, number>();
  for (const i of needed) {
    const deps = resolved[i]!.stageDeps;
    level.set(i, deps.length === 0 ? 0 : 1 + Math.max(...deps.map((d) => level.get(d)!)));
  }
  const levels: number[][] = [];
  for (const i of needed) {
    const l = level.get(i)!;
    (levels[l] ??= []).push(i);
  }

  const images: string[] = [];
  for (const i of needed) {
    for (const d of resolved[i]!.deps) if (d.source.kind === 'image' && !images.includes(d.source.ref)) images.push(d.source.ref);
  }
  return { meta, stages: resolved, target, needed, levels, images };
}
