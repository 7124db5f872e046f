/**
 * The rules on FROM lines, run for every stage as BuildKit resolves them: variables a FROM uses
 * without a meta ARG declaring them, a base image name that the ARGs' defaults alone leave empty or
 * invalid, `--platform=$TARGETPLATFORM` (the default anyway) and a constant `--platform`.
 */
import { parseReference } from '../../image/reference.js';
import { parsePlatformSpec } from '../frontend/platform.js';
import type { Dockerfile } from '../frontend/instructions.js';
import { processWordWithMatches, type ProcessResult } from '../frontend/shell-lex.js';
import type { Linter } from './config.js';
import { RULES } from './rules.js';
import { searchName } from './suggest.js';

export interface FromArgs {
  /** Meta ARG values with the build's `--build-arg`s and the platform args. */
  meta: ReadonlyMap<string, string>;
  /** The same from the ARGs' defaults alone (no `--build-arg`). */
  defaults: ReadonlyMap<string, string> | undefined;
}

function expand(word: string, env: ReadonlyMap<string, string>, df: Dockerfile): ProcessResult | undefined {
  try {
    return processWordWithMatches(word, (n) => env.get(n), df.directives.escape);
  } catch {
    return undefined; // the build reports a word it cannot expand
  }
}

/** UndefinedArgInFrom: a variable neither set nor declared by a meta ARG. */
function undeclared(linter: Linter, r: ProcessResult, declared: ReadonlySet<string>, range: Parameters<Linter['report']>[1]): void {
  for (const name of r.unmatched) {
    if (declared.has(name)) continue;
    linter.report(RULES.UndefinedArgInFrom, range, RULES.UndefinedArgInFrom.format(name, searchName(name, [...declared], true)));
  }
}

export function lintFromLines(base: Linter, df: Dockerfile, args: FromArgs): void {
  const declared = new Set<string>([...args.meta.keys()]);
  for (const a of df.metaArgs) for (const d of a.args) declared.add(d.key);
  for (const st of df.stages) {
    const from = st.from;
    const linter = base.withComments(from.comments);
    const name = expand(from.image, args.meta, df);
    if (name) undeclared(linter, name, declared, from.range);
    if (from.platform !== undefined) {
      const p = expand(from.platform, args.meta, df);
      if (p) {
        undeclared(linter, p, declared, from.range);
        // Only `$TARGETPLATFORM` alone, giving the target platform itself.
        if (p.matched.size === 1 && p.unmatched.size === 0 && p.matched.has('TARGETPLATFORM') && p.result === args.meta.get('TARGETPLATFORM')) {
          linter.report(RULES.RedundantTargetPlatform, from.range, RULES.RedundantTargetPlatform.format(from.platform));
        }
        if (p.matched.size === 0 && p.unmatched.size === 0) constPlatform(linter, p.result, st.name ?? '', from.range);
      }
    }
  }
  if (args.defaults) {
    for (const st of df.stages) {
      const r = expand(st.from.image, args.defaults, df);
      if (!r) return;
      if (!validReference(r.result)) base.report(RULES.InvalidDefaultArgInFrom, st.from.range, RULES.InvalidDefaultArgInFrom.format(st.from.image));
    }
  }
}

/** A constant platform, unless the stage's name says which platform it is for (`AS build_amd64`). */
function constPlatform(linter: Linter, value: string, stageName: string, range: Parameters<Linter['report']>[1]): void {
  let os: string;
  let arch: string;
  try {
    const p = parsePlatformSpec(value);
    os = p.os;
    arch = p.architecture;
  } catch {
    return; // the build fails on it anyway
  }
  if (stageName.includes(os) || stageName.includes(arch)) return;
  linter.report(RULES.FromPlatformFlagConstDisallowed, range, RULES.FromPlatformFlagConstDisallowed.format(value));
}

function validReference(s: string): boolean {
  try {
    parseReference(s);
    return true;
  } catch {
    return false;
  }
}
