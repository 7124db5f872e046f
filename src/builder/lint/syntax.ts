/**
 * The rules BuildKit applies while it reads the Dockerfile, before any stage is resolved: empty
 * continuation lines, keyword casing (FROM's `AS`, every instruction against the majority), stage
 * names (casing, duplicates, reserved words), MAINTAINER, and the experimental description comments.
 * They need only the line-level AST, so they also run on a Dockerfile that fails to parse further
 * on (BuildKit reports what it read before the error).
 */
import { lineRange, type AstNode } from '../frontend/ast.js';
import type { SourceRange, Warning } from '../frontend/instructions.js';
import type { Linter } from './config.js';
import { RULES } from './rules.js';

export function nodeRange(n: AstNode, file: string | undefined): SourceRange {
  return lineRange(file, n.startLine, n.startColumn, n.endLine, n.endColumn);
}

/** NoEmptyContinuation from the parser's own warnings (the message is the rule's, not the parser's). */
export function lintContinuations(linter: Linter, astWarnings: readonly Warning[]): void {
  for (const w of astWarnings) {
    if (w.rule === 'NoEmptyContinuation' && w.range) linter.report(RULES.NoEmptyContinuation, w.range, RULES.NoEmptyContinuation.format());
  }
}

const lower = (s: string): boolean => s === s.toLowerCase();
const upper = (s: string): boolean => s === s.toUpperCase();

/** An ARG's keys, as BuildKit parses them (the word up to `=`). */
function argKeys(n: AstNode): string[] {
  return n.args.map((w) => (w.includes('=') ? w.slice(0, w.indexOf('=')) : w));
}

/** BuildKit `validateDefinitionDescription`: the last comment above must start with the name. */
function lintDescription(linter: Linter, instruction: string, keys: string[], n: AstNode, range: SourceRange): void {
  if (n.comments.length === 0 || keys.length === 0) return;
  const first = n.comments[n.comments.length - 1]!.split(' ')[0]!;
  if (keys.includes(first)) return;
  linter.report(RULES.InvalidDefinitionDescription, range, RULES.InvalidDefinitionDescription.format(instruction, keys.length > 1 ? '<arg_key>' : keys[0]!));
}

/** The rules BuildKit runs on each instruction as it parses it (`ParseInstructionWithLinter`). */
export function lintNode(base: Linter, n: AstNode, file: string | undefined): void {
  const linter = base.withComments(n.comments);
  const range = nodeRange(n, file);
  const kw = n.keyword.toLowerCase();
  if (kw === 'maintainer') linter.report(RULES.MaintainerDeprecated, range, RULES.MaintainerDeprecated.format());
  if (kw === 'arg') lintDescription(linter, 'ARG', argKeys(n), n, range);
  if (kw !== 'from') return;
  if (n.args.length === 3 && !lower(n.args[2]!)) linter.report(RULES.StageNameCasing, range, RULES.StageNameCasing.format(n.args[2]!));
  if (n.args.length >= 3) {
    // A FROM of mixed case is ConsistentInstructionCasing's to report, not this rule's.
    const as = n.args[1]!;
    const mismatch = lower(n.keyword) ? !lower(as) : upper(n.keyword) ? !upper(as) : false;
    if (mismatch) linter.report(RULES.FromAsCasing, range, RULES.FromAsCasing.format(n.keyword, as));
  }
  if (n.args.length === 3 && n.args[1]!.toLowerCase() === 'as') lintDescription(linter, 'FROM', [n.args[2]!.toLowerCase()], n, range);
}

/**
 * ConsistentInstructionCasing: instructions of the stages (not the ARGs before the first FROM)
 * are counted as lower or upper case; each that is mixed, or against the majority, is reported.
 */
export function lintCasing(linter: Linter, nodes: readonly AstNode[], file: string | undefined): void {
  const first = nodes.findIndex((n) => n.keyword.toLowerCase() === 'from');
  if (first < 0) return;
  const staged = nodes.slice(first);
  let lowerCount = 0;
  let upperCount = 0;
  for (const n of staged) {
    if (lower(n.keyword)) lowerCount++;
    else if (upper(n.keyword)) upperCount++;
  }
  const majorityLower = lowerCount > upperCount;
  for (const n of staged) {
    const casing = majorityLower && !lower(n.keyword) ? 'lowercase' : !majorityLower && !upper(n.keyword) ? 'uppercase' : '';
    if (casing) linter.report(RULES.ConsistentInstructionCasing, nodeRange(n, file), RULES.ConsistentInstructionCasing.format(n.keyword, casing));
  }
}

const RESERVED = new Set(['context', 'scratch']);

/** DuplicateStageName and ReservedStageName (BuildKit `validateStageNames`). */
export function lintStageNames(linter: Linter, nodes: readonly AstNode[], file: string | undefined): void {
  const seen = new Set<string>();
  for (const n of nodes) {
    if (n.keyword.toLowerCase() !== 'from' || n.args.length !== 3) continue;
    const name = n.args[2]!.toLowerCase();
    const range = nodeRange(n, file);
    if (RESERVED.has(name)) linter.report(RULES.ReservedStageName, range, RULES.ReservedStageName.format(name));
    if (seen.has(name)) linter.report(RULES.DuplicateStageName, range, RULES.DuplicateStageName.format(name));
    seen.add(name);
  }
}
