/**
 * Go's `fmt.Sprintf` for template values: verbs %v %+v %s %q %d %t %x %X %o %O %b %c %U %e %E %f %F
 * %g %G %T %%, flags `-+# 0`, width and precision (also `*`), and fmt's own error marks
 * (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`, `%!(NOVERB)`).
 */
import { goQuote, goQuoteRune } from './quote.js';
import { entriesOf, formatFloat, formatValue, kindOf, numberOf, typeName } from './value.js';

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width?: number;
  prec?: number;
}

const runeLen = (s: string): number => [...s].length;

function pad(s: string, f: Spec, zeroOk = true): string {
  if (f.width === undefined) return s;
  const n = f.width - runeLen(s);
  if (n <= 0) return s;
  if (f.minus) return s + ' '.repeat(n);
  if (f.zero && zeroOk) {
    const sign = /^[+\- ]/.test(s) ? s[0]! : '';
    return sign + '0'.repeat(n) + s.slice(sign.length);
  }
  return ' '.repeat(n) + s;
}

function fmtInteger(v: number, base: number, verb: string, f: Spec): string {
  const neg = v < 0;
  let digits = Math.abs(v).toString(base);
  if (verb === 'X') digits = digits.toUpperCase();
  if (f.prec !== undefined) {
    if (f.prec === 0 && v === 0) digits = '';
    digits = digits.padStart(f.prec, '0');
  } else if (f.zero && !f.minus && f.width !== undefined) {
    let w = f.width - (neg || f.plus || f.space ? 1 : 0);
    if (f.sharp && (base === 16 || base === 2)) w -= 2;
    else if (f.sharp && base === 8 && !digits.startsWith('0')) w -= 1;
    if (verb === 'O') w -= 2;
    digits = digits.padStart(w, '0');
  }
  let prefix = '';
  if (f.sharp) {
    if (base === 8 && !digits.startsWith('0')) prefix = '0';
    else if (base === 16) prefix = verb === 'X' ? '0X' : '0x';
    else if (base === 2) prefix = '0b';
  }
  if (verb === 'O') prefix = '0o';
  const sign = neg ? '-' : f.plus ? '+' : f.space ? ' ' : '';
  return pad(sign + prefix + digits, { ...f, zero: false });
}

function fmtFloatVerb(v: number, verb: string, f: Spec): string {
  const lower = verb.toLowerCase();
  const kind = lower === 'v' ? 'g' : (lower as 'e' | 'f' | 'g');
  const prec = f.prec ?? (kind === 'g' ? -1 : 6);
  let s = formatFloat(v, kind, prec);
  if (verb === 'E' || verb === 'G') s = s.toUpperCase();
  if (f.plus && !s.startsWith('-') && !s.startsWith('+')) s = `+${s}`;
  else if (f.space && !s.startsWith('-')) s = ` ${s}`;
  if (s === '+Inf' && !f.plus) s = f.space ? ' Inf' : 'Inf';
  return pad(s, f, Number.isFinite(v));
}

function hexString(s: string, verb: string, f: Spec): string {
  const bytes = [...Buffer.from(s, 'utf8')];
  const lim = f.prec !== undefined ? bytes.slice(0, f.prec) : bytes;
  const hex = (b: number): string => (verb === 'X' ? b.toString(16).toUpperCase() : b.toString(16)).padStart(2, '0');
  const pre = f.sharp ? (verb === 'X' ? '0X' : '0x') : '';
  const out = f.space ? lim.map((b) => pre + hex(b)).join(' ') : pre + lim.map(hex).join('');
  return pad(out, f);
}

function badVerb(verb: string, v: unknown): string {
  if (v === null || v === undefined) return `%!${verb}(<nil>)`;
  return `%!${verb}(${typeName(v)}=${formatValue(v, false)})`;
}

