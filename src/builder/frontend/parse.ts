/**
 * Dockerfile → typed instructions, in two steps as buildkit does:
 *
 *  1. `parseAst()` — the line-level parser (buildkit `frontend/dockerfile/parser`): parser directives,
 *     comments, line continuations, empty-continuation warnings, builder flags, per-keyword argument
 *     splitting (JSON form or not) and heredoc bodies. Its output is compared one-to-one with
 *     buildkit's `testfiles` ASTs in the tests.
 *  2. `parseDockerfile()` — each AST node becomes a typed `Instruction` (buildkit `instructions`):
 *     flags are checked per keyword, RUN mounts are parsed, and instructions are grouped into
 *     meta ARGs and stages. Nothing is expanded here (expansion needs the dispatch-time env).
 *
 * Why not dockerfile-ast for step 1: measured against the conformance data, dockerfile-ast 0.7.1
 * takes heredoc bodies for instructions that cannot have them (`USER <<X`), ignores `3<<EOF`,
 * `<< EOF` and partly quoted delimiters (`<<eo'f'`), splits `CMD --flag [..]` as arguments, does
 * not stop flags at `--`, and treats `\\` at the end of a line as a continuation. Those are the
 * places where a build would differ from Docker's, so this layer follows buildkit's algorithm.
 */
import type {
  Add,
  Arg,
  ArgDef,
  CacheSharing,
  CommandLine,
  Copy,
  Directives,
  Dockerfile,
  From,
  Heredoc,
  Instruction,
  KeyValue,
  RawFlag,
  RunMount,
  SourceRange,
  Stage,
  Warning,
} from './instructions.js';
import { BuildError, DockerfileSyntaxError, UnknownInstructionError } from '../errors.js';
import { isSpace, lex } from './shell-lex.js';

// ---------------------------------------------------------------------------------------------
// Step 1: the line-level AST
// ---------------------------------------------------------------------------------------------

/** One parsed line (buildkit `parser.Node`), before any per-instruction validation. */
export interface AstNode {
  /** The keyword as written (`run`, `RUN`, ...). */
  keyword: string;
  /** Builder flags as written after the keyword (`--from=x`), quotes removed; `--` ends them. */
  flags: string[];
  /** Arguments split as buildkit does for this keyword (empty for ONBUILD: see `trigger`). */
  args: string[];
  /** ONBUILD's parsed trigger. */
  trigger?: AstNode;
  /** Arguments were a JSON array. */
  jsonForm: boolean;
  /** 1-based first and last source line (heredoc bodies included). */
  startLine: number;
  endLine: number;
  /** Column (1-based) of the keyword on startLine. */
  startColumn: number;
  /** Column just past the last character of endLine. */
  endColumn: number;
  /** The logical line: continuations joined, comments and heredoc bodies left out. */
  original: string;
  /** Heredocs with their raw bodies (not chomped). */
  heredocs: Heredoc[];
  /** Comment lines right above the instruction. */
  comments: string[];
  /** Where each piece of `original` came from (continuation lines), to map offsets to line:column. */
  segments: { offset: number; line: number; column: number }[];
}

export interface Ast {
  directives: Directives;
  nodes: AstNode[];
  warnings: Warning[];
}

const DIRECTIVE_RE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const VALID_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const WS_RE = /[\t\v\f\r ]+/;
const HEREDOC_RE = /^(\d*)<<(-?)([^<]*)$/;
const HEREDOC_KEYWORDS = new Set(['run', 'copy', 'add']);

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}
function trimLeadingWhitespace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s.codePointAt(i)!)) i += s.codePointAt(i)! > 0xffff ? 2 : 1;
  return s.slice(i);
}
function isComment(s: string): boolean {
  return trimLeadingWhitespace(s).startsWith('#');
}
function isEmptyContinuationLine(s: string): boolean {
  return trimLeadingWhitespace(trimNewline(s)).length === 0;
}
/** Go strings.TrimSpace. */
function trimSpace(s: string): string {
  const cps = Array.from(s);
  let a = 0;
  let b = cps.length;
  while (a < b && isSpace(cps[a]!.codePointAt(0)!)) a++;
  while (b > a && isSpace(cps[b - 1]!.codePointAt(0)!)) b--;
  return cps.slice(a, b).join('');
}

/** Source lines as buildkit's scanner yields them: each with its `\n` (the last maybe without). */
function scanLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
}

class DirectiveState {
  escape: '\\' | '`' = '\\';
  private continuation = continuationRe('\\');
  private done = false;
  private readonly seen = new Set<string>();
  readonly values: Directives = { escape: '\\' };

  /** Looks at a (newline-trimmed) line for `# name=value`; returns true when it was a directive. */
  possibleDirective(line: string): boolean {
    if (this.done) return false;
    if (!line.startsWith('#')) {
      this.done = true;
      return false;
    }
    const m = DIRECTIVE_RE.exec(trimLeadingWhitespace(line.slice(1)));
    const name = m?.[1]?.toLowerCase();
    if (!m || !name || !VALID_DIRECTIVES.has(name)) {
      this.done = true;
      return false;
    }
    if (this.seen.has(name)) throw new LineError(`only one ${name} parser directive can be used`);
    this.seen.add(name);
    const value = m[2]!;
    if (name === 'escape') {
      if (value !== '`' && value !== '\\') {
        throw new LineError(`invalid escape token '${value}' does not match \` or \\`);
      }
      this.escape = value;
      this.values.escape = value;
      this.continuation = continuationRe(value);
    } else if (name === 'syntax') {
      this.values.syntax = value;
    } else {
      this.values.check = value;
    }
    return true;
  }

