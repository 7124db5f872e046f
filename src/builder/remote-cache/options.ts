/**
 * `build --cache-to` and `--cache-from` values, read as buildx reads them (its ParseCacheEntry):
 * CSV fields (double quotes allowed), each `key=value` with the key lower-cased, `type` naming the
 * backend; a value made only of fields without `=` is one registry ref per field (what `docker
 * build --cache-from REF` accepts). Attributes BuildKit knows but that change nothing here
 * (`image-manifest`, `oci-mediatypes`, `force-compression`) are accepted; others are refused.
 */
import { InvalidArgumentError } from '../../errors.js';
import type { Compression } from '../../image/media-types.js';
import { parseReference } from '../../image/reference.js';
import { parseBool } from '../../strconv.js';

export type CacheLocation = { type: 'registry'; ref: string } | { type: 'local'; dir: string; tag: string; digest?: string };

export interface CacheExport {
  to: CacheLocation;
  /** `min`: the steps of the image built; `max`: those of every stage. */
  mode: 'min' | 'max';
  compression: Compression;
  compressionLevel?: number;
  /** An export failure is a warning, not a failed build. */
  ignoreError: boolean;
  /** Export the content of RUN --mount=type=cache targets too (`cache-mounts=true`). */
  cacheMounts: boolean;
}

export interface CacheImport {
  from: CacheLocation;
}

/** Splits one CSV record as Go's encoding/csv does with its defaults (`"` quotes, `""` a quote). */
export function csvFields(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new InvalidArgumentError(`unterminated quote in ${JSON.stringify(s)}`);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ',') throw new InvalidArgumentError(`extraneous text after a quoted field in ${JSON.stringify(s)}`);
    } else {
      const end = s.indexOf(',', i);
      field = end < 0 ? s.slice(i) : s.slice(i, end);
      if (field.includes('"')) throw new InvalidArgumentError(`bare quote in ${JSON.stringify(s)}`);
      i = end < 0 ? s.length : end;
    }
    out.push(field);
    if (i >= s.length) return out;
    i++; // the comma
  }
}

type Attrs = Map<string, string>;

function entries(flag: string, value: string): { type: string; attrs: Attrs }[] {
  const fields = csvFields(value);
  // A list of refs alone (no field has `=`): each is a registry cache.
  if (fields.every((f) => !f.includes('='))) return fields.map((f) => ({ type: 'registry', attrs: new Map([['ref', f]]) }));
  const attrs: Attrs = new Map();
  let type = '';
  for (const f of fields) {
    const eq = f.indexOf('=');
    if (eq < 0) throw new InvalidArgumentError(`${flag}: invalid value ${JSON.stringify(f)} (key=value expected)`);
    const key = f.slice(0, eq).toLowerCase();
    if (key === 'type') type = f.slice(eq + 1);
    else attrs.set(key, f.slice(eq + 1));
  }
  if (!type) throw new InvalidArgumentError(`${flag}: type required form> ${JSON.stringify(value)}`);
  return [{ type, attrs }];
}

function bool(flag: string, key: string, v: string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  const b = parseBool(v);
  if (b !== undefined) return b;
  throw new InvalidArgumentError(`${flag}: ${key} must be true or false, not ${JSON.stringify(v)}`);
}

const IGNORED = new Set(['image-manifest', 'oci-mediatypes', 'force-compression']);

function checkKeys(flag: string, type: string, attrs: Attrs, known: string[]): void {
  for (const k of attrs.keys()) {
    if (!known.includes(k) && !IGNORED.has(k)) throw new InvalidArgumentError(`${flag}: unknown attribute ${JSON.stringify(k)} for type=${type} (${known.join(', ')})`);
  }
}

