/**
 * Builder flags (buildkit `instructions/bflag.go`): which `--name[=value]` flags each instruction
 * takes, their kinds, and the parsing of the flag words the line parser kept as text.
 */

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

/** An instruction's flags by kind (the kind each flag has in FLAGS). */
export interface ParsedFlags {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  arrays: Map<string, string[]>;
}

/** Optimal-string-alignment edit distance (a transposition counts as one edit). */
function editDistance(a: string, b: string): number {
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

/** The closest name at most `max` edits away (BuildKit's suggestions), or undefined. */
export function suggestWithin(word: string, names: readonly string[], max: number): string | undefined {
  let best: string | undefined;
  let bestD = max + 1;
  for (const n of names) {
    const dist = editDistance(word, n);
    if (dist === 0) return undefined;
    if (dist < bestD) {
      bestD = dist;
      best = n;
    }
  }
  return best;
}

/**
 * Reports a flag error; `flag` is the text to point at (its last occurrence when `last`), or
 * undefined for the instruction as a whole.
 */
export type FlagFailure = (message: string, flag?: string, last?: boolean) => never;

/** Parses an instruction's flag words against what `keyword` (upper case) accepts. */
export function parseFlags(keyword: string, words: readonly string[], fail: FlagFailure): ParsedFlags {
  const spec = FLAGS[keyword] ?? {};
  const out: ParsedFlags = { strings: new Map(), bools: new Map(), arrays: new Map() };
  // The line parser keeps only words that start with `--` as flags.
  for (const f of words) {
    const eq = f.indexOf('=');
    const name = eq < 0 ? f.slice(2) : f.slice(2, eq);
    const value = eq < 0 ? undefined : f.slice(eq + 1);
    const kind = spec[name];
    const flag = `--${name}`;
    const last = out.strings.has(name) || out.bools.has(name);
    if (!kind) {
      const owners = Object.entries(FLAGS)
        .filter(([, s]) => s[name] !== undefined)
        .map(([k]) => k);
      if (owners.length > 0) fail(`flag --${name} is not valid for ${keyword} (it belongs to ${owners.join(', ')})`, flag, last);
      const hint = suggest(name, Object.keys(spec));
      fail(`unknown flag: --${name} for ${keyword}${hint ? ` (did you mean --${hint}?)` : ''}`, flag, last);
    }
    if (kind === 'array') {
      if (value === undefined) fail(`missing a value on flag: --${name}`, flag, last);
      const arr = out.arrays.get(name) ?? [];
      arr.push(value);
      out.arrays.set(name, arr);
      continue;
    }
    if (out.strings.has(name) || out.bools.has(name)) fail(`duplicate flag specified: --${name}`, flag, last);
    if (kind === 'bool') {
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false' && value !== '') {
        fail(`expecting boolean value for flag --${name}, not: ${value}`, flag, last);
      }
      out.bools.set(name, v !== 'false');
    } else {
      if (value === undefined) fail(`missing a value on flag: --${name}`, flag, last);
      out.strings.set(name, value);
    }
  }
  return out;
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
