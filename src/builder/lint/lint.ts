/**
 * BuildKit's Dockerfile checks (`docker build --check`, the `# check=` directive): reads the
 * Dockerfile, runs each rule family on it, and returns the findings in line order with the
 * configuration that applied. `build` prints them and goes on (or fails under `error=true`);
 * `build --check` prints them and builds nothing. Images are never pulled here: what lint knows of
 * a base image comes from the store through `baseImage`, and a stage on an image not there is not
 * judged by UndefinedVar (see dispatch.ts).
 */
import type { Platform } from '../../image/types.js';
import { BuildError } from '../errors.js';
import { parseAst, type Ast, type AstNode } from '../frontend/ast.js';
import { parseDockerfile } from '../frontend/parse.js';
import type { Dockerfile } from '../frontend/instructions.js';
import { buildStageGraph, resolveMetaArgs, type StageGraph } from '../frontend/stages.js';
import { formatPlatform, hostPlatformOf, normalizePlatform, parsePlatformSpec, predefinedPlatformArgs } from '../frontend/platform.js';
import type { IgnoreMatcher } from '../frontend/dockerignore.js';
import { Linter, resolveConfig, type LintConfig, type LintWarning } from './config.js';
import { lintCasing, lintContinuations, lintNode, lintStageNames } from './syntax.js';
import { lintFromLines } from './from.js';
import { lintStages, type BaseImageInfo, type DispatchLintInput } from './dispatch.js';
import { RULES } from './rules.js';

export type { LintWarning, LintConfig } from './config.js';

/** What lint may know of a base image in the store. */
export interface BaseImage extends BaseImageInfo {
  platform?: Platform;
}

export interface LintOptions {
  /** The Dockerfile's name as printed (`Dockerfile`). */
  file?: string;
  buildArgs?: ReadonlyMap<string, string>;
  /** The target platform (default: this host's). */
  platform?: string;
  target?: string;
  /**
   * `check` dispatches every stage (or the target's when one is named), as `--check` does;
   * `build` only the stages the target needs, as a build does.
   */
  scope: 'check' | 'build';
  /** A base image as the store has it; undefined when it is not there (nothing is pulled). */
  baseImage?: (ref: string, platform: Platform) => Promise<BaseImage | undefined>;
  /** The context's .dockerignore, for CopyIgnoredFile. */
  ignore?: IgnoreMatcher;
  /** The Dockerfile and stage graph a build has already made of `text` with these options. */
  parsed?: { df: Dockerfile; graph: StageGraph };
}

export interface LintResult {
  /** In line order (findings on one line in the order they were made). */
  warnings: LintWarning[];
  config: LintConfig;
  /** Why the Dockerfile cannot be built, when a check found that too (warnings before it stand). */
  error?: Error;
}

/** `error=true` and a rule fired: the build stops, naming the rules and the first finding's place. */
export class LintViolationError extends BuildError {
  readonly rules: string[];
  constructor(warnings: readonly LintWarning[]) {
    const rules = [...new Set(warnings.map((w) => w.rule))];
    super(`lint violation found for rules: ${rules.join(', ')}`, { code: 'FAILED_PRECONDITION', ...(warnings[0] ? { range: warnings[0].range } : {}) });
    this.name = 'LintViolationError';
    this.rules = rules;
  }
}

/** The violation a result stands for under `error=true`, if any. */
export function violationOf(r: LintResult): LintViolationError | undefined {
  return r.config.error && r.warnings.length > 0 ? new LintViolationError(r.warnings) : undefined;
}

function sorted(ws: readonly LintWarning[]): LintWarning[] {
  return ws.map((w, i) => ({ w, i })).sort((a, b) => a.w.range.start.line - b.w.range.start.line || a.i - b.i).map((x) => x.w);
}