function registryRef(flag: string, attrs: Attrs): string {
  const ref = attrs.get('ref');
  if (!ref) throw new InvalidArgumentError(`${flag}: type=registry needs ref=REPOSITORY[:TAG]`);
  let digest: string | undefined;
  try {
    digest = parseReference(ref).digest;
  } catch (e) {
    throw new InvalidArgumentError(`${flag}: ref ${JSON.stringify(ref)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  // A cache is written under a tag: a digest names content already written.
  if (digest && flag === '--cache-to') throw new InvalidArgumentError(`${flag}: ref ${JSON.stringify(ref)} names a digest; a cache is written under a tag`);
  return ref;
}

function unsupported(flag: string, type: string): never {
  throw new InvalidArgumentError(`${flag}: unsupported cache type ${JSON.stringify(type)} (registry or local)`);
}

/** Reads one `--cache-to` value. */
export function parseCacheTo(value: string): CacheExport[] {
  const flag = '--cache-to';
  return entries(flag, value).map(({ type, attrs }) => {
    let to: CacheLocation;
    if (type === 'registry') {
      checkKeys(flag, type, attrs, ['ref', 'mode', 'compression', 'compression-level', 'ignore-error', 'cache-mounts']);
      to = { type, ref: registryRef(flag, attrs) };
    } else if (type === 'local') {
      checkKeys(flag, type, attrs, ['dest', 'tag', 'mode', 'compression', 'compression-level', 'ignore-error', 'cache-mounts']);
      const dir = attrs.get('dest');
      if (!dir) throw new InvalidArgumentError(`${flag}: type=local needs dest=DIR`);
      to = { type, dir, tag: attrs.get('tag') || 'latest' };
    } else unsupported(flag, type);
    const mode = attrs.get('mode') ?? 'min';
    if (mode !== 'min' && mode !== 'max') throw new InvalidArgumentError(`${flag}: mode must be min or max, not ${JSON.stringify(mode)}`);
    const c = attrs.get('compression') ?? 'gzip';
    const compression: Compression | undefined = c === 'uncompressed' ? 'none' : c === 'gzip' || c === 'zstd' ? c : undefined;
    if (!compression) throw new InvalidArgumentError(`${flag}: compression must be gzip, zstd or uncompressed, not ${JSON.stringify(c)}`);
    const lv = attrs.get('compression-level');
    let compressionLevel: number | undefined;
    if (lv !== undefined && compression !== 'none') {
      const max = compression === 'gzip' ? 9 : 22;
      if (!/^\d+$/.test(lv) || Number(lv) < 1 || Number(lv) > max) throw new InvalidArgumentError(`${flag}: compression-level for ${compression} must be 1-${max}, not ${JSON.stringify(lv)}`);
      compressionLevel = Number(lv);
    }
    return {
      to, mode, compression,
      ...(compressionLevel !== undefined ? { compressionLevel } : {}),
      ignoreError: bool(flag, 'ignore-error', attrs.get('ignore-error'), false),
      cacheMounts: bool(flag, 'cache-mounts', attrs.get('cache-mounts'), false),
    };
  });
}

/** Reads one `--cache-from` value (a bare `REF` is a registry cache). */
export function parseCacheFrom(value: string): CacheImport[] {
  const flag = '--cache-from';
  return entries(flag, value).map(({ type, attrs }) => {
    if (type === 'registry') {
      checkKeys(flag, type, attrs, ['ref']);
      return { from: { type, ref: registryRef(flag, attrs) } };
    }
    if (type === 'local') {
      checkKeys(flag, type, attrs, ['src', 'tag', 'digest']);
      const dir = attrs.get('src');
      if (!dir) throw new InvalidArgumentError(`${flag}: type=local needs src=DIR`);
      const digest = attrs.get('digest');
      return { from: { type, dir, tag: attrs.get('tag') || 'latest', ...(digest ? { digest } : {}) } };
    }
    return unsupported(flag, type);
  });
}

/** How a cache location is named in progress lines and messages. */
export function describeLocation(l: CacheLocation): string {
  return l.type === 'registry' ? l.ref : `${l.dir}${l.digest ? `@${l.digest}` : `:${l.tag}`}`;
}