  /** Strips a trailing continuation escape (not one that is itself escaped). */
  trimContinuation(line: string): [string, boolean] {
    if (this.continuation.test(line)) return [line.replace(this.continuation, '$1'), false];
    return [line, true];
  }
}

function continuationRe(esc: string): RegExp {
  const e = esc === '\\' ? '\\\\' : esc;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

/** An error at the current line during AST parsing; gets its range attached by parseAst. */
class LineError extends Error {}

/** buildkit `parseWords`: splits on whitespace, keeping quotes and escapes in the words. */
function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  const cps = Array.from(rest);
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOK = false;
  let word = '';
  for (let pos = 0; pos <= cps.length; pos++) {
    let ch = pos < cps.length ? cps[pos]! : '';
    if (phase === 'spaces') {
      if (pos === cps.length) break;
      if (isSpace(ch.codePointAt(0)!)) continue;
      phase = 'word';
    }
    if (pos === cps.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch.codePointAt(0)!)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (pos + 1 === cps.length) continue; // an escape at the very end is dropped
        word += ch;
        pos++;
        ch = cps[pos]!;
      }
      word += ch;
      continue;
    }
    // in quote
    if (ch === quote) phase = 'word';
    if (ch === escape && quote !== "'") {
      if (pos + 1 === cps.length) {
        phase = 'word';
        continue;
      }
      pos++;
      word += ch;
      ch = cps[pos]!;
    }
    word += ch;
  }
  return words;
}

/** buildkit `extractBuilderFlags`: leading `--flag[=value]` words; returns [rest, flags]. */
function extractBuilderFlags(line: string): [string, string[]] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isSpace(ch.charCodeAt(0))) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return [line.slice(pos), words];
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch.charCodeAt(0))) {
        phase = 'spaces';
        if (word === '--') return [line.slice(pos), words];
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return ['', words];
}

class NotStringArrayError extends LineError {
  constructor() {
    super('when using JSON array syntax, arrays must be comprised of strings only');
  }
}

/** Strict JSON array of strings, or undefined when the text is not a JSON array at all. */
function parseJsonArray(rest: string): string[] | undefined {
  const t = trimLeadingWhitespace(rest);
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  if (!v.every((x) => typeof x === 'string')) throw new NotStringArrayError();
  return v as string[];
}

function splitWhitespace(rest: string): string[] {
  return rest === '' ? [] : rest.split(WS_RE);
}

interface Split {
  args: string[];
  json: boolean;
  trigger?: AstNode;
}

/** Per-keyword argument splitting (buildkit's dispatch table of line parsers). */
function splitArgs(keyword: string, rest: string, d: DirectiveState): Split {
  const none: Split = { args: [], json: false };
  switch (keyword) {
    case 'add':
    case 'copy':
    case 'volume': {
      const j = parseJsonArray(rest);
      return j ? { args: j, json: true } : { args: splitWhitespace(rest), json: false };
    }
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell': {
      if (rest === '') return none;
      const j = parseJsonArray(rest);
      return j ? { args: j, json: true } : { args: [rest], json: false };
    }
    case 'arg':
      return { args: parseWords(rest, d.escape), json: false };
    case 'env':
    case 'label':
      return { args: parseNameVal(rest, keyword.toUpperCase(), d), json: false };
    case 'expose':
    case 'from':
      return { args: splitWhitespace(rest), json: false };
    case 'healthcheck': {
      let sep = 0;
      while (sep < rest.length && !isSpace(rest.charCodeAt(sep))) sep++;
      let next = sep;
      while (next < rest.length && isSpace(rest.charCodeAt(next))) next++;
      if (sep === 0) return none;
      const cmd = splitArgs('cmd', rest.slice(next), d);
      return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
    }
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      return rest === '' ? none : { args: [rest], json: false };
    case 'onbuild': {
      if (rest === '') return none;
      return { args: [], json: false, trigger: nodeFromLine(rest, d, []) };
    }
    default:
      return none; // unknown keywords are reported by the typed layer
  }
}

