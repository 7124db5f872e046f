/**
 * Shell-style word processing as the Dockerfile frontend does it (buildkit `frontend/dockerfile/shell`):
 * quote removal, escapes (with a configurable escape character) and `$VAR` / `${VAR...}` expansion,
 * optionally splitting the result into words. Pure: no Dockerfile knowledge, no global state.
 *
 * Supported forms: `$VAR ${VAR} ${VAR:-w} ${VAR-w} ${VAR:+w} ${VAR+w} ${VAR:?msg} ${VAR?msg}
 * ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p} ${VAR/p/r} ${VAR//p/r}` (patterns use `*` and `?`).
 */
import { ImgbuildError } from '../../errors.js';

/** Looks a variable up; `undefined` means unset (an empty string is set-but-empty). */
export type EnvGetter = (name: string) => string | undefined;

export type EscapeChar = '\\' | '`';

export interface LexOptions {
  escape?: EscapeChar;
  /** Keep quote characters in the output (used to detect quoted heredoc delimiters). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to ''. */
  skipUnsetEnv?: boolean;
}

export interface ProcessResult {
  /** The processed word (spaces between words kept). */
  result: string;
  /** The result split into words on unquoted whitespace (after expansion, like a shell). */
  words: string[];
  /** Names referenced that were set. */
  matched: Set<string>;
  /** Names referenced that were not set. */
  unmatched: Set<string>;
}

/** A word could not be processed (unterminated quote, bad substitution, `${X?msg}` on unset X). */
export class ShellExpansionError extends ImgbuildError {
  readonly word: string;
  readonly detail: string;
  constructor(word: string, detail: string) {
    super('INVALID_ARGUMENT', `failed to process ${JSON.stringify(word)}: ${detail}`);
    this.name = 'ShellExpansionError';
    this.word = word;
    this.detail = detail;
  }
}

/** Internal: an error message without the word, wrapped into ShellExpansionError at the top. */
class LexFailure extends Error {}

/** Builds an EnvGetter from `KEY=value` strings (no `=` means empty; the last duplicate wins). */
export function envFromList(list: readonly string[]): EnvGetter {
  const m = new Map<string, string>();
  for (const e of list) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return (name) => m.get(name);
}

/** Builds an EnvGetter from a Map or a plain record. */
export function envFromMap(m: ReadonlyMap<string, string> | Readonly<Record<string, string>>): EnvGetter {
  if (m instanceof Map) return (name) => m.get(name);
  const rec = m as Readonly<Record<string, string>>;
  return (name) => (Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined);
}

/** Expands one word (quotes and escapes removed, variables substituted). */
export function processWord(word: string, env: EnvGetter, escape: EscapeChar = '\\'): string {
  return lex(word, env, { escape }).result;
}

/** Expands and splits into words (ENV/LABEL-style and EXPOSE-style lists). */
export function processWords(word: string, env: EnvGetter, escape: EscapeChar = '\\'): string[] {
  return lex(word, env, { escape }).words;
}

/** Like processWord, also reporting which variables were used and which were unset. */
export function processWordWithMatches(word: string, env: EnvGetter, escape: EscapeChar = '\\'): ProcessResult {
  return lex(word, env, { escape });
}

/** The general entry point with every lexer switch. */
export function lex(word: string, env: EnvGetter, opts: LexOptions = {}): ProcessResult {
  const sw = new ShellWord(word, env, opts);
  try {
    const [result, words] = sw.processStopOn(EOF, sw.rawEscapes);
    return { result, words, matched: sw.matched, unmatched: sw.unmatched };
  } catch (e) {
    if (e instanceof LexFailure) throw new ShellExpansionError(word, e.message);
    throw e;
  }
}

const EOF = -1;

/** Go's unicode.IsSpace. */
export function isSpace(cp: number): boolean {
  if (cp < 0) return false;
  if (cp <= 0xff) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  return /\p{White_Space}/u.test(String.fromCodePoint(cp));
}
function isLetter(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
  return /\p{L}/u.test(String.fromCodePoint(cp));
}
function isDigit(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x30 && cp <= 0x39;
  return /\p{Nd}/u.test(String.fromCodePoint(cp));
}
function isSpecialParam(cp: number): boolean {
  return '@*#?-$!0'.includes(String.fromCodePoint(cp));
}

