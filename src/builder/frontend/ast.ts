/**
 * The line-level Dockerfile parser (buildkit `frontend/dockerfile/parser`): parser directives,
 * comments, line continuations, empty-continuation warnings, builder flags (kept as text),
 * per-keyword argument splitting (JSON form or not) and heredoc bodies. Its output is compared
 * one-to-one with buildkit's `testfiles` ASTs in the tests; parse.ts turns it into typed
 * instructions.
 *
 * Why not dockerfile-ast: against the conformance data, dockerfile-ast 0.7.1 takes heredoc bodies
 * for instructions that cannot have them (`USER <<X`), ignores `3<<EOF`, `<< EOF` and partly
 * quoted delimiters (`<<eo'f'`), splits `CMD --flag [..]` as arguments, does not stop flags at
 * `--`, and treats `\\` at the end of a line as a continuation. Those are the places where a build
 * would differ from Docker's, so this layer follows buildkit's algorithm.
 */
import type { Directives, Heredoc, SourceRange, Warning } from './instructions.js';
import { DockerfileSyntaxError } from '../errors.js';
import { isSpace, lex } from './shell-lex.js';

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

/** A SourceRange from 1-based lines and columns. */
export function lineRange(file: string | undefined, startLine: number, startCol: number, endLine: number, endCol: number): SourceRange {
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
