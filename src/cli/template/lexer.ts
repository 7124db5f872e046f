/**
 * The lexer of Go's text/template (Go 1.19's `text/template/parse/lex.go` semantics): text,
 * actions between `{{` and `}}`, trim markers (`{{- ` and ` -}}`), comments, and the tokens inside
 * actions. It runs to the end eagerly; a lexing error becomes an `error` item and ends the list.
 */

export type ItemType =
  | 'error' | 'bool' | 'char' | 'charConstant' | 'comment' | 'complex' | 'assign' | 'declare' | 'eof' | 'field'
  | 'identifier' | 'leftDelim' | 'leftParen' | 'number' | 'pipe' | 'rawString' | 'rightDelim' | 'rightParen'
  | 'space' | 'string' | 'text' | 'variable'
  // keywords
  | 'block' | 'break' | 'continue' | 'dot' | 'define' | 'else' | 'end' | 'if' | 'nil' | 'range' | 'template' | 'with';

export interface Item {
  typ: ItemType;
  pos: number;
  val: string;
  line: number;
}

const KEYWORDS: ReadonlyMap<string, ItemType> = new Map<string, ItemType>([
  ['.', 'dot'], ['block', 'block'], ['break', 'break'], ['continue', 'continue'], ['define', 'define'], ['else', 'else'],
  ['end', 'end'], ['if', 'if'], ['range', 'range'], ['nil', 'nil'], ['template', 'template'], ['with', 'with'],
]);

export function isKeyword(t: ItemType): boolean {
  return ['block', 'break', 'continue', 'dot', 'define', 'else', 'end', 'if', 'nil', 'range', 'template', 'with'].includes(t);
}

const LEFT = '{{';
const RIGHT = '}}';
const SPACE = /[ \t\r\n]/;
const isSpace = (c: string | undefined): boolean => c !== undefined && SPACE.test(c);
export const isAlphaNumeric = (c: string | undefined): boolean => c !== undefined && /^[\p{L}\p{Nd}_]$/u.test(c);

/** Go's `%#U` of a character: `U+0021 '!'`. */
export function unicodeName(c: string): string {
  const cp = c.codePointAt(0) ?? 0;
  const hex = cp.toString(16).toUpperCase().padStart(4, '0');
  return /\p{L}|\p{N}|\p{P}|\p{S}|\p{Zs}/u.test(c) ? `U+${hex} '${c}'` : `U+${hex}`;
}