function formatArg(v: unknown, verb: string, f: Spec, depth = 0): string {
  if (verb === 'T') return pad(typeName(v), f);
  const k = kindOf(v);
  switch (k) {
    case 'invalid':
    case 'nil':
      return verb === 'v' ? pad('<nil>', f) : badVerb(verb, v);
    case 'bool':
      return verb === 'v' || verb === 't' ? pad(String(v), f) : badVerb(verb, v);
    case 'int': {
      const n = numberOf(v);
      switch (verb) {
        case 'v':
        case 'd':
          return fmtInteger(n, 10, verb, f);
        case 'b':
          return fmtInteger(n, 2, verb, f);
        case 'o':
        case 'O':
          return fmtInteger(n, 8, verb, f);
        case 'x':
        case 'X':
          return fmtInteger(n, 16, verb, f);
        case 'c':
          return pad(String.fromCodePoint(n >= 0 && n <= 0x10ffff ? n : 0xfffd), f);
        case 'q':
          return pad(goQuoteRune(n >= 0 && n <= 0x10ffff ? n : 0xfffd, f.plus), f);
        case 'U': {
          const u = `U+${n.toString(16).toUpperCase().padStart(f.prec ?? 4, '0')}`;
          return pad(f.sharp && n >= 0 && n <= 0x10ffff ? `${u} '${String.fromCodePoint(n)}'` : u, { ...f, zero: false });
        }
        case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
          return badVerb(verb, v);
        default:
          return badVerb(verb, v);
      }
    }
    case 'float':
      if ('veEfFgG'.includes(verb)) return fmtFloatVerb(numberOf(v), verb, f);
      return badVerb(verb, v);
    case 'string': {
      const s = v as string;
      switch (verb) {
        case 'v':
          if (f.sharp) return pad(goQuote(s), f);
          return pad(f.prec !== undefined ? [...s].slice(0, f.prec).join('') : s, f);
        case 's':
          return pad(f.prec !== undefined ? [...s].slice(0, f.prec).join('') : s, f);
        case 'q': {
          const t = f.prec !== undefined ? [...s].slice(0, f.prec).join('') : s;
          if (f.sharp && !/[`\x00-\x08\x0a-\x1f\x7f\ufeff]/.test(t)) return pad(`\`${t}\``, f);
          return pad(goQuote(t, f.plus), f);
        }
        case 'x':
        case 'X':
          return hexString(s, verb, f);
        default:
          return badVerb(verb, v);
      }
    }
    case 'slice':
      return `[${(v as unknown[]).map((x) => formatArg(x, verb, f, depth + 1)).join(' ')}]`;
    case 'map':
      return `map[${entriesOf(v as object).map(([key, x]) => `${formatArg(key, verb, f, depth + 1)}:${formatArg(x, verb, f, depth + 1)}`).join(' ')}]`;
    case 'struct':
      return `{${entriesOf(v as object).map(([key, x]) => (f.plus && verb === 'v' ? `${key}:` : '') + formatArg(x, verb, f, depth + 1)).join(' ')}}`;
    default:
      return verb === 'v' || verb === 'p' ? pad('0x0', f) : badVerb(verb, v);
  }
}

/** `fmt.Sprintf(format, args...)`. */
export function sprintf(format: string, args: readonly unknown[]): string {
  let out = '';
  let argi = 0;
  let i = 0;
  while (i < format.length) {
    const c = format[i]!;
    if (c !== '%') {
      out += c;
      i++;
      continue;
    }
    i++;
    const f: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false };
    for (; i < format.length; i++) {
      const fl = format[i];
      if (fl === '-') {
        f.minus = true;
        f.zero = false;
      } else if (fl === '+') f.plus = true;
      else if (fl === '#') f.sharp = true;
      else if (fl === ' ') f.space = true;
      else if (fl === '0') f.zero = !f.minus;
      else break;
    }
    const readNum = (): number | undefined => {
      const m = /^\d+/.exec(format.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      return Number(m[0]);
    };
    let bad = '';
    if (format[i] === '*') {
      i++;
      const w = args[argi++];
      if (kindOf(w) === 'int') {
        f.width = numberOf(w);
        if (f.width < 0) {
          f.minus = true;
          f.zero = false;
          f.width = -f.width;
        }
      } else bad += '%!(BADWIDTH)';
    } else f.width = readNum();
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        i++;
        const p = args[argi++];
        if (kindOf(p) === 'int' && numberOf(p) >= 0) f.prec = numberOf(p);
        else bad += '%!(BADPREC)';
      } else f.prec = readNum() ?? 0;
    }
    out += bad;
    if (i >= format.length) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const arg = args[argi++];
    if (verb === 'v' && f.sharp && kindOf(arg) !== 'string') out += formatArg(arg, 'v', { ...f, sharp: false });
    else out += formatArg(arg, verb, f);
  }
  if (argi < args.length) {
    out += `%!(EXTRA ${args.slice(argi).map((a) => (a === null || a === undefined ? '<nil>' : `${typeName(a)}=${formatValue(a, false)}`)).join(', ')})`;
  }
  return out;
}

/** `fmt.Sprint(args...)`: a space between operands when neither is a string. */
export function sprint(args: readonly unknown[]): string {
  let out = '';
  args.forEach((a, k) => {
    if (k > 0 && typeof a !== 'string' && typeof args[k - 1] !== 'string') out += ' ';
    out += formatValue(a, false);
  });
  return out;
}

/** `fmt.Sprintln(args...)`: spaces between all operands and a newline. */
export function sprintln(args: readonly unknown[]): string {
  return `${args.map((a) => formatValue(a, false)).join(' ')}\n`;
}
