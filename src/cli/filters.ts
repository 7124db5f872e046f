/**
 * `--filter key=value` arguments as docker/cli reads them: the key lower-cased and trimmed, the
 * value trimmed, repeated keys collected; a key the command does not know is Docker's one-line
 * `Invalid filter 'x'` (docker 20.10's words).
 */
import { InvalidArgumentError as UsageError } from 'commander';
import { InvalidArgumentError } from '../errors.js';

export type Filters = ReadonlyMap<string, readonly string[]>;

/** Commander's collector for a repeatable `--filter`; a value without `=` is a usage error, as in docker. */
export const collectFilter = (v: string, acc: string[]): string[] => {
  if (!v.includes('=')) throw new UsageError('bad format of filter (expected name=value)');
  return [...acc, v];
};

export function parseFilters(values: readonly string[], accepted: readonly string[]): Filters {
  const out = new Map<string, string[]>();
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq < 0) throw new InvalidArgumentError('bad format of filter (expected name=value)');
    const key = v.slice(0, eq).trim().toLowerCase();
    const value = v.slice(eq + 1).trim();
    if (!accepted.includes(key)) throw new InvalidArgumentError(`Invalid filter '${key}'`);
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}