/** Accumulates the word list: unquoted whitespace from expansions splits, quoted text never does. */
class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(cp: number): void {
    if (isSpace(cp) && this.inWord) {
      if (this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else if (!isSpace(cp)) {
      this.addRawChar(cp);
    }
  }
  addRawChar(cp: number): void {
    this.word += String.fromCodePoint(cp);
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch.codePointAt(0)!);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  get(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private readonly cps: number[];
  private pos = 0;
  private readonly escape: number;
  rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    word: string,
    private readonly env: EnvGetter,
    private readonly o: LexOptions,
  ) {
    this.cps = Array.from(word, (c) => c.codePointAt(0)!);
    this.escape = (o.escape ?? '\\').codePointAt(0)!;
    this.rawEscapes = o.rawEscapes ?? false;
  }

  private peek(): number {
    return this.pos < this.cps.length ? this.cps[this.pos]! : EOF;
  }
  private next(): number {
    return this.pos < this.cps.length ? this.cps[this.pos++]! : EOF;
  }

  processStopOn(stop: number, rawEscapes: boolean): [string, string[]] {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.stopOn(stop);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private stopOn(stop: number): [string, string[]] {
    let result = '';
    const words = new Words();
    const quotes = !this.o.skipProcessQuotes;
    while (this.peek() !== EOF) {
      let ch = this.peek();
      if (stop !== EOF && ch === stop) {
        this.next();
        return [result, words.get()];
      }
      if (ch === 0x24 /* $ */ || (quotes && (ch === 0x27 || ch === 0x22))) {
        const tmp = ch === 0x24 ? this.processDollar() : ch === 0x27 ? this.singleQuote() : this.doubleQuote();
        result += tmp;
        if (ch === 0x24) words.addString(tmp);
        else words.addRawString(tmp);
        continue;
      }
      ch = this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) {
          words.addRawChar(ch);
          result += String.fromCodePoint(ch);
        }
        // The escape character escapes the next one, except at the end of the word.
        ch = this.next();
        if (ch === EOF) break;
        words.addRawChar(ch);
      } else {
        words.addChar(ch);
      }
      result += String.fromCodePoint(ch);
    }
    if (stop !== EOF) {
      throw new LexFailure(`unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`);
    }
    return [result, words.get()];
  }