/** ENV/LABEL: old form `KEY value...` → [k, v, ''], new form `k=v ...` → [k, v, '=', ...]. */
function parseNameVal(rest: string, key: string, d: DirectiveState): string[] {
  const words = parseWords(rest, d.escape);
  if (words.length === 0) return [];
  if (!words[0]!.includes('=')) {
    const m = WS_RE.exec(rest);
    if (!m) throw new LineError(`${key} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''];
  }
  const out: string[] = [];
  for (const w of words) {
    const i = w.indexOf('=');
    if (i < 0) throw new LineError(`Syntax error - can't find = in ${goQuote(w)}. Must be of the form: name=value`);
    out.push(w.slice(0, i), w.slice(i + 1), '=');
  }
  return out;
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

function nodeFromLine(line: string, d: DirectiveState, comments: string[]): AstNode {
  const trimmed = trimSpace(line);
  const m = WS_RE.exec(trimmed);
  const keyword = m ? trimmed.slice(0, m.index) : trimmed;
  let flags: string[] = [];
  let rest = '';
  if (m) {
    [rest, flags] = extractBuilderFlags(trimmed.slice(m.index + m[0].length));
    rest = trimSpace(rest);
  }
  const split = splitArgs(keyword.toLowerCase(), rest, d);
  const node: AstNode = {
    keyword,
    flags,
    args: split.args,
    jsonForm: split.json,
    startLine: 0,
    endLine: 0,
    startColumn: 1,
    endColumn: 1,
    original: line,
    heredocs: [],
    comments,
    segments: [],
  };
  if (split.trigger) node.trigger = split.trigger;
  return node;
}

function canContainHeredoc(n: AstNode): boolean {
  const target = n.keyword.toLowerCase() === 'onbuild' && n.trigger ? n.trigger : n;
  return HEREDOC_KEYWORDS.has(target.keyword.toLowerCase()) && !target.jsonForm;
}

/**
 * buildkit `ParseHeredoc`: `<<[-]WORD` (optionally after a file descriptor number) → heredoc
 * without content; undefined when the word is not a heredoc. A delimiter with any quoted part
 * means the body is taken literally (`expand: false`).
 */
export function parseHeredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = HEREDOC_RE.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest === '') return undefined;
  const none = () => undefined;
  let words: string[];
  let raw: string[];
  try {
    words = lex(rest, none, { skipUnsetEnv: true }).words;
    if (words.length !== 1) return undefined;
    raw = lex(rest, none, { skipUnsetEnv: true, rawQuotes: true }).words;
  } catch (e) {
    throw new LineError(e instanceof Error ? e.message : String(e));
  }
  if (raw.length !== words.length) throw new LineError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  return {
    name: words[0]!,
    fileDescriptor: m[1] ? Number.parseInt(m[1], 10) : 0,
    expand: quotes(words[0]!) === quotes(raw[0]!),
    chomp: m[2] === '-',
  };
}

/**
 * The heredocs a line starts, in order. `<<` or `<<-` standing alone takes the next word as its
 * delimiter (`RUN << EOF`, `RUN <<- EOF`).
 */
export function heredocsFromLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = lex(line, () => undefined, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    return [];
  }
  const out: Omit<Heredoc, 'content'>[] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    if (/^\d*<<-?$/.test(w) && i + 1 < words.length) {
      w += ' ' + words[i + 1]!; // keeps `<< -EOF` (delimiter "-EOF") apart from `<<-EOF`
      i++;
    }
    const h = parseHeredocWord(w);
    if (h) out.push(h);
  }
  return out;
}

/** Removes leading tabs from every line (`<<-`). */
export function chompHeredocContent(s: string): string {
  return s.replace(/^\t+/gm, '');
}

function lineRange(file: string | undefined, startLine: number, startCol: number, endLine: number, endCol: number): SourceRange {
  const r: SourceRange = {
    start: { line: startLine, column: startCol },
    end: { line: endLine, column: endCol },
    start0: { line: startLine - 1, column: startCol - 1 },
    end0: { line: endLine - 1, column: endCol - 1 },
  };
  if (file !== undefined) r.file = file;
  return r;
}

/** Parses the line structure of a Dockerfile (see the module comment). */
export function parseAst(text: string, o: { file?: string } = {}): Ast {
  const d = new DirectiveState();
  const lines = scanLines(text);
  const nodes: AstNode[] = [];
  const warnings: Warning[] = [];
  let comments: string[] = [];
  let idx = 0; // next line index
  const err = (msg: string, start: number, end: number, col = 1): DockerfileSyntaxError =>
    new DockerfileSyntaxError(msg, { range: lineRange(o.file, Math.max(start, 1), col, Math.max(end, 1), col) });

  while (idx < lines.length) {
    let raw = lines[idx]!;
    if (idx === 0 && raw.startsWith('\ufeff')) raw = raw.slice(1);
    const lineNo = idx + 1;
    idx++;
    if (isComment(raw)) {
      // (buildkit slices the untrimmed line here, so an indented `# x` would keep its `#`)
      const c = trimSpace(trimLeadingWhitespace(raw).slice(1));
      if (c === '') comments = [];
      else comments.push(c);
    }
    let token = trimLeadingWhitespace(trimNewline(raw));
    let isDirective: boolean;
    try {
      isDirective = d.possibleDirective(token);
    } catch (e) {
      throw err((e as Error).message, lineNo, lineNo);
    }
    if (isDirective) comments.pop();
    if (isComment(token)) token = '';
    const startLine = lineNo;
    const startColumn = trimNewline(raw).length - trimLeadingWhitespace(trimNewline(raw)).length + 1;
    let [line, endOfLine] = d.trimContinuation(token);
    if (endOfLine && line === '') continue;
    const segments: AstNode['segments'] = [{ offset: 0, line: lineNo, column: startColumn }];

    let emptyContinuation = false;
    let endLine = lineNo;
    let lastRaw = raw;
    while (!endOfLine && idx < lines.length) {
      const next = lines[idx]!;
      idx++;
      endLine = idx;
      lastRaw = next;
      const t = trimNewline(next);
      try {
        d.possibleDirective(t);
      } catch (e) {
        throw err((e as Error).message, endLine, endLine);
      }
      if (isComment(next)) continue;
      if (isEmptyContinuationLine(t)) {
        emptyContinuation = true;
        continue;
      }
      let part: string;
      [part, endOfLine] = d.trimContinuation(t);
      segments.push({ offset: line.length, line: endLine, column: 1 });
      line += part;
    }

    let node: AstNode;
    try {
      node = nodeFromLine(line, d, comments);
    } catch (e) {
      if (e instanceof LineError) throw err(e.message, startLine, endLine, startColumn);
      throw e;
    }
    if (emptyContinuation) {
      warnings.push({
        rule: 'NoEmptyContinuation',
        message: `Empty continuation line found in: ${line}`,
        range: lineRange(o.file, endLine, 1, endLine, 1),
      });
    }

    if (canContainHeredoc(node) && line.includes('<<')) {
      let docs: Omit<Heredoc, 'content'>[];
      try {
        docs = heredocsFromLine(line);
      } catch (e) {
        throw err((e as Error).message, startLine, endLine, startColumn);
      }
      for (const h of docs) {
        let content = '';
        let terminated = false;
        while (idx < lines.length) {
          const l = lines[idx]!;
          idx++;
          endLine = idx;
          lastRaw = l;
          let possible = trimNewline(l);
          if (h.chomp) possible = possible.replace(/^\t+/, '');
          if (possible === h.name) {
            terminated = true;
            break;
          }
          content += l;
        }
        if (!terminated) {
          throw err(`unterminated heredoc ${h.name} (no line "${h.name}" before the end of the file)`, startLine, endLine, startColumn);
        }
        node.heredocs.push({ ...h, content });
      }
    }

    node.segments = segments;
    node.startLine = startLine;
    node.endLine = endLine;
    node.startColumn = startColumn;
    node.endColumn = trimNewline(lastRaw).length + 1;
    nodes.push(node);
    comments = [];
  }

  if (nodes.length === 0) {
    throw err('file with no instructions', Math.max(lines.length, 1), Math.max(lines.length, 1));
  }
  return { directives: d.values, nodes, warnings };
}