export async function lintDockerfile(text: string, o: LintOptions): Promise<LintResult> {
  const buildArgs = o.buildArgs ?? new Map<string, string>();
  const file = o.file;
  let ast: Ast;
  try {
    ast = parseAst(text, file !== undefined ? { file } : {});
  } catch (e) {
    // The configuration is the directive's, which a broken file may not let us read.
    return { warnings: [], config: resolveConfig(undefined, buildArgs.get('BUILDKIT_DOCKERFILE_CHECK')), error: e as Error };
  }
  const config = resolveConfig(ast.directives.check, buildArgs.get('BUILDKIT_DOCKERFILE_CHECK'));
  const linter = new Linter(config);
  const done = (error?: unknown): LintResult => ({ warnings: sorted(linter.warnings), config, ...(error !== undefined ? { error: error as Error } : {}) });
  lintContinuations(linter, ast.warnings);

  let df: Dockerfile;
  try {
    df = o.parsed?.df ?? parseDockerfile(text, { ...(file !== undefined ? { file } : {}), duplicateStages: 'allow' });
  } catch (e) {
    // BuildKit reports what it read before the instruction it could not parse.
    const line = (e as BuildError).range?.start.line ?? Infinity;
    for (const n of ast.nodes) if (n.startLine < line) lintNode(linter, n, file);
    return done(e);
  }
  for (const n of ast.nodes) lintNode(linter, n, file);
  lintStageNames(linter, ast.nodes, file);
  lintCasing(linter, ast.nodes, file);

  const platform = o.platform ? parsePlatformSpec(o.platform) : hostPlatformOf();
  const platformArgs = predefinedPlatformArgs(platform);
  let graph: StageGraph;
  try {
    const meta = resolveMetaArgs(df, buildArgs, platformArgs);
    let defaults: Map<string, string> | undefined;
    try {
      defaults = resolveMetaArgs(df, new Map(), platformArgs);
    } catch {
      defaults = undefined;
    }
    lintFromLines(linter, df, { meta, defaults });
    graph = o.parsed?.graph ?? buildStageGraph(df, { buildArgs, platform, ...(o.target !== undefined ? { target: o.target } : {}) });
  } catch (e) {
    return done(e);
  }

  const stages = new Set(o.scope === 'check' && o.target === undefined ? df.stages.map((s) => s.index) : graph.needed);
  // A platform the build could not use is the check's error too (BuildKit's words).
  for (const rs of graph.stages) {
    if (rs.platform === undefined || !stages.has(rs.index)) continue;
    const raw = rs.stage.from.platform ?? '';
    if (rs.platform === '') return done(new BuildError(`empty platform value from expression ${raw}`, { range: rs.stage.from.range }));
    try {
      parsePlatformSpec(rs.platform);
    } catch (e) {
      return done(new BuildError(`failed to parse platform ${raw}: ${(e as Error).message}`, { range: rs.stage.from.range }));
    }
  }
  const bases: DispatchLintInput['bases'][number][] = [];
  for (const rs of graph.stages) {
    const b = rs.base;
    if (b.kind !== 'image') {
      bases.push(b);
      continue;
    }
    const want = rs.platform !== undefined ? safePlatform(rs.platform) ?? platform : platform;
    const info = stages.has(rs.index) ? await o.baseImage?.(b.ref, want).catch(() => undefined) : undefined;
    if (info?.platform) basePlatform(linter, rs.stage.from.range, b.ref, want, info.platform);
    bases.push(info ? { kind: 'image', info } : { kind: 'image' });
  }
  const byLine = new Map<number, AstNode>(ast.nodes.map((n) => [n.startLine, n]));
  lintStages(linter, {
    df,
    nodeAt: (line) => byLine.get(line),
    buildArgs,
    meta: graph.meta,
    bases,
    stages,
    ...(o.ignore ? { ignore: o.ignore } : {}),
  });
  return done();
}

function safePlatform(s: string): Platform | undefined {
  try {
    return parsePlatformSpec(s);
  } catch {
    return undefined;
  }
}

/** InvalidBaseImagePlatform: the image found is for another OS or architecture. */
function basePlatform(linter: Linter, range: LintWarning['range'], image: string, expected: Platform, actual: Platform): void {
  const e = normalizePlatform(expected);
  const a = normalizePlatform(actual);
  if (e.os === a.os && e.architecture === a.architecture) return;
  linter.report(RULES.InvalidBaseImagePlatform, range, RULES.InvalidBaseImagePlatform.format(image, formatPlatform(e), formatPlatform(a)));
}
