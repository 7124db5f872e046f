/**
 * The functions a template can call: Go's builtins (`and or not len index slice print printf
 * println eq ne lt le gt ge html js urlquery call`) and Docker's (`json split join title lower
 * upper pad truncate`, from docker/cli's `templates` package), plus the header variants Docker
 * uses to render a `table` format's first line.
 */
import type { FuncMap, TemplateFunc } from './exec.js';
import { FuncError } from './exec.js';
import { sprint, sprintf, sprintln } from './printf.js';
import { entriesOf, formatValue, isTrue, kindOf, numberOf, toJson, typeName } from './value.js';

type Basic = 'bool' | 'int' | 'float' | 'string';

function basicKind(v: unknown): Basic {
  const k = kindOf(v);
  if (k === 'bool' || k === 'int' || k === 'float' || k === 'string') return k;
  throw new FuncError('invalid type for comparison');
}

function eq(a: unknown, ...rest: unknown[]): boolean {
  if (rest.length === 0) throw new FuncError('missing argument for comparison');
  const norm = (v: unknown): unknown => (v === null ? undefined : v);
  const x = norm(a);
  for (const r of rest) {
    const y = norm(r);
    const kx = kindOf(x);
    const ky = kindOf(y);
    const bx = kx === 'bool' || kx === 'int' || kx === 'float' || kx === 'string';
    const by = ky === 'bool' || ky === 'int' || ky === 'float' || ky === 'string';
    if (bx && by) {
      if (kx !== ky) throw new FuncError('incompatible types for comparison');
      if ((kx === 'int' || kx === 'float' ? numberOf(x) === numberOf(y) : x === y)) return true;
      continue;
    }
    if (x !== undefined && y !== undefined) {
      if (bx !== by) throw new FuncError('incompatible types for comparison');
      throw new FuncError(`non-comparable type ${formatValue(y, false)}: ${typeName(y)}`);
    }
    if (x === undefined && y === undefined) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const ka = basicKind(a === null ? undefined : a);
  const kb = basicKind(b === null ? undefined : b);
  if (ka !== kb) throw new FuncError('incompatible types for comparison');
  if (ka === 'bool') throw new FuncError('invalid type for comparison');
  if (ka === 'string') return Buffer.compare(Buffer.from(a as string), Buffer.from(b as string)) < 0;
  return numberOf(a) < numberOf(b);
}

function indexArg(i: unknown, cap: number): number {
  const k = kindOf(i);
  if (k === 'invalid' || k === 'nil') throw new FuncError('cannot index slice/array with nil');
  if (k !== 'int') throw new FuncError(`cannot index slice/array with type ${typeName(i)}`);
  const x = numberOf(i);
  if (x < 0 || x > cap) throw new FuncError(`index out of range: ${x}`);
  return x;
}

function index(item: unknown, ...indexes: unknown[]): unknown {
  let cur = item;
  if (cur === undefined || cur === null) throw new FuncError('index of untyped nil');
  for (const ix of indexes) {
    const k = kindOf(cur);
    if (k === 'nil') throw new FuncError('index of nil pointer');
    if (k === 'slice' || k === 'string') {
      const len = k === 'string' ? Buffer.byteLength(cur as string) : (cur as unknown[]).length;
      const x = indexArg(ix, len);
      if (x >= len) throw new FuncError(`reflect: ${k === 'string' ? 'string' : 'slice'} index out of range`);
      cur = k === 'string' ? Buffer.from(cur as string)[x] : (cur as unknown[])[x];
    } else if (k === 'map') {
      if (ix === undefined || ix === null) throw new FuncError('value is nil; should be of type string');
      if (typeof ix !== 'string') throw new FuncError(`value has type ${typeName(ix)}; should be string`);
      cur = Object.prototype.hasOwnProperty.call(cur, ix) ? (cur as Record<string, unknown>)[ix] : null;
    } else throw new FuncError(`can't index item of type ${typeName(cur)}`);
  }
  return cur;
}

function slice(item: unknown, ...indexes: unknown[]): unknown {
  if (item === undefined || item === null) throw new FuncError('slice of untyped nil');
  if (indexes.length > 3) throw new FuncError(`too many slice indexes: ${indexes.length}`);
  const k = kindOf(item);
  let len: number;
  if (k === 'string') {
    if (indexes.length === 3) throw new FuncError('cannot 3-index slice a string');
    len = Buffer.byteLength(item as string);
  } else if (k === 'slice') len = (item as unknown[]).length;
  else throw new FuncError(`can't slice item of type ${typeName(item)}`);
  const idx = [0, len, len];
  indexes.forEach((ix, i) => {
    idx[i] = indexArg(ix, len);
  });
  if (idx[0]! > idx[1]!) throw new FuncError(`invalid slice index: ${idx[0]} > ${idx[1]}`);
  if (indexes.length === 3 && idx[1]! > idx[2]!) throw new FuncError(`invalid slice index: ${idx[1]} > ${idx[2]}`);
  if (k === 'string') return Buffer.from(item as string).subarray(idx[0], idx[1]).toString('utf8');
  return (item as unknown[]).slice(idx[0], idx[1]);
}

function length(item: unknown): number {
  const k = kindOf(item);
  if (k === 'invalid') throw new FuncError('reflect: call of reflect.Value.Type on zero Value');
  if (k === 'nil') throw new FuncError('len of nil pointer');
  if (k === 'string') return Buffer.byteLength(item as string);
  if (k === 'slice') return (item as unknown[]).length;
  if (k === 'map') return entriesOf(item as object).length;
  throw new FuncError(`len of type ${typeName(item)}`);
}

const evalArgs = (args: unknown[]): string => (args.length === 1 && typeof args[0] === 'string' ? args[0] : sprint(args));

function htmlEscape(s: string): string {
  return s.replace(/[&'<>"\0]/g, (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;', '\0': '\uFFFD' })[c]!);
}