// ---------------------------------------------------------------------------------------------
// Step 2: typed instructions
// ---------------------------------------------------------------------------------------------

export const KEYWORDS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

type FlagKind = 'string' | 'bool' | 'array';
/** Builder flags each instruction accepts (buildkit `instructions/parse.go`). */
const FLAGS: Record<string, Record<string, FlagKind>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'array', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'array' },
  ADD: {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    parents: 'bool',
    exclude: 'array',
    'keep-git-dir': 'bool',
    checksum: 'string',
    unpack: 'bool',
  },
  HEALTHCHECK: {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  },
};

interface ParsedFlags {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  arrays: Map<string, string[]>;
  raw: RawFlag[];
}

/** Optimal-string-alignment edit distance (a transposition counts as one edit). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push(new Array<number>(b.length + 1).fill(0));
    d[i]![0] = i;
  }
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest name within a small edit distance, for "did you mean" hints. */
export function suggest(word: string, names: readonly string[]): string | undefined {
  const w = word.toUpperCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const dist = editDistance(w, n.toUpperCase());
    if (dist < bestD) {
      bestD = dist;
      best = n;
    }
  }
  const limit = Math.max(1, Math.min(2, Math.floor(w.length / 3)));
  return best !== undefined && bestD <= limit ? best : undefined;
}

interface Ctx {
  file?: string;
  node: AstNode;
  keyword: string; // upper-case
  range: SourceRange;
}

function fail(c: Ctx, msg: string, at?: { line: number; column: number }): never {
  const range = at !== undefined ? lineRange(c.file, at.line, at.column, at.line, at.column) : c.range;
  throw new DockerfileSyntaxError(msg, { range, instruction: c.keyword });
}

/** Column of a flag on the instruction's first line, for precise error positions. */
/** Source position of a flag's text, for precise error positions (undefined: use the instruction's). */
function flagColumn(c: Ctx, flag: string, last = false): { line: number; column: number } | undefined {
  const i = last ? c.node.original.lastIndexOf(flag) : c.node.original.indexOf(flag);
  if (i < 0) return undefined;
  let seg = c.node.segments[0];
  for (const s of c.node.segments) if (s.offset <= i) seg = s;
  if (!seg) return undefined;
  return { line: seg.line, column: seg.column + (i - seg.offset) };
}

function parseFlags(c: Ctx): ParsedFlags {
  const spec = FLAGS[c.keyword] ?? {};
  const out: ParsedFlags = { strings: new Map(), bools: new Map(), arrays: new Map(), raw: [] };
  for (const f of c.node.flags) {
    if (!f.startsWith('--')) fail(c, `${c.keyword}: flag should start with --: ${f}`, flagColumn(c, f));
    const eq = f.indexOf('=');
    const name = eq < 0 ? f.slice(2) : f.slice(2, eq);
    const value = eq < 0 ? undefined : f.slice(eq + 1);
    const kind = spec[name];
    const col = flagColumn(c, `--${name}`, out.strings.has(name) || out.bools.has(name));
    if (!kind) {
      const owners = Object.entries(FLAGS)
        .filter(([, s]) => s[name] !== undefined)
        .map(([k]) => k);
      if (owners.length > 0) fail(c, `flag --${name} is not valid for ${c.keyword} (it belongs to ${owners.join(', ')})`, col);
      const hint = suggest(name, Object.keys(spec));
      fail(c, `unknown flag: --${name} for ${c.keyword}${hint ? ` (did you mean --${hint}?)` : ''}`, col);
    }
    out.raw.push(value === undefined ? { name } : { name, value });
    if (kind === 'array') {
      if (value === undefined) fail(c, `missing a value on flag: --${name}`, col);
      const arr = out.arrays.get(name) ?? [];
      arr.push(value);
      out.arrays.set(name, arr);
      continue;
    }
    if (out.strings.has(name) || out.bools.has(name)) fail(c, `duplicate flag specified: --${name}`, col);
    if (kind === 'bool') {
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false' && value !== '') {
        fail(c, `expecting boolean value for flag --${name}, not: ${value}`, col);
      }
      out.bools.set(name, v !== 'false');
    } else {
      if (value === undefined) fail(c, `missing a value on flag: --${name}`, col);
      out.strings.set(name, value);
    }
  }
  return out;
}