export function lex(input: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let start = 0;
  let parenDepth = 0;
  const lineAt = (p: number): number => {
    let n = 1;
    for (let i = 0; i < p; i++) if (input.charCodeAt(i) === 10) n++;
    return n;
  };
  const emit = (typ: ItemType): void => {
    items.push({ typ, pos: start, val: input.slice(start, pos), line: lineAt(start) });
    start = pos;
  };
  const error = (msg: string): null => {
    items.push({ typ: 'error', pos: start, val: msg, line: lineAt(start) });
    return null;
  };
  const peekc = (): string | undefined => (pos < input.length ? input[pos] : undefined);
  const next = (): string | undefined => {
    if (pos >= input.length) {
      pos = input.length + 1;
      return undefined;
    }
    const cp = input.codePointAt(pos)!;
    const c = String.fromCodePoint(cp);
    pos += c.length;
    return c;
  };
  // Backs up over the character `c` that next() returned (undefined at the end).
  const backup = (c: string | undefined): void => {
    pos -= c === undefined ? 1 : c.length;
  };
  const accept = (valid: string): boolean => {
    const c = next();
    if (c !== undefined && valid.includes(c)) return true;
    backup(c);
    return false;
  };
  const acceptRun = (valid: string): void => {
    for (;;) {
      const c = next();
      if (c === undefined || !valid.includes(c)) {
        backup(c);
        return;
      }
    }
  };
  const hasLeftTrim = (p: number): boolean => input[p] === '-' && isSpace(input[p + 1]);
  const hasRightTrim = (p: number): boolean => isSpace(input[p]) && input[p + 1] === '-';
  const atRightDelim = (): { delim: boolean; trim: boolean } => {
    if (hasRightTrim(pos) && input.startsWith(RIGHT, pos + 2)) return { delim: true, trim: true };
    if (input.startsWith(RIGHT, pos)) return { delim: true, trim: false };
    return { delim: false, trim: false };
  };
  const leftTrimLength = (p: number): number => {
    let n = 0;
    while (isSpace(input[p + n])) n++;
    return n;
  };
  const atTerminator = (): boolean => {
    const c = peekc();
    if (c === undefined || isSpace(c)) return true;
    return '.,|:)('.includes(c) || input.startsWith(RIGHT, pos);
  };

  type State = (() => State) | null;
  const lexText = (): State => {
    const x = input.indexOf(LEFT, pos);
    if (x >= 0) {
      pos = x;
      let trim = 0;
      if (hasLeftTrim(pos + LEFT.length)) {
        const text = input.slice(start, pos);
        trim = text.length - text.replace(/[ \t\r\n]+$/, '').length;
      }
      pos -= trim;
      if (pos > start) emit('text');
      pos += trim;
      start = pos;
      return lexLeftDelim;
    }
    pos = input.length;
    if (pos > start) emit('text');
    emit('eof');
    return null;
  };
  const lexLeftDelim = (): State => {
    pos += LEFT.length;
    const trim = hasLeftTrim(pos);
    const after = trim ? 2 : 0;
    if (input.startsWith('/*', pos + after)) {
      pos += after;
      start = pos;
      return lexComment;
    }
    emit('leftDelim');
    pos += after;
    start = pos;
    parenDepth = 0;
    return lexInsideAction;
  };
  const lexComment = (): State => {
    pos += 2;
    const x = input.indexOf('*/', pos);
    if (x < 0) return error('unclosed comment');
    pos = x + 2;
    const { delim, trim } = atRightDelim();
    if (!delim) return error('comment ends before closing delimiter');
    emit('comment');
    if (trim) pos += 2;
    pos += RIGHT.length;
    if (trim) pos += leftTrimLength(pos);
    start = pos;
    return lexText;
  };
  const lexRightDelim = (): State => {
    const trim = hasRightTrim(pos);
    if (trim) {
      pos += 2;
      start = pos;
    }
    pos += RIGHT.length;
    emit('rightDelim');
    if (trim) {
      pos += leftTrimLength(pos);
      start = pos;
    }
    return lexText;
  };
  const lexInsideAction = (): State => {
    if (atRightDelim().delim) {
      if (parenDepth === 0) return lexRightDelim;
      return error('unclosed left paren');
    }
    const r = next();
    if (r === undefined) return error('unclosed action');
    if (isSpace(r)) {
      backup(r);
      return lexSpace;
    }
    switch (r) {
      case '=':
        emit('assign');
        return lexInsideAction;
      case ':':
        if (next() !== '=') return error('expected :=');
        emit('declare');
        return lexInsideAction;
      case '|':
        emit('pipe');
        return lexInsideAction;
      case '"':
        return lexQuote;
      case '`':
        return lexRawQuote;
      case '$':
        return lexVariable;
      case "'":
        return lexChar;
      case '(':
        emit('leftParen');
        parenDepth++;
        return lexInsideAction;
      case ')':
        emit('rightParen');
        parenDepth--;
        if (parenDepth < 0) return error(`unexpected right paren ${unicodeName(r)}`);
        return lexInsideAction;
      default:
    }
    if (r === '.') {
      const c = peekc();
      if (c === undefined || c < '0' || c > '9') return lexField;
    }
    if (r === '.' || r === '+' || r === '-' || (r >= '0' && r <= '9')) {
      backup(r);
      return lexNumber;
    }
    if (isAlphaNumeric(r)) {
      backup(r);
      return lexIdentifier;
    }
    if (r.length === 1 && r.charCodeAt(0) >= 0x20 && r.charCodeAt(0) < 0x7f) {
      emit('char');
      return lexInsideAction;
    }
    return error(`unrecognized character in action: ${unicodeName(r)}`);
  };
  const lexSpace = (): State => {
    let n = 0;
    while (isSpace(peekc())) {
      pos++;
      n++;
    }
    if (hasRightTrim(pos - 1) && input.startsWith(RIGHT, pos - 1 + 2)) {
      pos--;
      if (n === 1) return lexRightDelim;
    }
    emit('space');
    return lexInsideAction;
  };
  const lexIdentifier = (): State => {
    for (;;) {
      const r = next();
      if (isAlphaNumeric(r)) continue;
      backup(r);
      const word = input.slice(start, pos);
      if (!atTerminator()) return error(`bad character ${unicodeName(r ?? '')}`);
      const kw = KEYWORDS.get(word);
      if (kw !== undefined) emit(kw);
      else if (word[0] === '.') emit('field');
      else if (word === 'true' || word === 'false') emit('bool');
      else emit('identifier');
      return lexInsideAction;
    }
  };
  const lexFieldOrVariable = (typ: 'field' | 'variable'): State => {
    if (atTerminator()) {
      emit(typ === 'variable' ? 'variable' : 'dot');
      return lexInsideAction;
    }
    let r: string | undefined;
    for (;;) {
      r = next();
      if (!isAlphaNumeric(r)) {
        backup(r);
        break;
      }
    }
    if (!atTerminator()) return error(`bad character ${unicodeName(r ?? '')}`);
    emit(typ);
    return lexInsideAction;
  };
  const lexField = (): State => lexFieldOrVariable('field');
  const lexVariable = (): State => {
    if (atTerminator()) {
      emit('variable');
      return lexInsideAction;
    }
    return lexFieldOrVariable('variable');
  };
  const lexQuoted = (close: string, what: string, typ: ItemType): State => {
    for (;;) {
      let c = next();
      if (c === '\\') {
        c = next();
        if (c !== undefined && c !== '\n') continue;
      }
      if (c === undefined || c === '\n') return error(`unterminated ${what}`);
      if (c === close) break;
    }
    emit(typ);
    return lexInsideAction;
  };
  const lexQuote = (): State => lexQuoted('"', 'quoted string', 'string');
  const lexChar = (): State => lexQuoted("'", 'character constant', 'charConstant');
  const lexRawQuote = (): State => {
    const x = input.indexOf('`', pos);
    if (x < 0) {
      pos = input.length;
      return error('unterminated raw quoted string');
    }
    pos = x + 1;
    emit('rawString');
    return lexInsideAction;
  };
  const scanNumber = (): boolean => {
    accept('+-');
    let digits = '0123456789_';
    if (accept('0')) {
      if (accept('xX')) digits = '0123456789abcdefABCDEF_';
      else if (accept('oO')) digits = '01234567_';
      else if (accept('bB')) digits = '01_';
    }
    acceptRun(digits);
    if (accept('.')) acceptRun(digits);
    if (digits.length === 11 && accept('eE')) {
      accept('+-');
      acceptRun('0123456789_');
    }
    if (digits.length === 23 && accept('pP')) {
      accept('+-');
      acceptRun('0123456789_');
    }
    accept('i');
    if (isAlphaNumeric(peekc())) {
      next();
      return false;
    }
    return true;
  };
  const lexNumber = (): State => {
    if (!scanNumber()) return error(`bad number syntax: ${JSON.stringify(input.slice(start, pos))}`);
    const sign = peekc();
    if (sign === '+' || sign === '-') {
      if (!scanNumber() || input[pos - 1] !== 'i') return error(`bad number syntax: ${JSON.stringify(input.slice(start, pos))}`);
      emit('complex');
    } else emit('number');
    return lexInsideAction;
  };

  let state: State = lexText;
  while (state) state = state();
  return items;
}
