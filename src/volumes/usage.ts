/** What `volume ls --filter`, `volume prune --filter` and `system df` judge volumes by: filters and sizes. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { VolumeUsage } from './types.js';

/** The size of a directory tree: st_size of every entry but dirs, each inode once. */
export async function treeSize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) {
        await walk(p);
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      if (st.nlink > 1) {
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.size;
    }
  };
  await walk(dir);
  return total;
}

/** `volume ls --filter` and `volume prune --filter`: dangling=, name=, label=, driver=. */
export function volumeFilter(filters: readonly string[]): (v: VolumeUsage) => boolean {
  const tests: ((v: VolumeUsage) => boolean)[] = [];
  for (const f of filters) {
    const i = f.indexOf('=');
    const key = i < 0 ? f : f.slice(0, i);
    const value = i < 0 ? '' : f.slice(i + 1);
    if (i < 0) throw new InvalidArgumentError(`bad format of filter (expected name=value)`);
    switch (key) {
      case 'dangling': {
        const want = ['true', '1'].includes(value.toLowerCase()) ? true : ['false', '0'].includes(value.toLowerCase()) ? false : undefined;
        if (want === undefined) throw new InvalidArgumentError(`invalid filter 'dangling=${value}'`);
        tests.push((v) => (v.users.length === 0) === want);
        break;
      }
      case 'name':
        tests.push((v) => v.Name.includes(value));
        break;
      case 'driver':
        tests.push((v) => v.Driver === value);
        break;
      case 'label': {
        const j = value.indexOf('=');
        const [lk, lv] = j < 0 ? [value, undefined] : [value.slice(0, j), value.slice(j + 1)];
        tests.push((v) => Object.hasOwn(v.Labels, lk) && (lv === undefined || v.Labels[lk] === lv));
        break;
      }
      case 'label!': {
        const j = value.indexOf('=');
        const [lk, lv] = j < 0 ? [value, undefined] : [value.slice(0, j), value.slice(j + 1)];
        tests.push((v) => !(Object.hasOwn(v.Labels, lk) && (lv === undefined || v.Labels[lk] === lv)));
        break;
      }
      default:
        throw new InvalidArgumentError(`invalid filter '${key}'`);
    }
  }
  // Filters of one key are alternatives in Docker; of different keys, all must hold.
  const byKey = new Map<string, ((v: VolumeUsage) => boolean)[]>();
  filters.forEach((f, i) => {
    const k = f.slice(0, Math.max(0, f.indexOf('=')));
    byKey.set(k, [...(byKey.get(k) ?? []), tests[i]!]);
  });
  return (v) => [...byKey.values()].every((alts) => alts.some((t) => t(v)));
}