function commandLine(c: Ctx): CommandLine {
  if (c.node.jsonForm) return { form: 'exec', args: [...c.node.args] };
  return { form: 'shell', command: c.node.args[0] ?? '' };
}

function keyValues(c: Ctx): KeyValue[] {
  const a = c.node.args;
  if (a.length === 0) fail(c, `${c.keyword} requires at least one argument`);
  const out: KeyValue[] = [];
  for (let i = 0; i + 1 < a.length; i += 3) {
    if (a[i] === '') fail(c, `${c.keyword} names can not be blank`);
    out.push({ key: a[i]!, value: a[i + 1]! });
  }
  return out;
}

function exactlyOne(c: Ctx): string {
  if (c.node.args.length !== 1) fail(c, `${c.keyword} requires exactly one argument`);
  return c.node.args[0]!;
}

/** Go time.ParseDuration → nanoseconds. */
export function parseGoDuration(s: string): number | undefined {
  const m = /^([+-])?(.*)$/.exec(s)!;
  let rest = m[2]!;
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  const units: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  while (rest !== '') {
    const p = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!p || (p[1] === '' && (p[2] ?? '') === '')) return undefined;
    const n = Number(`${p[1] || '0'}.${p[2] || '0'}`);
    total += n * units[p[3]!]!;
    rest = rest.slice(p[0].length);
  }
  return Math.round(m[1] === '-' ? -total : total);
}

function durationFlag(c: Ctx, f: ParsedFlags, name: string): number | undefined {
  const v = f.strings.get(name);
  if (v === undefined || v === '') return undefined;
  const ns = parseGoDuration(v);
  if (ns === undefined) fail(c, `invalid duration for --${name}: ${JSON.stringify(v)}`, flagColumn(c, `--${name}`));
  if (ns === 0) return 0;
  if (ns < 1e6) fail(c, `Interval "--${name}" cannot be less than 1ms`, flagColumn(c, `--${name}`));
  return ns;
}

const STAGE_NAME_RE = /^[a-z][a-z0-9-_.]*$/;

function parseFrom(c: Ctx, f: ParsedFlags, base: Base): From {
  const a = c.node.args;
  if (a.length !== 1 && a.length !== 3) fail(c, 'FROM requires either one or three arguments');
  const out: From = { ...base, kind: 'from', image: a[0]! };
  if (a.length === 3) {
    if (a[1]!.toLowerCase() !== 'as') fail(c, `FROM requires either one or three arguments (expected "AS", got ${JSON.stringify(a[1])})`);
    const name = a[2]!.toLowerCase();
    if (!STAGE_NAME_RE.test(name)) {
      fail(c, `invalid name for build stage: ${JSON.stringify(a[2])}, name can't start with a number or contain symbols`);
    }
    out.stageName = name;
  }
  const p = f.strings.get('platform');
  if (p !== undefined) out.platform = p;
  return out;
}

/** Splits one `--mount` value: comma-separated key[=value] fields with CSV-style double quotes. */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQ = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (inQ) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') inQ = false;
      else cur += ch;
    } else if (ch === '"' && cur === '') inQ = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (inQ) throw new Error(`unterminated quote in ${JSON.stringify(s)}`);
  out.push(cur);
  return out;
}

function parseBoolWord(v: string | undefined, key: string): boolean {
  if (v === undefined) return true;
  const l = v.toLowerCase();
  if (l === 'true' || l === '1') return true;
  if (l === 'false' || l === '0') return false;
  throw new Error(`invalid value for ${key}: ${v}`);
}

function parseNumber(v: string | undefined, key: string, base: 8 | 10): number {
  if (v === undefined) throw new Error(`${key} needs a value`);
  const re = base === 8 ? /^0?[0-7]+$/ : /^\d+$/;
  if (!re.test(v)) throw new Error(`invalid ${key} ${JSON.stringify(v)}`);
  return Number.parseInt(v, base);
}

