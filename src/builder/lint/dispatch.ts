/**
 * The rules BuildKit applies as it dispatches each instruction of a stage, with what the stage
 * knows at that point: the variables set by the base image, ARG and ENV (UndefinedVar), whether a
 * SHELL was set (JSONArgsRecommended), whether an absolute WORKDIR came first
 * (WorkdirRelativePath), which of CMD, ENTRYPOINT and HEALTHCHECK already appeared
 * (MultipleInstructionsDisallowed), and the words as expanded (LegacyKeyValueFormat,
 * SecretsUsedInArgOrEnv, the EXPOSE rules, CopyIgnoredFile). A stage on another stage starts from
 * that stage's state, as in BuildKit.
 */
import type { AstNode } from '../frontend/ast.js';
import type { Dockerfile, Instruction, SourceRange, Stage } from '../frontend/instructions.js';
import { lex, type EscapeChar } from '../frontend/shell-lex.js';
import type { IgnoreMatcher } from '../frontend/dockerignore.js';
import type { Linter } from './config.js';
import { RULES } from './rules.js';
import { searchName } from './suggest.js';
import { lintExpose } from './expose.js';
import { lintSecretKey } from './secrets.js';
import { lintCopySources } from './copy-ignored.js';

/** What lint knows of a base image: its environment and whether it sets a SHELL. */
export interface BaseImageInfo {
  env: readonly string[];
  shell: boolean;
}

/** A stage's state between instructions (BuildKit's dispatchState, the parts the rules read). */
interface StageState {
  /** Variables set, in the order they were set; undefined when the base image is not known here. */
  env: Map<string, string> | undefined;
  /** ARG names declared so far (their use is never undefined, even without a value). */
  args: Set<string>;
  shell: boolean;
  workdirSet: boolean;
}

/** Variables BuildKit never puts in a stage's environment. */
const NON_ENV_ARGS = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);
/** BuildKit sets PATH in every Linux stage whose image does not. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface DispatchLintInput {
  df: Dockerfile;
  /** AST nodes by their first line, for what the typed instructions do not keep (legacy ENV form). */
  nodeAt: (line: number) => AstNode | undefined;
  /** `--build-arg` values. */
  buildArgs: ReadonlyMap<string, string>;
  /** Meta ARG values (with build args and platform args). */
  meta: ReadonlyMap<string, string>;
  /** Each stage's base: another stage's index, scratch, or an image (its info when known here). */
  bases: ReadonlyArray<{ kind: 'stage'; index: number } | { kind: 'scratch' } | { kind: 'image'; info?: BaseImageInfo }>;
  /** The stages to dispatch (a build dispatches the ones its target needs; a check all of them). */
  stages: ReadonlySet<number>;
  ignore?: IgnoreMatcher;
}

function envFromList(list: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of list) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  if (!m.has('PATH')) m.set('PATH', DEFAULT_PATH);
  return m;
}

function copyState(s: StageState): StageState {
  return { env: s.env ? new Map(s.env) : undefined, args: new Set(s.args), shell: s.shell, workdirSet: s.workdirSet };
}

/** Dispatches the stages in order (a base stage always comes before the stages on it). */
export function lintStages(base: Linter, input: DispatchLintInput): void {
  const finals = new Map<number, StageState>();
  for (const st of input.df.stages) {
    if (!input.stages.has(st.index)) continue;
    const b = input.bases[st.index];
    let state: StageState;
    if (b?.kind === 'stage') {
      const from = finals.get(b.index);
      state = from ? copyState(from) : { env: undefined, args: new Set(), shell: false, workdirSet: false };
    } else if (b?.kind === 'image') {
      state = { env: b.info ? envFromList(b.info.env) : undefined, args: new Set(), shell: b.info?.shell ?? false, workdirSet: false };
    } else {
      state = { env: envFromList([]), args: new Set(), shell: false, workdirSet: false };
    }
    finals.set(st.index, dispatchStage(base, input, st, state));
  }
}

