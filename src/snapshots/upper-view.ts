/**
 * An active overlay snapshot's merged view read from its layer dirs, without mounting it: lookups
 * that follow the kernel overlayfs's rules (the topmost layer first; a whiteout or a non-directory
 * ends the search below a name, an opaque directory ends it below itself; index, redirect_dir and
 * metacopy are off in our mounts), and the copy-up of directories into the upper dir as overlayfs
 * makes it (mode, owner, every xattr but overlay's own, times; the parent's times kept). A step
 * that only adds new paths may so write its upper dir directly and get the layer a write through
 * the mount gives, without the ~10-30 ms of a host mount and umount.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, utimesSync, type Stats } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { getAttributeSync, setAttributeSync } from 'fs-xattr';
import type { Mount } from '../sandbox/spec.js';
import { lstatIfThere } from '../fs.js';
import { OPAQUE_XATTRS, xattrNames } from '../tar/pack.js';

/** What a path is in the merged view. */
export type MergedEntry =
  | { kind: 'missing' }
  | { kind: 'dir'; /** its layer dirs' paths, topmost first (the first gives a copy-up its attributes) */ stack: string[] }
  /** A non-directory (a symlink, a file...) at the path, `host` in its topmost layer. */
  | { kind: 'other'; host: string; st: Stats }
  /** A non-directory (a symlink included) met before the last component: only a mount resolves it. */
  | { kind: 'blocked' };

/** overlayfs's own xattrs (never copied up; pack.ts leaves them out of layers too). */
function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

function isOpaque(p: string): boolean {
  return xattrNames(p).some((n) => OPAQUE_XATTRS.includes(n) && getAttributeSync(p, n).toString() === 'y');
}

const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

function components(abs: string): string[] {
  return abs.split('/').filter((c) => c !== '' && c !== '.');
}

/** The merged view of read-only layer dirs, topmost first. */
export class LayerView {
  constructor(protected readonly layers: string[]) {}

  /**
   * The view of a committed snapshot's or a view's mounts (a read-only overlay, or the bind of a
   * single layer); undefined for anything else.
   */
  static ofImage(mounts: Mount[]): LayerView | undefined {
    const m = mounts.length === 1 ? mounts[0]! : undefined;
    if (m?.type === 'bind' && m.options.includes('ro')) return new LayerView([resolve(m.cwd ?? '/', m.source)]);
    const layers = m ? overlayLayers(m) : undefined;
    return layers && layers.upper === undefined ? new LayerView(layers.lowers) : undefined;
  }

  /** `abs` (an absolute path inside the rootfs, not followed through symlinks) in the merged view. */
  lookup(abs: string): MergedEntry {
    const comps = components(abs);
    let stack = this.layers;
    let rel = '';
    for (const [i, c] of comps.entries()) {
      if (c === '..') return { kind: 'blocked' }; // callers pass clean paths
      rel += `/${c}`;
      const next: string[] = [];
      for (const layer of stack) {
        const p = layer + rel;
        const st = lstatIfThere(p);
        if (!st) continue;
        if (next.length === 0) {
          if (isWhiteout(st)) return { kind: 'missing' };
          if (!st.isDirectory()) return i === comps.length - 1 ? { kind: 'other', host: p, st } : { kind: 'blocked' };
        } else if (!st.isDirectory()) {
          break; // a lower whiteout or non-directory is hidden by the directory above it
        }
        next.push(layer);
        if (isOpaque(p)) break;
      }
      if (next.length === 0) return { kind: 'missing' };
      stack = next;
    }
    return { kind: 'dir', stack: stack.map((l) => l + rel) };
  }

  /** The content of the regular file `abs` in the merged view; undefined when there is none; 'blocked' through a symlink. */
  readFile(abs: string): string | undefined | 'blocked' {
    const e = this.lookup(abs);
    if (e.kind === 'blocked' || (e.kind === 'other' && e.st.isSymbolicLink())) return 'blocked';
    if (e.kind !== 'other' || !e.st.isFile()) return undefined;
    return readFileSync(e.host, 'utf8');
  }