/** Parses a size like `64m`, `1g`, `4096` (bytes) as buildkit's tmpfs size option. */
function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(v);
  if (!m) throw new Error(`invalid size ${JSON.stringify(v)}`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

const MOUNT_KEYS: Record<string, ReadonlySet<string>> = {
  bind: new Set(['target', 'source', 'from', 'readonly', 'readwrite']),
  cache: new Set(['target', 'source', 'from', 'readonly', 'readwrite', 'id', 'sharing', 'mode', 'uid', 'gid']),
  tmpfs: new Set(['target', 'size']),
  secret: new Set(['target', 'id', 'required', 'mode', 'uid', 'gid', 'env']),
  ssh: new Set(['target', 'id', 'required', 'mode', 'uid', 'gid']),
};
const KEY_ALIASES: Record<string, string> = {
  dst: 'target',
  destination: 'target',
  src: 'source',
  ro: 'readonly',
  rw: 'readwrite',
};

/** Parses one `RUN --mount=...` value into a typed mount (buildkit `parseMount`). */
export function parseMount(value: string): RunMount {
  const fields = csvFields(value);
  let type = 'bind';
  const kv = new Map<string, string | undefined>();
  for (const field of fields) {
    const f = field.trim();
    if (f === '') continue;
    const eq = f.indexOf('=');
    const rawKey = (eq < 0 ? f : f.slice(0, eq)).toLowerCase();
    const v = eq < 0 ? undefined : f.slice(eq + 1);
    const key = KEY_ALIASES[rawKey] ?? rawKey;
    if (key === 'type') {
      if (v === undefined || !(v in MOUNT_KEYS)) throw new Error(`unsupported mount type ${JSON.stringify(v ?? '')}`);
      type = v;
      continue;
    }
    if (kv.has(key)) throw new Error(`duplicate mount option ${key}`);
    kv.set(key, v);
  }
  const allowed = MOUNT_KEYS[type]!;
  for (const k of kv.keys()) {
    if (!allowed.has(k)) throw new Error(`unexpected key '${k}' for mount type ${type}`);
  }
  const str = (k: string): string | undefined => {
    if (!kv.has(k)) return undefined;
    const v = kv.get(k);
    if (v === undefined) throw new Error(`mount option ${k} needs a value`);
    return v;
  };
  const target = str('target');
  const readonly = (): boolean => {
    if (kv.has('readonly') && kv.has('readwrite')) throw new Error('readonly and readwrite are mutually exclusive');
    if (kv.has('readwrite')) return !parseBoolWord(kv.get('readwrite'), 'readwrite');
    if (kv.has('readonly')) return parseBoolWord(kv.get('readonly'), 'readonly');
    return type === 'bind';
  };
  const opt = <T extends object>(o: T, k: string, v: unknown): T => {
    if (v !== undefined) (o as Record<string, unknown>)[k] = v;
    return o;
  };
  switch (type) {
    case 'bind':
    case 'cache': {
      if (!target) throw new Error(`mount type ${type} requires a target`);
      if (type === 'bind') {
        const m: RunMount = { type: 'bind', target, readonly: readonly() };
        opt(m, 'from', str('from'));
        opt(m, 'source', str('source'));
        return m;
      }
      const sharing = (str('sharing') ?? 'shared') as CacheSharing;
      if (!['shared', 'private', 'locked'].includes(sharing)) throw new Error(`unsupported sharing value ${JSON.stringify(sharing)}`);
      const m: RunMount = { type: 'cache', target, readonly: readonly(), sharing };
      opt(m, 'id', str('id'));
      opt(m, 'from', str('from'));
      opt(m, 'source', str('source'));
      if (kv.has('mode')) m.mode = parseNumber(kv.get('mode'), 'mode', 8);
      if (kv.has('uid')) m.uid = parseNumber(kv.get('uid'), 'uid', 10);
      if (kv.has('gid')) m.gid = parseNumber(kv.get('gid'), 'gid', 10);
      return m;
    }
    case 'tmpfs': {
      if (!target) throw new Error('mount type tmpfs requires a target');
      const m: RunMount = { type: 'tmpfs', target };
      const size = str('size');
      if (size !== undefined) m.size = parseSize(size);
      return m;
    }
    default: {
      const id = str('id');
      const env = type === 'secret' ? str('env') : undefined;
      let tgt = target;
      let theId = id;
      if (!theId && tgt) theId = tgt.split('/').filter(Boolean).pop();
      if (type === 'secret' && !tgt && env === undefined) {
        if (!theId) throw new Error('secret mount requires an id or a target');
        tgt = `/run/secrets/${theId}`;
      }
      if (type === 'ssh' && !tgt) tgt = `/run/buildkit/ssh_agent.${0}`;
      if (type === 'ssh' && !theId) theId = 'default';
      const common = {
        required: kv.has('required') ? parseBoolWord(kv.get('required'), 'required') : false,
        mode: kv.has('mode') ? parseNumber(kv.get('mode'), 'mode', 8) : type === 'secret' ? 0o400 : 0o600,
        uid: kv.has('uid') ? parseNumber(kv.get('uid'), 'uid', 10) : 0,
        gid: kv.has('gid') ? parseNumber(kv.get('gid'), 'gid', 10) : 0,
      };
      const m: RunMount = type === 'secret' ? { type: 'secret', ...common } : { type: 'ssh', ...common };
      opt(m, 'id', theId);
      opt(m, 'target', tgt);
      if (type === 'secret') opt(m, 'env', env);
      return m;
    }
  }
}

type Base = { range: SourceRange; original: string; comments: string[] };

function copyCommon(c: Ctx, f: ParsedFlags, base: Base) {
  const a = c.node.args;
  if (a.length < 2) {
    fail(c, `${c.keyword} requires at least two arguments, but only ${a.length === 0 ? 'none were' : 'one was'} provided. Destination could not be determined`);
  }
  const heredocs = c.node.heredocs.map((h) => ({ ...h, content: h.chomp ? chompHeredocContent(h.content) : h.content }));
  const out = {
    ...base,
    sources: a.slice(0, -1),
    dest: a[a.length - 1]!,
    heredocs,
    jsonForm: c.node.jsonForm,
    link: f.bools.get('link') ?? false,
    exclude: f.arrays.get('exclude') ?? [],
    parents: f.bools.get('parents') ?? false,
  };
  const chown = f.strings.get('chown');
  const chmod = f.strings.get('chmod');
  return { ...out, ...(chown !== undefined ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}) };
}

