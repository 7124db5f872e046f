/**
 * dive's efficiency score and "potential wasted space", computed as dive computes them
 * (wagoodman/dive, dive/filetree/efficiency.go and dive/image/analysis.go), so that the figures
 * agree with dive's on the same image. Its definition, followed here with its quirks:
 *
 * - Each layer is a tree of its entries (parents implied by a name get empty data; names starting
 *   `.wh..wh.`, the opaque marker among them, are dropped, so opaque directories hide nothing).
 * - Every leaf of a layer's tree (no children in that layer), in depth-first order by name, adds
 *   a size to its path's record: a file its header size; a whiteout `.wh.x` 0 when `x` was not a
 *   directory, else the sizes of everything under `x` in the layers below stacked (dive's stacking:
 *   whiteouts remove, entries replace a node's data and keep its children). A whiteout naming
 *   nothing below ends that layer's walk, and its record keeps a minimum of -1.
 * - score = Σ minimum size per path / Σ all sizes per path (1 when nothing was sized);
 *   wasted = Σ sizes of the paths met twice or more (their first copy included);
 *   user wasted % = wasted / the sizes of every layer but the first.
 */
import type { LayerEntry } from './entries.js';

interface Info {
  size: number;
  isDir: boolean;
}

interface Node {
  name: string;
  info?: Info;
  /** Made with the first child: most nodes are files (an empty Map costs ~200 bytes). */
  children?: Map<string, Node>;
}

interface PathRecord {
  cumulative: number;
  min: number;
  count: number;
}

export interface DiveInefficiency {
  path: string;
  /** How many layers sized this path (dive's `count`). */
  count: number;
  /** Everything those layers sized at this path, the copy that stays included (dive's `sizeBytes`). */
  bytes: number;
}

export interface DiveFigures {
  /** dive's image efficiency score, 0..1. */
  efficiency: number;
  /** dive's "potential wasted space". */
  wastedBytes: number;
  /** Bytes of every layer but the first (dive's user size). */
  userSizeBytes: number;
  /** wastedBytes / userSizeBytes as a fraction (dive's highestUserWastedPercent compares this); null when there are no user bytes. */
  userWastedFraction: number | null;
  inefficiencies: DiveInefficiency[];
}

const WH = '.wh.';
const META = '.wh..wh.';

/** Go's sort.Strings order: by UTF-8 bytes (JavaScript's `<` compares UTF-16 units). */
function goCompare(a: string, b: string): number {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(a) && /^[\x00-\x7f]*$/.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function sortedChildren(n: Node): Node[] {
  return n.children ? [...n.children.values()].sort((x, y) => goCompare(x.name, y.name)) : [];
}

function newNode(name: string): Node {
  return { name };
}

/** dive's AddPath: missing parents made with empty data; a `.wh..wh.` name stops the walk. */
function addPath(root: Node, parts: readonly string[], info: Info | undefined): void {
  let node = root;
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    let next = node.children?.get(name);
    if (!next) {
      if (name.startsWith(META)) return;
      next = newNode(name);
      (node.children ??= new Map()).set(name, next);
    }
    node = next;
    if (i === parts.length - 1) {
      if (info) node.info = info;
      else delete node.info;
    }
  }
}

function getNode(root: Node, parts: readonly string[]): Node | undefined {
  let n: Node | undefined = root;
  for (const p of parts) {
    n = n.children?.get(p);
    if (!n) return undefined;
  }
  return n;
}

/** A node's path as dive names it: the whiteout prefix of its own name dropped. */
function strip(parts: readonly string[]): string[] {
  const last = parts[parts.length - 1]!;
  return last.startsWith(WH) ? [...parts.slice(0, -1), last.slice(WH.length)] : [...parts];
}

/** Visits a tree's nodes depth-first, children (sorted by name) before their parent, the root left out. */
function visitChildFirst(root: Node, visit: (n: Node, parts: string[]) => boolean): void {
  const walk = (n: Node, parts: string[]): boolean => {
    for (const c of sortedChildren(n)) if (!walk(c, [...parts, c.name])) return false;
    return n === root || visit(n, parts);
  };
  walk(root, []);
}

/** Feeds layers in order (`addLayer`), then `figures()`. */
export class DiveEfficiency {
  private readonly records = new Map<string, PathRecord>();
  /** Layers 0..n-1 stacked as dive stacks them. */
  private readonly stack: Node = newNode('');
  private readonly layerSizes: number[] = [];

  /** Returns the layer's size as dive counts it: the sum of its entries' sizes. */
  addLayer(entries: readonly LayerEntry[]): number {
    const index = this.layerSizes.length;
    const tree = newNode('');
    let size = 0;
    for (const e of entries) {
      size += e.size;
      addPath(tree, e.path.split('/'), { size: e.size, isDir: e.kind === 'dir' });
    }
    this.layerSizes.push(size);
    // For the first layer dive looks whiteouts up in that layer's own tree (its stack of no layers
    // is a copy of the first).
    const below = index === 0 ? tree : this.stack;
    visitChildFirst(tree, (n, parts) => {
      if (n.children && n.children.size > 0) return true;
      const path = `/${strip(parts).join('/')}`;
      let rec = this.records.get(path);
      if (!rec) {
        rec = { cumulative: 0, min: -1, count: 0 };
        this.records.set(path, rec);
      }
      let bytes = 0;
      if (n.name.startsWith(WH)) {
        const prev = getNode(below, strip(parts));
        if (!prev) return false; // dive's visitor fails here, ending this layer's walk
        if (prev.info?.isDir) visitChildFirst({ name: '', children: new Map([['', prev]]) }, (c) => ((bytes += c.info?.size ?? 0), true));
      } else bytes = n.info?.size ?? 0;
      rec.cumulative += bytes;
      if (rec.min < 0 || bytes < rec.min) rec.min = bytes;
      rec.count++;
      return true;
    });
    // dive's Stack: every node of the layer, children first.
    visitChildFirst(tree, (n, parts) => {
      if (n.name.startsWith(WH)) {
        const target = strip(parts);
        const parent = getNode(this.stack, target.slice(0, -1));
        parent?.children?.delete(target[target.length - 1]!);
      } else addPath(this.stack, parts, n.info);
      return true;
    });
    return size;
  }

  figures(): DiveFigures {
    let minimum = 0;
    let discovered = 0;
    const inefficiencies: DiveInefficiency[] = [];
    for (const [path, r] of this.records) {
      minimum += r.min;
      discovered += r.cumulative;
      if (r.count >= 2) inefficiencies.push({ path, count: r.count, bytes: r.cumulative });
    }
    inefficiencies.sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1));
    const wastedBytes = inefficiencies.reduce((s, i) => s + i.bytes, 0);
    const userSizeBytes = this.layerSizes.slice(1).reduce((s, n) => s + n, 0);
    return {
      efficiency: discovered === 0 ? 1 : minimum / discovered,
      wastedBytes,
      userSizeBytes,
      userWastedFraction: userSizeBytes === 0 ? null : wastedBytes / userSizeBytes,
      inefficiencies,
    };
  }
}