  /** Everything up to the next ' is literal; a ' cannot be escaped inside. */
  private singleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.o.rawQuotes) result += String.fromCodePoint(ch);
    for (;;) {
      ch = this.next();
      if (ch === EOF) throw new LexFailure('unexpected end of statement while looking for matching single-quote');
      if (ch === 0x27) {
        if (this.o.rawQuotes) result += "'";
        return result;
      }
      result += String.fromCodePoint(ch);
    }
  }

  /** Literal except `$` expansion; the escape char escapes only `"`, `$` and itself. */
  private doubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.o.rawQuotes) result += String.fromCodePoint(open);
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new LexFailure('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        this.next();
        if (this.o.rawQuotes) result += '"';
        return result;
      }
      if (p === 0x24) {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) result += String.fromCodePoint(ch);
        const n = this.peek();
        if (n === EOF) continue; // a trailing escape is dropped
        if (n === 0x22 || n === 0x24 || n === this.escape) ch = this.next();
      }
      result += String.fromCodePoint(ch);
    }
  }

  private getEnv(name: string): [string, boolean] {
    const v = this.env(name);
    if (v !== undefined) {
      this.matched.add(name);
      return [v, true];
    }
    this.unmatched.add(name);
    return ['', false];
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name.length === 0 && isDigit(ch)) {
        // Positional parameter: all leading digits form the name.
        while (this.peek() !== EOF && isDigit(this.peek())) name += String.fromCodePoint(this.next());
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) return String.fromCodePoint(this.next());
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f /* _ */) break;
      name += String.fromCodePoint(this.next());
    }
    return name;
  }

  private processDollar(): string {
    this.next(); // $
    if (this.peek() !== 0x7b /* { */) {
      const name = this.processName();
      if (name === '') return '$';
      const [value, found] = this.getEnv(name);
      if (!found && this.o.skipUnsetEnv) return '$' + name;
      return value;
    }
    this.next(); // {
    const p = this.peek();
    if (p === EOF) throw new LexFailure("syntax error: missing '}'");
    if (p === 0x7b || p === 0x7d || p === 0x3a) throw new LexFailure('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch === EOF ? '' : String.fromCodePoint(ch);
    let nullIsUnset = false;

    if (ch === 0x7d /* } */) {
      const [value, set] = this.getEnv(name);
      if (!set && this.o.skipUnsetEnv) return `\${${name}}`;
      return value;
    }
    if (ch === 0x3a /* : */) {
      nullIsUnset = true;
      ch = this.next();
      chs += ch === EOF ? '' : String.fromCodePoint(ch);
    }
    const patternOp = ch === 0x23 || ch === 0x25; /* # % */
    if (ch === 0x2b || ch === 0x2d || ch === 0x3f || (patternOp && !nullIsUnset) /* + - ? */) {
      // After `:` only - + ? are valid (`${X:#p}` is an error, as in buildkit).
      const rawEsc = ch === 0x23 || ch === 0x25;
      let word: string;
      try {
        [word] = this.processStopOn(0x7d, rawEsc);
      } catch (e) {
        if (e instanceof LexFailure && this.peek() === EOF) throw new LexFailure("syntax error: missing '}'");
        throw e;
      }
      const [value, set] = this.getEnv(name);
      if (this.o.skipUnsetEnv && !set) return `\${${name}${chs}${word}}`;
      switch (ch) {
        case 0x2d: // -
          return !set || (nullIsUnset && value === '') ? word : value;
        case 0x2b: // +
          return !set || (nullIsUnset && value === '') ? '' : word;
        case 0x3f: // ?
          if (!set) throw new LexFailure(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && value === '') throw new LexFailure(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return value;
        default: {
          // %/# remove the shortest match, %%/## the longest.
          let greedy = false;
          if (word.length > 0 && word.codePointAt(0) === ch) {
            greedy = true;
            word = word.slice(1);
          }
          return ch === 0x25 ? trimSuffix(word, value, greedy) : trimPrefix(word, value, greedy);
        }
      }
    }
    if (ch === 0x2f /* / */ && !nullIsUnset) {
      const replaceAll = this.peek() === 0x2f;
      if (replaceAll) this.next();
      let pattern: string;
      let replacement: string;
      try {
        [pattern] = this.processStopOn(0x2f, true);
      } catch (e) {
        if (e instanceof LexFailure && this.peek() === EOF) throw new LexFailure("syntax error: missing '/' in ${}");
        throw e;
      }
      try {
        [replacement] = this.processStopOn(0x7d, true);
      } catch (e) {
        if (e instanceof LexFailure && this.peek() === EOF) throw new LexFailure("syntax error: missing '}'");
        throw e;
      }
      const [value0, set] = this.getEnv(name);
      if (this.o.skipUnsetEnv && !set) return `\${${name}/${pattern}/${replacement}}`;
      const re = shellPatternToRegex(pattern, true, false, replaceAll);
      if (replaceAll) return value0.replace(re, () => replacement);
      const m = re.exec(value0);
      if (!m) return value0;
      return value0.slice(0, m.index) + replacement + value0.slice(m.index + m[0].length);
    }
    throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
  }
}

/**
 * A shell wildcard pattern (`*`, `?`, escapes; no bracket expressions) as a RegExp.
 * Non-greedy `*` gives the shortest match.
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const cps = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '.*' : '.*?';
  for (let i = 0; i < cps.length; i++) {
    const tok = cps[i]!;
    if (tok === '*') {
      out += star;
      continue;
    }
    if (tok === '?') {
      out += '.';
      continue;
    }
    if (tok === '\\') {
      const n = cps[i + 1];
      // `}` and `/` escaped inside ${} are not part of the pattern's escapes.
      if (n === '}' || n === '/') continue;
      if (n !== '*' && n !== '?' && n !== '\\') {
        throw new LexFailure(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
      }
      out += '\\' + n;
      i++;
      continue;
    }
    if ('[]{}.+()|^$'.includes(tok)) out += '\\';
    out += tok;
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

/** Reverses a pattern while keeping `\x` escapes in order (`a\*c` → `c\*a`). */
function reversePattern(pattern: string): string {
  const r = Array.from(pattern);
  const out: string[] = new Array<string>(r.length);
  const last = r.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = r[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = r[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

/** Suffix removal is prefix removal on the reversed strings (regexps find leftmost matches). */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}
