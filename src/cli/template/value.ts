/**
 * The Go values a template sees, modelled on plain JavaScript data: `undefined` is Go's invalid
 * value (printed `<no value>`), `null` is nil, an integral number is an `int`, a non-integral one
 * (or a `GoFloat`) a `float64`, an array a slice, a plain object a map (printed with sorted keys),
 * and an object carrying `GO_TYPE` a struct of that type (a missing field is an error; function
 * properties are its methods). This file prints them as Go's fmt does with `%v`.
 */

/** Marks an object as a Go struct; the value is its type's name as Go prints it (`*formatter.ContainerContext`). */
export const GO_TYPE = Symbol.for('imgbuild.template.goType');

/**
 * Marks a plain object (still a map to the template) that stands for a Go struct when marshalled:
 * `json` keeps its keys in their order, as encoding/json keeps a struct's fields.
 */
export const STRUCT_ORDER = Symbol.for('imgbuild.template.structOrder');

/** A float64 whose value happens to be integral (`1.0` in a template), kept apart from ints as Go does. */
export class GoFloat {
  constructor(readonly value: number) {}
}

export type Kind = 'invalid' | 'nil' | 'bool' | 'int' | 'float' | 'string' | 'slice' | 'map' | 'struct' | 'func';

export function kindOf(v: unknown): Kind {
  if (v === undefined) return 'invalid';
  if (v === null) return 'nil';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (v instanceof GoFloat) return 'float';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'slice';
  if (typeof v === 'function') return 'func';
  if (typeof v === 'object' && (v as Record<symbol, unknown>)[GO_TYPE] !== undefined) return 'struct';
  return 'map';
}

export function numberOf(v: unknown): number {
  return v instanceof GoFloat ? v.value : Number(v);
}

/** The Go type name of a value, for error messages (`string`, `int`, `map[string]interface {}`). */
export function typeName(v: unknown): string {
  switch (kindOf(v)) {
    case 'invalid':
    case 'nil':
      return '<nil>';
    case 'bool':
      return 'bool';
    case 'int':
      return 'int';
    case 'float':
      return 'float64';
    case 'string':
      return 'string';
    case 'slice':
      return (v as unknown[]).length > 0 && (v as unknown[]).every((x) => typeof x === 'string') ? '[]string' : '[]interface {}';
    case 'func':
      return 'func()';
    case 'struct':
      return String((v as Record<symbol, unknown>)[GO_TYPE]);
    default:
      return 'map[string]interface {}';
  }
}

/** The enumerable, non-function entries of a map or struct (a struct's fields in their order). */
export function entriesOf(v: object): [string, unknown][] {
  const e = Object.entries(v).filter(([, x]) => typeof x !== 'function');
  return kindOf(v) === 'struct' ? e : e.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Go's `strconv.FormatFloat(f, fmt, prec, 64)` for 'e', 'f' and 'g' (prec -1: shortest). */
export function formatFloat(f: number, fmt: 'e' | 'f' | 'g', prec: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  const expFix = (s: string): string => s.replace(/e([+-])(\d)$/, 'e$10$2');
  if (fmt === 'e') return expFix(prec < 0 ? f.toExponential() : f.toExponential(Math.min(prec, 100)));
  if (fmt === 'f') {
    if (prec < 0) {
      const s = String(Math.abs(f));
      if (!s.includes('e')) return String(f);
      return f.toFixed(Math.min(100, Math.max(0, (/e-(\d+)/.exec(s)?.[1] ? Number(/e-(\d+)/.exec(s)![1]) : 0) + ((/\.(\d+)e/.exec(s)?.[1] ?? '').length))));
    }
    return f.toFixed(Math.min(prec, 100));
  }
  // 'g': %e when the exponent is < -4 or >= the precision (6 for the shortest form).
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  let digits: string;
  let exp: number;
  if (prec < 0) {
    const [m, e] = Math.abs(f).toExponential().split('e');
    digits = m!.replace('.', '');
    exp = Number(e);
  } else {
    const p = prec === 0 ? 1 : prec;
    const [m, e] = Math.abs(f).toExponential(Math.min(p - 1, 100)).split('e');
    digits = m!.replace('.', '').replace(/0+$/, '') || '0';
    exp = Number(e);
  }
  const eprec = prec < 0 ? 6 : prec === 0 ? 1 : prec;
  const sign = f < 0 ? '-' : '';
  if (exp < -4 || exp >= (prec < 0 && digits.length > eprec ? eprec : eprec)) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/** A value as `fmt.Sprint` prints it (`%v`); `undefined` at the top prints `<no value>` as templates do. */
export function formatValue(v: unknown, top = true): string {
  switch (kindOf(v)) {
    case 'invalid':
      return top ? '<no value>' : '<nil>';
    case 'nil':
      return '<nil>';
    case 'string':
      return v as string;
    case 'int':
    case 'bool':
      return String(v);
    case 'float':
      return formatFloat(numberOf(v), 'g', -1);
    case 'slice':
      return `[${(v as unknown[]).map((x) => formatValue(x, false)).join(' ')}]`;
    case 'struct':
      return `{${entriesOf(v as object).map(([, x]) => formatValue(x, false)).join(' ')}}`;
    case 'func':
      return '0x0';
    default:
      return `map[${entriesOf(v as object).map(([k, x]) => `${k}:${formatValue(x, false)}`).join(' ')}]`;
  }
}

/** Go's template truth: false, 0, nil, and empty strings, slices and maps are false. */
export function isTrue(v: unknown): boolean {
  switch (kindOf(v)) {
    case 'invalid':
    case 'nil':
      return false;
    case 'bool':
      return v as boolean;
    case 'int':
    case 'float':
      return numberOf(v) !== 0;
    case 'string':
      return (v as string).length > 0;
    case 'slice':
      return (v as unknown[]).length > 0;
    case 'map':
      return entriesOf(v as object).length > 0;
    default:
      return true;
  }
}

/** Docker's `json` function: `json.Marshal` without HTML escaping (Go's escapes for the rest). */
export function toJson(v: unknown): string {
  const s = JSON.stringify(v === undefined ? null : v, (_k, x: unknown) => {
    if (x instanceof GoFloat) return x.value;
    if (typeof x === 'bigint') return Number(x);
    // Maps marshal with sorted keys; structs (and objects with their own toJSON) in their order.
    if (kindOf(x) === 'map' && typeof (x as { toJSON?: unknown }).toJSON !== 'function' && !(x as Record<symbol, unknown>)[STRUCT_ORDER]) {
      return Object.fromEntries(entriesOf(x as object));
    }
    return x;
  });
  // A value with its own toJSON stands for a Go type with MarshalJSON, whose json.Marshal escapes HTML.
  const own = typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function';
  const text = own ? (s ?? 'null').replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) : s;
  return (text ?? 'null').replace(/(?<!\\)((?:\\\\)*)\\([bf])/g, (_m, pre: string, c: string) => `${pre}\\u000${c === 'b' ? '8' : 'c'}`).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
