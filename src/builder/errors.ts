import { fromSystemError, ImgbuildError, type ErrorCode } from '../errors.js';
import type { SourceRange } from './frontend/instructions.js';

/** `file:line:column` (1-based) for messages; `line:column` when the file is unknown. */
export function formatRange(r: SourceRange | undefined): string {
  if (!r) return '';
  const at = `${r.start.line}:${r.start.column}`;
  return r.file ? `${r.file}:${at}` : at;
}

/**
 * An error in a Dockerfile tied to where it happened (buildkit `parser.WithLocation`).
 * The message starts with `line:column` (or `file:line:column`) so it is useful as printed.
 */
export class BuildError extends ImgbuildError {
  /** The instruction keyword (upper case) the error belongs to, when there is one. */
  readonly instruction?: string;
  readonly range?: SourceRange;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(
    detail: string,
    o: { range?: SourceRange; instruction?: string; code?: ErrorCode; cause?: unknown } = {},
  ) {
    const where = formatRange(o.range);
    super(o.code ?? 'INVALID_ARGUMENT', where ? `${where}: ${detail}` : detail, { cause: o.cause });
    this.name = 'BuildError';
    this.detail = detail;
    if (o.range) this.range = o.range;
    if (o.instruction) this.instruction = o.instruction;
  }
}

/** Dockerfile syntax error (bad flag, bad JSON, unterminated heredoc, missing FROM, ...). */
export class DockerfileSyntaxError extends BuildError {
  constructor(detail: string, o: { range?: SourceRange; instruction?: string; cause?: unknown } = {}) {
    super(detail, o);
    this.name = 'DockerfileSyntaxError';
  }
}

/** An instruction keyword that does not exist, with the nearest real one when it is close. */
export class UnknownInstructionError extends BuildError {
  readonly keyword: string;
  readonly suggestion?: string;

  constructor(keyword: string, suggestion: string | undefined, range?: SourceRange) {
    const hint = suggestion ? ` (did you mean ${suggestion.toLowerCase()}?)` : '';
    super(`unknown instruction: ${keyword}${hint}`, { ...(range ? { range } : {}), instruction: keyword.toUpperCase() });
    this.name = 'UnknownInstructionError';
    this.keyword = keyword;
    if (suggestion) this.suggestion = suggestion;
  }
}

/**
 * Attaches a source range to any error (buildkit `WithLocation`). A BuildError that already has a
 * range is returned unchanged; anything else becomes a BuildError whose `cause` is the original, so
 * typed fields of the cause stay reachable while the message gains `line:column`.
 */
export function withLocation(err: unknown, range: SourceRange, instruction?: string): BuildError {
  if (err instanceof BuildError && err.range) return err;
  if (err instanceof BuildError) {
    return new BuildError(err.detail, {
      range,
      ...(instruction ?? err.instruction ? { instruction: instruction ?? err.instruction } : {}),
      code: err.code,
      cause: err,
    });
  }
  // A system error keeps the code of its errno and loses Node's doubled errno prefix.
  const e = err instanceof ImgbuildError ? err : fromSystemError(err) ?? err;
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof ImgbuildError ? e.code : 'INVALID_ARGUMENT';
  return new BuildError(msg, { range, ...(instruction ? { instruction } : {}), code, cause: err });
}
