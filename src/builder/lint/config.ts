/**
 * What to check and what to do with a finding: BuildKit's `check` options (`skip=<rules>|all`,
 * `experimental=<rules>|all`, `error=true|false`) from the `# check=` parser directive, from the
 * `BUILDKIT_DOCKERFILE_CHECK` build argument (which replaces the directive, as in BuildKit), and
 * from a `# check=` comment right above one instruction (merged for that instruction only).
 */
import { BuildError } from '../errors.js';
import type { SourceRange } from '../frontend/instructions.js';
import type { LintRule } from './rules.js';
import { parseBool } from '../../strconv.js';

export interface LintConfig {
  skipAll: boolean;
  skip: ReadonlySet<string>;
  experimentalAll: boolean;
  experimental: ReadonlySet<string>;
  /** `error=true`: the build fails when any rule fired. */
  error: boolean;
}

export const DEFAULT_CONFIG: LintConfig = { skipAll: false, skip: new Set(), experimentalAll: false, experimental: new Set(), error: false };

/** An option string BuildKit refuses, as its `ParseLintOptions` words it. */
export class CheckOptionError extends BuildError {
  constructor(detail: string) {
    super(detail);
    this.name = 'CheckOptionError';
  }
}

const list = (v: string): string[] => v.split(',').map((r) => r.trim());

/** BuildKit `linter.ParseLintOptions`: `skip=A,B;experimental=C;error=true` (at most three parts). */
export function parseCheckOptions(text: string): LintConfig {
  const s = text.trim();
  if (s === '') return DEFAULT_CONFIG;
  const c = { skipAll: false, skip: new Set<string>(), experimentalAll: false, experimental: new Set<string>(), error: false };
  // Go's SplitN(s, ";", 3): a third part keeps any further `;`.
  const all = s.split(';');
  const parts = all.length > 3 ? [...all.slice(0, 2), all.slice(2).join(';')] : all;
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new CheckOptionError(`invalid check option ${JSON.stringify(p)}`);
    const k = p.slice(0, eq).trim();
    const v = p.slice(eq + 1).trim();
    if (k === 'skip') {
      if (v === 'all') c.skipAll = true;
      else c.skip = new Set(list(v));
    } else if (k === 'experimental') {
      if (v === 'all') c.experimentalAll = true;
      else c.experimental = new Set(list(v));
    } else if (k === 'error') {
      const b = parseBool(v);
      if (b === undefined) throw new CheckOptionError(`failed to parse check option ${JSON.stringify(p)}: strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`);
      c.error = b;
    } else {
      throw new CheckOptionError(`invalid check option ${JSON.stringify(k)}`);
    }
  }
  return c;
}

/** BuildKit `WithMergedConfig`: skips and experiments add up, `error` is not changed. */
export function mergeConfig(base: LintConfig, other: LintConfig): LintConfig {
  return {
    skipAll: base.skipAll || other.skipAll,
    skip: new Set([...base.skip, ...other.skip]),
    experimentalAll: base.experimentalAll || other.experimentalAll,
    experimental: new Set([...base.experimental, ...other.experimental]),
    error: base.error,
  };
}

/**
 * The configuration of a build: `BUILDKIT_DOCKERFILE_CHECK` when given, else the `# check=`
 * directive, else the defaults. A bad value fails the build as BuildKit does.
 */
export function resolveConfig(directive: string | undefined, buildArg: string | undefined): LintConfig {
  if (buildArg !== undefined) {
    try {
      return parseCheckOptions(buildArg);
    } catch (e) {
      throw new CheckOptionError(`failed to parse BUILDKIT_DOCKERFILE_CHECK: ${(e as Error).message}`);
    }
  }
  try {
    return parseCheckOptions(directive ?? '');
  } catch (e) {
    throw new CheckOptionError(`failed to parse check options: ${(e as Error).message}`);
  }
}

const DIRECTIVE_RE = /^\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

/** A `check=` comment among an instruction's comments, as BuildKit reads it (the value up to a space). */
export function configFromComments(base: LintConfig, comments: readonly string[]): LintConfig {
  for (const c of comments) {
    const m = DIRECTIVE_RE.exec(c);
    if (!m || m[1]!.toLowerCase() !== 'check') continue;
    try {
      return mergeConfig(base, parseCheckOptions(m[2]!.split(' ')[0]!));
    } catch {
      return base;
    }
  }
  return base;
}

/** One finding, as BuildKit's lint result carries it. */
export interface LintWarning {
  rule: string;
  description: string;
  url?: string;
  /** The message (BuildKit's `detail`). */
  detail: string;
  range: SourceRange;
}

/** Collects the findings of one lint run under a configuration (BuildKit `linter.Linter`). */
export class Linter {
  constructor(
    readonly config: LintConfig,
    private readonly found: LintWarning[] = [],
  ) {}

  get warnings(): readonly LintWarning[] {
    return this.found;
  }

  /** The same findings, under the configuration an instruction's `# check=` comment adds. */
  withComments(comments: readonly string[]): Linter {
    const c = configFromComments(this.config, comments);
    return c === this.config ? this : new Linter(c, this.found);
  }

  enabled(rule: LintRule): boolean {
    const c = this.config;
    if (rule.experimental) return c.experimentalAll || c.experimental.has(rule.name);
    return !c.skipAll && !c.skip.has(rule.name);
  }

  report(rule: LintRule, range: SourceRange, detail: string): void {
    if (!this.enabled(rule)) return;
    const w: LintWarning = { rule: rule.name, description: rule.description, detail, range };
    if (rule.url) w.url = rule.url;
    this.found.push(w);
  }
}
