/** Go's `strconv.Quote`, `strconv.Unquote` and `UnquoteChar` as text/template and fmt's `%q` use them. */

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

function escapeRune(c: string, quote: string, asciiOnly: boolean): string {
  const cp = c.codePointAt(0)!;
  if (c === quote || c === '\\') return `\\${c}`;
  if (PRINTABLE.test(c) && (!asciiOnly || cp < 0x80)) return c;
  switch (c) {
    case '\x07': return '\\a';
    case '\b': return '\\b';
    case '\f': return '\\f';
    case '\n': return '\\n';
    case '\r': return '\\r';
    case '\t': return '\\t';
    case '\v': return '\\v';
    default:
  }
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp >= 0xd800 && cp <= 0xdfff) return '\\ufffd';
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\U${cp.toString(16).padStart(8, '0')}`;
}

/** `strconv.Quote(s)` (`asciiOnly`: `strconv.QuoteToASCII`, fmt's `%+q`). */
export function goQuote(s: string, asciiOnly = false): string {
  let out = '"';
  for (const c of s) out += escapeRune(c, '"', asciiOnly);
  return `${out}"`;
}

/** `strconv.QuoteRune(r)`. */
export function goQuoteRune(cp: number, asciiOnly = false): string {
  return `'${escapeRune(String.fromCodePoint(cp), "'", asciiOnly)}'`;
}

/** Reads one (possibly escaped) character of a quoted literal at `i`; undefined if malformed. */
function readChar(s: string, i: number, quote: string): { cp: number; next: number; byte?: boolean } | undefined {
  const c = s[i];
  if (c === undefined) return undefined;
  if (c === quote && quote === "'") return undefined;
  if (c !== '\\') {
    const cp = s.codePointAt(i)!;
    return { cp, next: i + (cp > 0xffff ? 2 : 1) };
  }
  const e = s[i + 1];
  const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 };
  if (e === undefined) return undefined;
  if (simple[e] !== undefined) return { cp: simple[e]!, next: i + 2 };
  if (e === quote) return { cp: quote.charCodeAt(0), next: i + 2 };
  const hex = (n: number): { cp: number; next: number } | undefined => {
    const h = s.slice(i + 2, i + 2 + n);
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) return undefined;
    const cp = parseInt(h, 16);
    if (n > 2 && (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) return undefined;
    return { cp, next: i + 2 + n };
  };
  if (e === 'x') {
    const r = hex(2);
    return r && { ...r, byte: true };
  }
  if (e === 'u') return hex(4);
  if (e === 'U') return hex(8);
  if (e >= '0' && e <= '7') {
    const o = s.slice(i + 1, i + 4);
    if (!/^[0-7]{3}$/.test(o)) return undefined;
    const cp = parseInt(o, 8);
    if (cp > 255) return undefined;
    return { cp, next: i + 4, byte: true };
  }
  return undefined;
}

/** `strconv.Unquote` of a `"…"` or `` `…` `` literal; undefined when it is invalid. */
export function unquoteString(lit: string): string | undefined {
  if (lit.length < 2) return undefined;
  if (lit[0] === '`') {
    if (!lit.endsWith('`')) return undefined;
    return lit.slice(1, -1).replace(/\r/g, '');
  }
  if (lit[0] !== '"' || !lit.endsWith('"')) return undefined;
  const body = lit.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < body.length; ) {
    if (body[i] === '"' || body[i] === '\n') return undefined;
    const r = readChar(body, i, '"');
    if (!r) return undefined;
    if (r.byte) bytes.push(r.cp);
    else bytes.push(...Buffer.from(String.fromCodePoint(r.cp), 'utf8'));
    i = r.next;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The code point of a `'x'` character constant; undefined when malformed. */
export function unquoteChar(lit: string): number | undefined {
  if (lit.length < 3 || lit[0] !== "'" || !lit.endsWith("'")) return undefined;
  const r = readChar(lit, 1, "'");
  if (!r || r.next !== lit.length - 1) return undefined;
  return r.cp;
}
