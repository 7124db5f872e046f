/**
 * `COPY/ADD --chmod=`: an octal mode from 0 to 07777, or a symbolic one as chmod(1) writes it
 * (`u+x`, `go-w`, `u=rw,g=r,o=r`, `a+X`, `g=u`), as BuildKit accepts both (its error text kept).
 * A symbolic mode changes each copied entry's own mode; `X` adds execute only to directories
 * and to files that have an execute bit already.
 */
import { InvalidArgumentError } from '../../errors.js';

/** A symbolic --chmod: the new mode of an entry from its mode and type. */
export interface SymbolicChmod {
  symbolic: string;
  apply(mode: number, isDir: boolean): number;
}

export type ChmodSpec = number | SymbolicChmod;

function notOctal(s: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid chmod parameter: '${s}'. it should be octal string and between 0 and 07777`);
}

/** An octal --chmod (0 to 07777). */
export function parseOctalChmod(s: string): number {
  if (!/^[0-7]+$/.test(s)) throw notOctal(s);
  const n = parseInt(s, 8);
  if (n > 0o7777) throw notOctal(s);
  return n;
}

/** Bits of each permission letter for u, g and o (s and t are the special bits). */
const BITS: Record<'u' | 'g' | 'o', Record<string, number>> = {
  u: { r: 0o400, w: 0o200, x: 0o100, s: 0o4000 },
  g: { r: 0o040, w: 0o020, x: 0o010, s: 0o2000 },
  o: { r: 0o004, w: 0o002, x: 0o001, t: 0o1000 },
};
const SHIFT = { u: 6, g: 3, o: 0 } as const;

type Who = 'u' | 'g' | 'o';
interface Action {
  op: '+' | '-' | '=';
  /** Permission letters, or the class to copy from (`g=u`). */
  perms: string;
  copyFrom?: Who;
}
interface Clause {
  who: Who[];
  actions: Action[];
}

function parseSymbolic(s: string): Clause[] {
  const clauses: Clause[] = [];
  for (const part of s.split(',')) {
    const m = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/.exec(part);
    if (!m) throw new InvalidArgumentError(`invalid chmod parameter: '${s}': not an octal or symbolic mode`);
    const w = m[1]!;
    const who: Who[] = w === '' || w.includes('a') ? ['u', 'g', 'o'] : [...new Set(w.split('') as Who[])];
    const actions: Action[] = [];
    for (const a of m[2]!.matchAll(/([-+=])([ugo]|[rwxXst]*)/g)) {
      const perms = a[2]!;
      const op = a[1] as Action['op'];
      actions.push(/^[ugo]$/.test(perms) ? { op, perms: '', copyFrom: perms as Who } : { op, perms });
    }
    clauses.push({ who, actions });
  }
  return clauses;
}

function applyClauses(clauses: Clause[], start: number, isDir: boolean): number {
  let mode = start & 0o7777;
  for (const c of clauses) {
    for (const a of c.actions) {
      let bits = 0;
      for (const who of c.who) {
        if (a.copyFrom) {
          const rwx = (mode >> SHIFT[a.copyFrom]) & 0o7;
          bits |= rwx << SHIFT[who];
          continue;
        }
        for (const p of a.perms) {
          if (p === 'X') {
            if (isDir || (mode & 0o111) !== 0) bits |= BITS[who].x!;
          } else {
            bits |= BITS[who][p] ?? 0;
          }
        }
      }
      if (a.op === '+') mode |= bits;
      else if (a.op === '-') mode &= ~bits;
      else {
        let clear = 0;
        for (const who of c.who) for (const b of Object.values(BITS[who])) clear |= b;
        mode = (mode & ~clear) | bits;
      }
    }
  }
  return mode & 0o7777;
}

/** Parses --chmod: a number for an octal mode, else a symbolic mode (BuildKit's error texts). */
export function parseChmodSpec(s: string): ChmodSpec {
  // A value starting with a digit is read as octal only (BuildKit: "64a" is not a symbolic mode).
  if (/^[0-9]/.test(s)) return parseOctalChmod(s);
  const clauses = parseSymbolic(s);
  return { symbolic: s, apply: (mode, isDir) => applyClauses(clauses, mode, isDir) };
}

/** The mode an entry gets under `spec` (its own mode when there is none). */
export function chmodOf(spec: ChmodSpec | undefined, mode: number, isDir: boolean): number {
  if (spec === undefined) return mode;
  return typeof spec === 'number' ? spec : spec.apply(mode, isDir);
}
