/**
 * The treemap of the final file system: directories nest, every box's area is its bytes, and a
 * file's box is coloured by the layer that last wrote it. Files and directories too small to see
 * (under `minFraction` of the whole) are gathered per directory and per layer into one box
 * ("12 files"), so the page stays small for images of any number of files and a gathered box still
 * has one layer's colour.
 *
 * The layout is the squarified treemap of Bruls, Huizing and van Wijk (2000) with the golden ratio
 * as its target aspect, as d3-hierarchy's `treemapSquarify` lays it out (docs/architecture.md says
 * why it is written here).
 */
import type { FileSystem, FsNode } from './filesystem.js';

export interface TreemapBox {
  kind: 'dir' | 'file' | 'group';
  /** `/`-rooted path (a group's directory). */
  path: string;
  /** What the box shows: a name, or `12 files` for a group. */
  label: string;
  bytes: number;
  /** The layer that wrote the file (or every file of a group); -1 for a directory. */
  layer: number;
  /** Files a group gathers. */
  files?: number;
  x: number;
  y: number;
  w: number;
  h: number;
  depth: number;
}

interface Item {
  kind: 'dir' | 'file' | 'group';
  path: string;
  label: string;
  value: number;
  layer: number;
  files?: number;
  children?: Item[];
}

export interface TreemapOptions {
  width: number;
  height: number;
  /** Boxes under this fraction of the whole are gathered (default 1/4000). */
  minFraction?: number;
  /** Room for a directory's name above its contents, and the gap around them. */
  header?: number;
  pad?: number;
}

const PHI = (1 + Math.sqrt(5)) / 2;

/** Adds every file below `n` to `byLayer` (bytes and count per layer). */
function gather(n: FsNode, byLayer: Map<number, { value: number; files: number }>): void {
  if (n.kind === 'dir') {
    for (const c of n.children!.values()) gather(c, byLayer);
    return;
  }
  if (n.kind !== 'file' || n.size === 0) return;
  const g = byLayer.get(n.layer) ?? { value: 0, files: 0 };
  g.value += n.size;
  g.files++;
  byLayer.set(n.layer, g);
}

/** The display tree of a directory: visible children as they are, the small ones gathered per layer. */
function itemOf(n: FsNode, path: string, name: string, min: number, sizes: Map<FsNode, number>): Item {
  const small = new Map<number, { value: number; files: number }>();
  const children: Item[] = [];
  for (const [cname, c] of n.children!) {
    const v = sizes.get(c) ?? 0;
    if (v === 0) continue;
    const cpath = path === '/' ? `/${cname}` : `${path}/${cname}`;
    if (v < min) gather(c, small);
    else if (c.kind === 'dir') children.push(itemOf(c, cpath, cname, min, sizes));
    else children.push({ kind: 'file', path: cpath, label: cname, value: v, layer: c.layer });
  }
  for (const [layer, g] of small) {
    children.push({ kind: 'group', path, label: g.files === 1 ? '1 file' : `${g.files} files`, value: g.value, layer, files: g.files });
  }
  children.sort((a, b) => b.value - a.value || (a.label < b.label ? -1 : 1));
  return { kind: 'dir', path, label: name, value: children.reduce((s, c) => s + c.value, 0), layer: -1, children };
}

/** Squarified rows of `items` (sorted by value, largest first) in the rectangle x0,y0-x1,y1. */
function squarify(items: Item[], x0: number, y0: number, x1: number, y1: number, place: (it: Item, x: number, y: number, w: number, h: number) => void): void {
  let value = items.reduce((s, c) => s + c.value, 0);
  let i0 = 0;
  while (i0 < items.length) {
    const dx = x1 - x0;
    const dy = y1 - y0;
    let i1 = i0;
    let sum = items[i1++]!.value;
    let minV = sum;
    let maxV = sum;
    const alpha = Math.max(dy / dx, dx / dy) / (value * PHI);
    let beta = sum * sum * alpha;
    let worst = Math.max(maxV / beta, beta / minV);
    // Add items to the row while its worst aspect ratio does not get worse.
    for (; i1 < items.length; i1++) {
      const v = items[i1]!.value;
      const s = sum + v;
      const mn = Math.min(minV, v);
      const mx = Math.max(maxV, v);
      beta = s * s * alpha;
      const r = Math.max(mx / beta, beta / mn);
      if (r > worst) break;
      sum = s;
      minV = mn;
      maxV = mx;
      worst = r;
    }
    const row = items.slice(i0, i1);
    if (dx < dy) {
      // A row across the width, at the top.
      const h = value ? (dy * sum) / value : dy;
      let x = x0;
      for (const it of row) {
        const w = sum ? (dx * it.value) / sum : 0;
        place(it, x, y0, w, h);
        x += w;
      }
      y0 += h;
    } else {
      // A column down the height, at the left.
      const w = value ? (dx * sum) / value : dx;
      let y = y0;
      for (const it of row) {
        const h = sum ? (dy * it.value) / sum : 0;
        place(it, x0, y, w, h);
        y += h;
      }
      x0 += w;
    }
    value -= sum;
    i0 = i1;
  }
}

/** The boxes of the treemap of `fs`'s final file system in a `width` × `height` area, parents before children. */
export function layoutTreemap(fs: FileSystem, o: TreemapOptions): TreemapBox[] {
  const sizes = new Map<FsNode, number>();
  const measure = (n: FsNode): number => {
    let s = n.kind === 'file' ? n.size : 0;
    if (n.kind === 'dir') for (const c of n.children!.values()) s += measure(c);
    sizes.set(n, s);
    return s;
  };
  const total = measure(fs.root);
  if (total === 0) return [];
  const header = o.header ?? 14;
  const pad = o.pad ?? 2;
  const root = itemOf(fs.root, '/', '/', total * (o.minFraction ?? 1 / 4000), sizes);
  const boxes: TreemapBox[] = [];
  const place = (depth: number) => (it: Item, x: number, y: number, w: number, h: number): void => {
    boxes.push({ kind: it.kind, path: it.path, label: it.label, bytes: it.value, layer: it.layer, ...(it.files !== undefined ? { files: it.files } : {}), x, y, w, h, depth });
    if (!it.children || it.children.length === 0) return;
    // A directory's contents below its name, inside a small gap, when there is room for them.
    const top = h > header * 2 && w > 30 ? header : pad;
    if (w <= pad * 2 || h <= top + pad) return;
    squarify(it.children, x + pad, y + top, x + w - pad, y + h - pad, place(depth + 1));
  };
  squarify(root.children!, 0, 0, o.width, o.height, place(0));
  return boxes;
}