function dispatchStage(base: Linter, input: DispatchLintInput, st: Stage, s: StageState): StageState {
  const escape = input.df.directives.escape;
  // Where CMD, ENTRYPOINT and HEALTHCHECK last appeared in this stage (not inherited).
  const seen = new Map<string, SourceRange>();
  for (const ins of st.instructions) {
    const linter = base.withComments(ins.comments);
    const ex = expander(linter, s, ins.range, escape);
    switch (ins.kind) {
      case 'env': {
        legacyForm(linter, input, ins, 'ENV');
        const pairs = ins.pairs.map((p) => ({ key: ex(p.key), value: ex(p.value) }));
        for (const p of pairs) {
          lintSecretKey(linter, 'ENV', p.key, ins.range);
          s.env?.set(p.key, p.value);
        }
        break;
      }
      case 'label':
        legacyForm(linter, input, ins, 'LABEL');
        for (const p of ins.pairs) {
          ex(p.key);
          ex(p.value);
        }
        break;
      case 'arg':
        for (const a of ins.args) {
          lintSecretKey(linter, 'ARG', a.key, ins.range);
          let v = input.buildArgs.get(a.key);
          if (v === undefined && a.value !== undefined) v = ex(a.value);
          if (v === undefined && a.value === undefined) v = input.meta.get(a.key);
          if (v !== undefined && !NON_ENV_ARGS.has(a.key)) s.env?.set(a.key, v);
          s.args.add(a.key);
        }
        break;
      case 'workdir': {
        const path = ex(ins.path);
        // Only the first WORKDIR of the build counts: later relative ones are fixed by fixing it.
        if (!s.workdirSet && !path.startsWith('/')) linter.report(RULES.WorkdirRelativePath, ins.range, RULES.WorkdirRelativePath.format(path));
        s.workdirSet = true;
        break;
      }
      case 'user':
        ex(ins.user);
        break;
      case 'volume':
        ins.paths.forEach(ex);
        break;
      case 'stopsignal':
        ex(ins.signal);
        break;
      case 'shell':
        s.shell = true;
        break;
      case 'cmd':
      case 'entrypoint':
      case 'healthcheck': {
        const name = ins.kind.toUpperCase();
        const prev = seen.get(name);
        // The earlier one is reported: it is the one that has no effect.
        if (prev) linter.report(RULES.MultipleInstructionsDisallowed, prev, RULES.MultipleInstructionsDisallowed.format(name));
        seen.set(name, ins.range);
        if (ins.kind !== 'healthcheck' && ins.command.form === 'shell' && !s.shell) {
          linter.report(RULES.JSONArgsRecommended, ins.range, RULES.JSONArgsRecommended.format(name));
        }
        break;
      }
      case 'expose':
        lintExpose(linter, ins.ports, s.env, ins.range, escape);
        break;
      case 'run':
        for (const m of ins.mounts) {
          if (m.spec !== undefined) ex(m.spec);
          else {
            for (const k of ['target', 'id', 'from', 'source', 'env']) {
              const v = (m as unknown as Record<string, unknown>)[k];
              if (typeof v === 'string') ex(v);
            }
          }
        }
        break;
      case 'copy':
      case 'add': {
        if (ins.chown !== undefined) ex(ins.chown);
        if (ins.chmod !== undefined) ex(ins.chmod);
        if (ins.kind === 'add' && ins.checksum !== undefined) ex(ins.checksum);
        const heredocs = new Set(ins.heredocs.map((h) => h.name));
        const sources = ins.sources.filter((w) => !(w.startsWith('<<') && heredocs.size > 0)).map(ex);
        ex(ins.dest);
        if (input.ignore && (ins.kind === 'add' || ins.from === undefined)) lintCopySources(linter, input.ignore, ins.kind, sources, ins.range);
        break;
      }
      default:
        break;
    }
  }
  return s;
}

/** LegacyKeyValueFormat: `ENV key value` (the line parser marks it with an empty separator). */
function legacyForm(linter: Linter, input: DispatchLintInput, ins: Instruction, name: string): void {
  const n = input.nodeAt(ins.range.start.line);
  if (n && n.args.length === 3 && n.args[2] === '') linter.report(RULES.LegacyKeyValueFormat, ins.range, RULES.LegacyKeyValueFormat.format(name));
}

/**
 * Expands a word with the stage's variables and reports the ones that are unset and not declared
 * by an ARG (UndefinedVar). When the base image is not known, nothing is reported: any name may be
 * the image's.
 */
function expander(linter: Linter, s: StageState, range: SourceRange, escape: EscapeChar): (w: string) => string {
  return (word) => {
    const env = s.env;
    let r;
    try {
      r = lex(word, (n) => env?.get(n), { escape });
    } catch {
      return word;
    }
    if (!env) return r.result;
    for (const name of r.unmatched) {
      if (s.args.has(name) || NON_ENV_ARGS.has(name)) continue;
      linter.report(RULES.UndefinedVar, range, RULES.UndefinedVar.format(name, searchName(name, [...env.keys()], true)));
    }
    return r.result;
  };
}