function jsEscape(s: string): string {
  let out = '';
  for (const c of s) {
    const cp = c.codePointAt(0)!;
    if (c === '\\') out += '\\\\';
    else if (c === "'") out += "\\'";
    else if (c === '"') out += '\\"';
    else if ('<>&='.includes(c)) out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else if (cp < 0x20) out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else if (cp >= 0x80 && !/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(c)) out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += c;
  }
  return out;
}

function queryEscape(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-_.~]/.test(c)) return c;
      if (c === ' ') return '+';
      return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

/** Go's `strings.Title`: upper-cases the first letter of each word. */
export function title(s: string): string {
  let prev = ' ';
  let out = '';
  for (const c of s) {
    const sep = /[0-9A-Za-z_]/.test(prev) ? false : prev.charCodeAt(0) < 0x80 ? true : /\p{L}|\p{Nd}/u.test(prev) ? false : /\s/u.test(prev);
    out += sep ? c.toUpperCase() : c;
    prev = c;
  }
  return out;
}

const f = (params: TemplateFunc['params'], fn: TemplateFunc['fn'], variadic?: TemplateFunc['variadic']): TemplateFunc => ({ params, fn, ...(variadic ? { variadic } : {}) });

export const BUILTINS: FuncMap = new Map<string, TemplateFunc>([
  ['and', f(['value'], () => undefined, 'value')],
  ['or', f(['value'], () => undefined, 'value')],
  ['not', f(['value'], (v) => !isTrue(v))],
  ['len', f(['value'], length)],
  ['index', f(['value'], index, 'value')],
  ['slice', f(['value'], slice, 'value')],
  ['print', f([], (...a) => sprint(a), 'any')],
  ['printf', f(['string'], (fmt, ...a) => sprintf(fmt as string, a), 'any')],
  ['println', f([], (...a) => sprintln(a), 'any')],
  ['eq', f(['value'], eq, 'value')],
  ['ne', f(['value', 'value'], (a, b) => !eq(a, b))],
  ['lt', f(['value', 'value'], lt)],
  ['le', f(['value', 'value'], (a, b) => lt(a, b) || eq(a, b))],
  ['gt', f(['value', 'value'], (a, b) => !(lt(a, b) || eq(a, b)))],
  ['ge', f(['value', 'value'], (a, b) => !lt(a, b))],
  ['html', f([], (...a) => htmlEscape(evalArgs(a)), 'any')],
  ['js', f([], (...a) => jsEscape(evalArgs(a)), 'any')],
  ['urlquery', f([], (...a) => queryEscape(evalArgs(a)), 'any')],
  [
    'call',
    f(['value'], (fn, ...a) => {
      if (typeof fn !== 'function') throw new FuncError(`non-function of type ${typeName(fn)}`);
      return (fn as (...x: unknown[]) => unknown)(...a);
    }, 'value'),
  ],
]);

/** Docker's template functions (docker/cli `templates.basicFunctions`). */
export const DOCKER_FUNCS: FuncMap = new Map<string, TemplateFunc>([
  ['json', f(['any'], (v) => toJson(v))],
  ['split', f(['string', 'string'], (s, sep) => (sep === '' ? [...(s as string)] : (s as string).split(sep as string)))],
  ['join', f(['[]string', 'string'], (a, sep) => ((a as string[] | null) ?? []).join(sep as string))],
  ['title', f(['string'], (s) => title(s as string))],
  ['lower', f(['string'], (s) => (s as string).toLowerCase())],
  ['upper', f(['string'], (s) => (s as string).toUpperCase())],
  ['pad', f(['string', 'int', 'int'], (s, pre, suf) => (s === '' ? s : ' '.repeat(Math.max(0, pre as number)) + (s as string) + ' '.repeat(Math.max(0, suf as number))))],
  [
    'truncate',
    f(['string', 'int'], (s, n) => {
      const b = Buffer.from(s as string, 'utf8');
      if (b.length < (n as number)) return s;
      if ((n as number) < 0) throw new FuncError(`runtime error: slice bounds out of range [:${n as number}]`);
      return b.subarray(0, n as number).toString('utf8');
    }),
  ],
]);

/** Docker's `HeaderFunctions`: a table's header line runs the same template with these, over the column names. */
export const DOCKER_HEADER_FUNCS: FuncMap = new Map<string, TemplateFunc>([
  ['json', f(['string'], (v) => v)],
  ['split', f(['string', 'string'], (v) => v)],
  ['join', f(['string', 'string'], (v) => v)],
  ['title', f(['string'], (v) => v)],
  ['lower', f(['string'], (v) => v)],
  ['upper', f(['string'], (v) => v)],
  ['pad', f(['string', 'int', 'int'], (v) => v)],
  ['truncate', f(['string', 'int'], (v) => v)],
]);