function toInstruction(node: AstNode, file: string | undefined, escape: '\\' | '`'): Instruction {
  const keyword = node.keyword.toUpperCase();
  const range = lineRange(file, node.startLine, node.startColumn, node.endLine, node.endColumn);
  const c: Ctx = { node, keyword, range, ...(file !== undefined ? { file } : {}) };
  if (!(KEYWORDS as readonly string[]).includes(keyword)) {
    throw new UnknownInstructionError(node.keyword, suggest(node.keyword, KEYWORDS), range);
  }
  const f = parseFlags(c);
  const base: Base = { range, original: node.original, comments: [...node.comments] };
  switch (keyword) {
    case 'FROM':
      return parseFrom(c, f, base);
    case 'RUN': {
      if (node.args.length === 0) fail(c, 'RUN requires at least one argument');
      const mounts: RunMount[] = [];
      for (const m of f.arrays.get('mount') ?? []) {
        try {
          mounts.push(parseMount(m));
        } catch (e) {
          fail(c, `invalid --mount=${m}: ${(e as Error).message}`, flagColumn(c, '--mount'));
        }
      }
      const out: Instruction = {
        ...base,
        kind: 'run',
        command: commandLine(c),
        heredocs: node.heredocs.map((h) => ({ ...h, content: h.chomp ? chompHeredocContent(h.content) : h.content })),
        mounts,
      };
      const net = f.strings.get('network');
      if (net !== undefined) {
        if (net !== 'default' && net !== 'none' && net !== 'host') fail(c, `unsupported network mode ${JSON.stringify(net)}`, flagColumn(c, '--network'));
        out.network = net;
      }
      const sec = f.strings.get('security');
      if (sec !== undefined) {
        if (sec !== 'sandbox' && sec !== 'insecure') fail(c, `unsupported security mode ${JSON.stringify(sec)}`, flagColumn(c, '--security'));
        out.security = sec;
      }
      return out;
    }
    case 'COPY': {
      const out: Copy = { ...copyCommon(c, f, base), kind: 'copy' };
      const from = f.strings.get('from');
      if (from !== undefined) out.from = from;
      return out;
    }
    case 'ADD': {
      const out: Add = { ...copyCommon(c, f, base), kind: 'add', keepGitDir: f.bools.get('keep-git-dir') ?? false };
      const checksum = f.strings.get('checksum');
      if (checksum !== undefined) out.checksum = checksum;
      const unpack = f.bools.get('unpack');
      if (unpack !== undefined) out.unpack = unpack;
      return out;
    }
    case 'ENV':
      return { ...base, kind: 'env', pairs: keyValues(c) };
    case 'LABEL':
      return { ...base, kind: 'label', pairs: keyValues(c) };
    case 'ARG': {
      if (node.args.length === 0) fail(c, 'ARG requires at least one argument');
      const args: ArgDef[] = node.args.map((w) => {
        const i = w.indexOf('=');
        if (i === 0) fail(c, `ARG names can not be blank`);
        return i < 0 ? { key: w } : { key: w.slice(0, i), value: w.slice(i + 1) };
      });
      return { ...base, kind: 'arg', args };
    }
    case 'WORKDIR':
      return { ...base, kind: 'workdir', path: exactlyOne(c) };
    case 'USER':
      return { ...base, kind: 'user', user: exactlyOne(c) };
    case 'STOPSIGNAL':
      return { ...base, kind: 'stopsignal', signal: exactlyOne(c) };
    case 'MAINTAINER':
      return { ...base, kind: 'maintainer', maintainer: exactlyOne(c) };
    case 'CMD':
      return { ...base, kind: 'cmd', command: commandLine(c) };
    case 'ENTRYPOINT':
      return { ...base, kind: 'entrypoint', command: commandLine(c) };
    case 'EXPOSE':
      if (node.args.length === 0) fail(c, 'EXPOSE requires at least one argument');
      return { ...base, kind: 'expose', ports: [...node.args] };
    case 'VOLUME':
      if (node.args.length === 0) fail(c, 'VOLUME requires at least one argument');
      if (node.args.some((p) => p.trim() === '')) fail(c, 'VOLUME specified can not be an empty string');
      return { ...base, kind: 'volume', paths: [...node.args] };
    case 'SHELL':
      if (node.args.length === 0) fail(c, 'SHELL requires at least one argument');
      if (!node.jsonForm) fail(c, 'SHELL requires the arguments to be in JSON form');
      return { ...base, kind: 'shell', shell: [...node.args] };
    case 'HEALTHCHECK': {
      const a = node.args;
      if (a.length === 0) fail(c, 'HEALTHCHECK requires at least one argument');
      const typ = a[0]!.toUpperCase();
      if (typ === 'NONE') {
        if (a.length !== 1) fail(c, 'HEALTHCHECK NONE takes no arguments');
        return { ...base, kind: 'healthcheck', test: ['NONE'] };
      }
      if (typ !== 'CMD') fail(c, `Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
      if (a.length < 2 || (!node.jsonForm && a[1] === '')) fail(c, 'Missing command after HEALTHCHECK CMD');
      const test = node.jsonForm ? ['CMD', ...a.slice(1)] : ['CMD-SHELL', a[1]!];
      const out: Instruction = { ...base, kind: 'healthcheck', test };
      const interval = durationFlag(c, f, 'interval');
      const timeout = durationFlag(c, f, 'timeout');
      const startPeriod = durationFlag(c, f, 'start-period');
      const startInterval = durationFlag(c, f, 'start-interval');
      if (interval !== undefined) out.interval = interval;
      if (timeout !== undefined) out.timeout = timeout;
      if (startPeriod !== undefined) out.startPeriod = startPeriod;
      if (startInterval !== undefined) out.startInterval = startInterval;
      const retries = f.strings.get('retries');
      if (retries !== undefined && retries !== '') {
        if (!/^-?\d+$/.test(retries)) fail(c, `invalid --retries value ${JSON.stringify(retries)}`, flagColumn(c, '--retries'));
        const n = Number.parseInt(retries, 10);
        if (n < 0) fail(c, '--retries cannot be negative', flagColumn(c, '--retries'));
        out.retries = n;
      }
      return out;
    }
    case 'ONBUILD': {
      const t = node.trigger;
      if (!t) fail(c, 'ONBUILD requires at least one argument');
      const tk = t.keyword.toUpperCase();
      if (tk === 'ONBUILD') fail(c, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (tk === 'FROM' || tk === 'MAINTAINER') fail(c, `${tk} isn't allowed as an ONBUILD trigger`);
      // The trigger shares the ONBUILD line's position.
      const inner = toInstruction(
        { ...t, startLine: node.startLine, endLine: node.endLine, startColumn: node.startColumn, endColumn: node.endColumn, heredocs: node.heredocs, segments: [] },
        file,
        escape,
      );
      const expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
      return { ...base, kind: 'onbuild', expression, instruction: inner };
    }
  }
  throw new UnknownInstructionError(node.keyword, undefined, range);
}

/**
 * Parses an ONBUILD trigger expression as stored in an image config (e.g. `RUN echo hi`) into an
 * instruction, for running triggers when a stage builds FROM that image.
 */
export function parseTrigger(expression: string, o: { file?: string; escape?: '\\' | '`' } = {}): Instruction {
  const escape = o.escape ?? '\\';
  const text = escape === '`' ? `# escape=\`\n${expression}\n` : `${expression}\n`;
  const ast = parseAst(text, o.file !== undefined ? { file: o.file } : {});
  const node = ast.nodes[0]!;
  return toInstruction(node, o.file, escape);
}

/** Parses a Dockerfile into directives, meta ARGs and stages of typed instructions. */
export function parseDockerfile(text: string, o: { file?: string } = {}): Dockerfile {
  const ast = parseAst(text, o);
  const escape = ast.directives.escape;
  const metaArgs: Arg[] = [];
  const stages: Stage[] = [];
  const warnings: Warning[] = [...ast.warnings];
  const names = new Map<string, number>();
  for (const node of ast.nodes) {
    const ins = toInstruction(node, o.file, escape);
    if (ins.kind === 'from') {
      if (/[A-Z]/.test(node.args[2] ?? '')) {
        warnings.push({ rule: 'StageNameCasing', message: `Stage name '${node.args[2]}' should be lowercase`, range: ins.range });
      }
      const stage: Stage = { index: stages.length, from: ins, instructions: [] };
      if (ins.stageName !== undefined) {
        if (names.has(ins.stageName)) {
          throw new DockerfileSyntaxError(`duplicate stage name ${JSON.stringify(ins.stageName)} (first defined by stage ${names.get(ins.stageName)})`, {
            range: ins.range,
            instruction: 'FROM',
          });
        }
        names.set(ins.stageName, stage.index);
        stage.name = ins.stageName;
      }
      stages.push(stage);
      continue;
    }
    if (ins.kind === 'maintainer') {
      warnings.push({ rule: 'MaintainerDeprecated', message: 'Maintainer instruction is deprecated in favor of using label', range: ins.range });
    }
    const current = stages[stages.length - 1];
    if (!current) {
      if (ins.kind === 'arg') {
        metaArgs.push(ins);
        continue;
      }
      throw new DockerfileSyntaxError(
        `${node.keyword.toUpperCase()} before the first FROM: only ARG may come before FROM (no build stage in current context)`,
        { range: ins.range, instruction: node.keyword.toUpperCase() },
      );
    }
    current.instructions.push(ins);
  }
  if (stages.length === 0) {
    const last = ast.nodes[ast.nodes.length - 1]!;
    throw new BuildError('Dockerfile has no FROM instruction: there is no build stage', {
      range: lineRange(o.file, last.startLine, last.startColumn, last.endLine, last.endColumn),
    });
  }
  const df: Dockerfile = { directives: ast.directives, metaArgs, stages, warnings };
  if (o.file !== undefined) df.file = o.file;
  return df;
}