  /**
   * The layer dir that alone holds each of `paths` and everything below it in the merged view —
   * each a regular file, or a directory that no layer below adds to — or undefined (through a
   * symlink, missing, or made of several layers). Read there, they are what the merged view shows:
   * a whiteout there, of a name no layer below has, is a device, which a COPY's walk skips as the
   * merged view hides it.
   */
  soleLayerOf(paths: string[]): string | undefined {
    let root: string | undefined;
    for (const p of paths) {
      const rel = components(p).map((c) => `/${c}`).join('');
      const e = this.lookup(rel);
      const host = e.kind === 'dir' && e.stack.length === 1 ? e.stack[0]! : e.kind === 'other' && e.st.isFile() ? e.host : undefined;
      if (host === undefined || rel === '') return undefined;
      const layer = host.slice(0, host.length - rel.length);
      if (root !== undefined && root !== layer) return undefined;
      root = layer;
    }
    return root;
  }
}

/** An active snapshot's view: its upper dir over its read-only layers, which a step writes. */
export class UpperView extends LayerView {
  private constructor(
    /** The upper dir, which a step writes. */
    readonly upper: string,
    lowers: string[],
  ) {
    super([upper, ...lowers]);
  }

  /**
   * The view of a kernel overlay rootfs with an upper dir (an active snapshot's one mount);
   * undefined for anything else (fuse-overlayfs marks whiteouts its own ways, a bind has no lowers).
   */
  static of(mounts: Mount[]): UpperView | undefined {
    const m = mounts.length === 1 ? mounts[0]! : undefined;
    const layers = m ? overlayLayers(m) : undefined;
    if (!layers?.upper) return undefined;
    return new UpperView(layers.upper, layers.lowers);
  }

  /**
   * Copies up the directories on the way to `abs` (and `abs` itself) that the lower layers hold
   * and the upper dir does not, as overlayfs does before writing below them: mode, owner, xattrs
   * and times of the topmost lower copy. Creating one changes its parent's times, which overlayfs
   * restores: so are they here. The caller has checked that every component is a directory or
   * missing (lookup); the first missing one ends the walk.
   */
  copyUpDirs(abs: string): void {
    const made: { host: string; st: Stats }[] = [];
    let parent: { host: string; st: Stats } | undefined;
    let rel = '';
    for (const c of components(abs)) {
      rel += `/${c}`;
      const e = this.lookup(rel);
      if (e.kind !== 'dir') break;
      const top = e.stack[0]!;
      const host = this.upper + rel;
      if (top === host) continue; // in the upper dir already
      parent ??= { host: this.upper + rel.slice(0, rel.lastIndexOf('/')), st: lstatSync(this.upper + rel.slice(0, rel.lastIndexOf('/'))) };
      const st = lstatSync(top);
      mkdirSync(host);
      chownSync(host, st.uid, st.gid);
      chmodSync(host, st.mode & 0o7777);
      for (const n of xattrNames(top)) if (!isOverlayXattr(n)) setAttributeSync(host, n, getAttributeSync(top, n));
      made.push({ host, st });
    }
    // Deepest first: setting a dir's times does not touch its parent's.
    for (const d of made.reverse()) utimesSync(d.host, d.st.atime, d.st.mtime);
    if (parent) utimesSync(parent.host, parent.st.atime, parent.st.mtime);
  }
}

/** The layer dirs of a kernel overlay mount (absolute), its upper dir apart; undefined for another mount. */
function overlayLayers(m: Mount): { upper?: string; lowers: string[] } | undefined {
  if (m.type !== 'overlay') return undefined;
  const opt = (k: string): string | undefined => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(m.cwd ?? '/', p));
  const upper = opt('upperdir');
  const lowers = (opt('lowerdir') ?? '').split(':').filter(Boolean);
  // A layer dir named with a ':' or ',' is escaped in the options: not ours, not parsed here.
  if (lowers.length === 0 || m.options.some((o) => o.includes('\\'))) return undefined;
  return { ...(upper !== undefined ? { upper: abs(upper) } : {}), lowers: lowers.map(abs) };
}
