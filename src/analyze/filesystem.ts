/**
 * The image's file system as its layers build it, path metadata only: each node remembers the
 * layer that last wrote it, its size and its content's hash. Applying a layer follows the OCI
 * layer rules as unpacking does (whiteouts and opaque directories hide what the layers below
 * hold; an entry replaces what stood at its path), and says what each layer hid of the content of
 * the layers before it: the waste of deleted and overwritten content.
 */
import { targetOf, type LayerEntry } from './entries.js';

export type NodeKind = 'file' | 'dir' | 'symlink' | 'link' | 'other';

export interface FsNode {
  kind: NodeKind;
  /** Content bytes (regular files), else 0. */
  size: number;
  hash?: string;
  /** Index of the layer that last wrote this path (for an implied parent, the layer that implied it). */
  layer: number;
  children?: Map<string, FsNode>;
}

/** Bytes of content some layer holds that the final image cannot show, or holds twice. */
export interface WasteRecord {
  kind: 'deleted' | 'overwritten' | 'duplicate';
  /** The path that was deleted or overwritten (a directory for a subtree), or the duplicate copy. */
  path: string;
  bytes: number;
  /** Regular files counted in `bytes`. */
  files: number;
  /** The layer that holds the wasted bytes. */
  layer: number;
  /** The layer that deleted or overwrote them. */
  by?: number;
  /** For a duplicate: the path of the copy that is kept (the earliest). */
  of?: string;
}

/** What applying one layer changed (regular files, symlinks and the like: directories are not counted). */
export interface LayerChanges {
  added: number;
  modified: number;
  removed: number;
  /** Content bytes of the layers below that this layer deleted or overwrote. */
  hiddenBytes: number;
}

export class FileSystem {
  readonly root: FsNode = { kind: 'dir', size: 0, layer: -1, children: new Map() };
  readonly waste: WasteRecord[] = [];

  /** Applies layer `index`: its whiteouts and opaque markers to the layers below, then its entries. */
  apply(entries: readonly LayerEntry[], index: number): LayerChanges {
    const ch: LayerChanges = { added: 0, modified: 0, removed: 0, hiddenBytes: 0 };
    const hide = (node: FsNode, path: string, kind: 'deleted' | 'overwritten'): void => {
      const perLayer = new Map<number, { bytes: number; files: number }>();
      const walk = (n: FsNode): void => {
        if (n.kind === 'dir') {
          for (const c of n.children!.values()) walk(c);
          return;
        }
        ch.removed++;
        if (n.kind !== 'file' || n.size === 0) return;
        const t = perLayer.get(n.layer) ?? { bytes: 0, files: 0 };
        t.bytes += n.size;
        t.files++;
        perLayer.set(n.layer, t);
      };
      walk(node);
      for (const [layer, t] of [...perLayer].sort((a, b) => a[0] - b[0])) {
        this.waste.push({ kind, path: `/${path}`, bytes: t.bytes, files: t.files, layer, by: index });
        ch.hiddenBytes += t.bytes;
      }
    };
    // Whiteouts and opaque markers name what the layers below hold, whatever their order in the tar.
    for (const e of entries) {
      if (e.kind === 'opaque') {
        const dir = targetOf(e);
        const node = this.lookup(dir);
        if (node?.kind !== 'dir') continue;
        for (const [name, c] of node.children!) hide(c, dir === '' ? name : `${dir}/${name}`, 'deleted');
        node.children!.clear();
      } else if (e.kind === 'whiteout') {
        const target = targetOf(e);
        const { parent, name } = this.parentOf(target);
        const node = parent?.children!.get(name);
        if (!node) continue;
        hide(node, target, 'deleted');
        parent!.children!.delete(name);
      }
    }
    for (const e of entries) {
      if (e.kind === 'whiteout' || e.kind === 'opaque' || e.kind === 'meta') continue;
      const parts = e.path.split('/');
      let dir = this.root;
      for (let i = 0; i < parts.length - 1; i++) {
        let next = dir.children!.get(parts[i]!);
        if (next?.kind !== 'dir') {
          // A parent that is missing, or was something else, becomes a directory (as unpacking makes it).
          if (next) {
            hide(next, parts.slice(0, i + 1).join('/'), 'overwritten');
          }
          next = { kind: 'dir', size: 0, layer: index, children: new Map() };
          dir.children!.set(parts[i]!, next);
        }
        dir = next;
      }
      const name = parts[parts.length - 1]!;
      const old = dir.children!.get(name);
      if (e.kind === 'dir') {
        if (old?.kind === 'dir') {
          old.layer = index;
          continue;
        }
        if (old) hide(old, e.path, 'overwritten');
        dir.children!.set(name, { kind: 'dir', size: 0, layer: index, children: new Map() });
        continue;
      }
      if (old) {
        // The old node's own removal is this entry's modification, not a removal.
        hide(old, e.path, 'overwritten');
        if (old.kind !== 'dir') ch.removed--;
        ch.modified++;
      } else ch.added++;
      const node: FsNode = { kind: e.kind === 'file' ? 'file' : e.kind === 'symlink' ? 'symlink' : e.kind === 'link' ? 'link' : 'other', size: e.size, layer: index };
      if (e.hash !== undefined) node.hash = e.hash;
      dir.children!.set(name, node);
    }
    return ch;
  }

  /**
   * Records the copies of the same content (same hash and size) that the final file system holds
   * more than once: every copy but the earliest (lowest layer, then path) is waste. A hard link is
   * no copy.
   */
  findDuplicates(): void {
    const files: { path: string; node: FsNode }[] = [];
    this.walkFiles((path, node) => {
      if (node.kind === 'file' && node.size > 0 && node.hash !== undefined) files.push({ path, node });
    });
    // walkFiles visits in path order: the lowest layer keeps its copy, then the first path.
    const keeper = new Map<string, { path: string; layer: number }>();
    for (const f of files) {
      const key = `${f.node.hash}:${f.node.size}`;
      const k = keeper.get(key);
      if (!k || f.node.layer < k.layer) keeper.set(key, { path: f.path, layer: f.node.layer });
    }
    for (const f of files) {
      const of = keeper.get(`${f.node.hash}:${f.node.size}`)!.path;
      if (of !== f.path) this.waste.push({ kind: 'duplicate', path: f.path, bytes: f.node.size, files: 1, layer: f.node.layer, of });
    }
  }

  /** Every node below the root in path order (children sorted by name), with its `/`-rooted path. */
  walkFiles(visit: (path: string, node: FsNode) => void): void {
    const walk = (n: FsNode, prefix: string): void => {
      for (const name of [...n.children!.keys()].sort()) {
        const c = n.children!.get(name)!;
        const p = `${prefix}/${name}`;
        visit(p, c);
        if (c.kind === 'dir') walk(c, p);
      }
    };
    walk(this.root, '');
  }

  private lookup(path: string): FsNode | undefined {
    if (path === '') return this.root;
    let n: FsNode | undefined = this.root;
    for (const p of path.split('/')) {
      n = n.kind === 'dir' ? n.children!.get(p) : undefined;
      if (!n) return undefined;
    }
    return n;
  }

  private parentOf(path: string): { parent: FsNode | undefined; name: string } {
    const slash = path.lastIndexOf('/');
    const parent = this.lookup(slash < 0 ? '' : path.slice(0, slash));
    return { parent: parent?.kind === 'dir' ? parent : undefined, name: path.slice(slash + 1) };
  }
}
