/**
 * `images --filter` as Docker's daemon applies it: `dangling=true|false`, `label=k` / `label=k=v`
 * (every one must hold), `before=`/`since=` an image (created earlier / later than it), and
 * `reference=` globs matched against `name:tag` and `name` (a tag that does not match is not
 * listed; untagged images are left out).
 */
import { InvalidArgumentError } from '../errors.js';
import { matchLabels, pathMatchRegExp } from '../image/filters.js';
import { findImage } from './images.js';
import type { OciStore } from './store.js';

export type Filters = ReadonlyMap<string, readonly string[]>;

export const IMAGE_FILTER_KEYS = ['before', 'dangling', 'label', 'reference', 'since'] as const;

export interface ImageCandidate {
  /** Familiar repository and tag; undefined when the entry is untagged. */
  repo?: string;
  tag?: string;
  created?: string;
  labels?: Readonly<Record<string, string>>;
}

export async function imageFilter(store: OciStore, filters: Filters): Promise<(c: ImageCandidate) => boolean> {
  let dangling: boolean | undefined;
  const d = filters.get('dangling');
  if (d) {
    if (d.includes('true')) dangling = true;
    else if (d.includes('false')) dangling = false;
    else throw new InvalidArgumentError(`Invalid filter 'dangling=[${d.join(' ')}]'`);
  }
  const timeOf = async (values: readonly string[] | undefined): Promise<number | undefined> => {
    let t: number | undefined;
    for (const v of values ?? []) t = Date.parse((await findImage(store, v)).config.created ?? '') || 0;
    return t;
  };
  const before = await timeOf(filters.get('before'));
  const since = await timeOf(filters.get('since'));
  const refs = filters.get('reference')?.map(pathMatchRegExp);
  const labels = filters.get('label');
  return (c) => {
    const untagged = c.repo === undefined;
    if (dangling !== undefined && dangling !== untagged) return false;
    const created = Date.parse(c.created ?? '') || 0;
    if (before !== undefined && !(created < before)) return false;
    if (since !== undefined && !(created > since)) return false;
    if (labels && !matchLabels(labels, c.labels)) return false;
    if (refs) {
      if (untagged) return false;
      const full = `${c.repo}:${c.tag}`;
      if (!refs.some((re) => re.test(full) || re.test(c.repo!))) return false;
    }
    return true;
  };
}
