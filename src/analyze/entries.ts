/**
 * A layer tar read as a stream into the metadata of its entries: one record per entry (its cleaned
 * path, what it is, its size and, for a regular file with content, the sha256 of that content,
 * taken as the body streams past). Nothing of the content is kept, so memory follows the number of
 * entries, never the layer's size.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { readTar } from '../tar/reader.js';
import { cleanEntryName, WH_OPAQUE, WH_PREFIX } from '../tar/rules.js';

/**
 * What an entry is: the file types, a whiteout (`dir/.wh.name`: `name` is deleted from the layers
 * below), an opaque marker (`dir/.wh..wh..opq`: everything below `dir` in the layers below is
 * hidden), or other aufs metadata (`.wh..wh.*`, ignored, as containerd ignores it).
 */
export type EntryKind = 'file' | 'dir' | 'symlink' | 'link' | 'other' | 'whiteout' | 'opaque' | 'meta';

export interface LayerEntry {
  /** The cleaned name as stored (`etc/.wh.passwd` for a whiteout), never empty, no leading `/`. */
  path: string;
  kind: EntryKind;
  /** The header's size: the content's length for a regular file, 0 for everything else. */
  size: number;
  /** sha256 of the content (base64), for a regular file of at least one byte. */
  hash?: string;
}

/** The entries of one uncompressed layer tar, in the tar's order. */
export async function readLayerEntries(tar: Readable, o: { signal?: AbortSignal } = {}): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  for await (const { header, body } of readTar(tar, o.signal ? { signal: o.signal } : {})) {
    // A name climbing out of the root is clamped as applying refuses it: it names nothing here.
    const parts = cleanEntryName(header.name);
    if (!parts || parts.length === 0) continue;
    const base = parts[parts.length - 1]!;
    const path = parts.join('/');
    if (base.startsWith(WH_PREFIX)) {
      const kind: EntryKind = base === WH_OPAQUE ? 'opaque' : base.startsWith(`${WH_PREFIX}${WH_PREFIX}`) ? 'meta' : 'whiteout';
      if (kind === 'whiteout' && (base.length === WH_PREFIX.length || base === `${WH_PREFIX}.` || base === `${WH_PREFIX}..`)) continue;
      out.push({ path, kind, size: header.size });
      continue;
    }
    const kind: EntryKind = header.type === 'file' || header.type === 'dir' || header.type === 'symlink' || header.type === 'link' ? header.type : 'other';
    const entry: LayerEntry = { path, kind, size: header.size };
    if (kind === 'file' && header.size > 0) {
      const h = createHash('sha256');
      for await (const chunk of body) h.update(chunk);
      entry.hash = h.digest('base64');
    }
    out.push(entry);
  }
  return out;
}

/** `dir/.wh.name` → `dir/name`; `dir/.wh..wh..opq` → `dir`. */
export function targetOf(e: LayerEntry): string {
  const slash = e.path.lastIndexOf('/');
  const dir = slash < 0 ? '' : e.path.slice(0, slash);
  if (e.kind === 'opaque') return dir;
  const name = e.path.slice(slash + 1).slice(WH_PREFIX.length);
  return dir === '' ? name : `${dir}/${name}`;
}
