/**
 * The rules every layer tar entry must pass, and what it asks for: one definition shared by
 * applyLayer (which then writes the entry) and checkLayerTar (which only reads, so that `load` and
 * `pull` refuse a hostile image before it is tagged rather than at its first `run`). Only rules that
 * depend on the entry alone live here; what depends on the tree being written (a symlink loop, a
 * file standing where a directory is needed) can only be found while applying.
 *
 * Refused with UnsafePathError (naming the entry): a name that climbs above the root (`../x`,
 * `a/../../x`), a hard link whose target name does (or names the root itself), a whiteout naming
 * `..`, device nodes unless `allowDevices` (which callers give where the process may make them,
 * devices.ts). A whiteout naming nothing is an InvalidWhiteoutError.
 * Absolute names are made relative, as GNU tar and containerd do. Symlink targets are stored
 * verbatim and never refused here: they are confined whenever a path is resolved through them.
 */
import { DeviceNodeRefusedError, mayMakeDevices } from './devices.js';
import { InvalidWhiteoutError, UnsafePathError } from './errors.js';
import type { TarHeader } from './format.js';

export const WH_PREFIX = '.wh.';
export const WH_OPAQUE = '.wh..wh..opq';
/** aufs metadata names (`.wh..wh.plnk`, `.wh..wh.aufs`): skipped, as containerd does. */
const WH_META_PREFIX = '.wh..wh.';

export interface EntryRuleOptions {
  allowDevices?: boolean;
  /** The directory the layer goes to, for the error (none when only checking). */
  root?: string;
}

/** What an entry that passed the rules asks for. `parts` is its cleaned name, never empty. */
export type EntryPlan =
  /** The root itself (`./`) or aufs metadata: nothing to do (the root's metadata is the caller's). */
  | { kind: 'skip' }
  /** `<dir>/.wh..wh..opq`: `dir` is parts without the marker. */
  | { kind: 'opaque'; parts: string[] }
  /** `<dir>/.wh.<name>`. */
  | { kind: 'whiteout'; parts: string[]; name: string }
  /** Anything else; `link` is a hard link's cleaned target (inside the root, never the root). */
  | { kind: 'entry'; parts: string[]; base: string; link?: string[] };

/**
 * Lexically cleans an entry name: strips leading `/` and `./`, drops `.` parts, folds `a/..`.
 * Returns undefined when `..` would climb above the root.
 */
export function cleanEntryName(name: string): string[] | undefined {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

/** Holds one entry to the rules (see the module comment); throws naming the entry, or says what it asks for. */
export function planEntry(h: TarHeader, o: EntryRuleOptions = {}): EntryPlan {
  const refuse = (reason: string): never => {
    throw new UnsafePathError(h.name, o.root ?? '', reason);
  };
  const parts = cleanEntryName(h.name);
  if (!parts) return refuse('its name leads outside the root');
  if (parts.length === 0) return { kind: 'skip' };
  const base = parts[parts.length - 1]!;

  if (base.startsWith(WH_PREFIX)) {
    if (base === WH_OPAQUE) return { kind: 'opaque', parts };
    if (base.startsWith(WH_META_PREFIX)) return { kind: 'skip' };
    const name = base.slice(WH_PREFIX.length);
    if (name === '..') refuse('a whiteout naming ".." would delete outside its directory');
    if (name === '' || name === '.' || name.includes('/')) throw new InvalidWhiteoutError(h.name, 'names no file');
    return { kind: 'whiteout', parts, name };
  }

  if ((h.type === 'char' || h.type === 'block') && !o.allowDevices) {
    // Where the process could not make the node anyway, say so (and what would do).
    if (!mayMakeDevices()) throw new DeviceNodeRefusedError(h, o.root ?? '');
    refuse(`device nodes (${h.type} ${h.devmajor}:${h.devminor}) are refused unless devices are allowed`);
  }
  if (h.type === 'link') {
    const link = cleanEntryName(h.linkname);
    if (!link || link.length === 0) refuse(`hard link target ${JSON.stringify(h.linkname)} leads outside the root`);
    return { kind: 'entry', parts, base, link: link! };
  }
  return { kind: 'entry', parts, base };
}
