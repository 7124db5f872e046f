/**
 * A COPY or ADD that only adds new paths writes its step's upper dir directly, without a host
 * mount of the step's rootfs: the layer is the one a write through the mount gives (test
 * build-copy-direct), for ~10-30 ms less a step (docs/architecture.md, Measurements).
 *
 * Taken only where that is provably the same: under the kernel's overlay, when every existing
 * component of the destination (and of a WORKDIR the step creates) is a plain directory in the
 * lower layers, and what the copy writes is new there or a file replacing a non-directory (which
 * through the mount is unlinked, then written anew); the directories it writes below are copied up
 * first as overlayfs would. Anything else — a symlink or a file on the way, a symlink as the
 * destination, a merge into a directory of the image, `--parents`, a large walked-again item, a
 * passwd/group file reached through a symlink — goes through the mount as before.
 */
import { posix } from 'node:path';
import { resolveChownIds } from '../../image/users.js';
import { UpperView } from '../../snapshots/upper-view.js';
import type { Mount } from '../../sandbox/spec.js';
import { cleanAbs } from './fs-root.js';
import type { CopyPlan } from './copy.js';

/** What a direct write needs decided before anything is written. */
export interface DirectCopy {
  /** The upper dir the copy writes. */
  root: string;
  /** `--chown`, resolved in the merged view. */
  chown?: { uid: number; gid: number };
  /** The pending WORKDIRs that are missing in the image (createWorkdir makes only these), */
  workdirs: { path: string; user?: string }[];
  /** and the owner of their new dirs, resolved in the merged view. */
  ownerOf: (user: string | undefined) => Promise<{ uid: number; gid: number }>;
  /** Copies up the image's directories the copy and the WORKDIRs write below; call first. */
  prepare(): void;
}

class NeedsMount extends Error {}

export interface DirectCopyOptions {
  mounts: Mount[];
  /** The files to write (none: a WORKDIR's layer step, which only makes `workdirs`). */
  copy?: { plan: CopyPlan; dest: string; workdir: string };
  /** WORKDIRs the step creates (StageCtx.pendingWorkdirs). */
  workdirs: { path: string; user?: string }[];
  chown?: string;
}

/** The direct write of this copy, or undefined when only a mount is sure to give its layer. */
export async function planDirectCopy(o: DirectCopyOptions): Promise<DirectCopy | undefined> {
  const view = UpperView.of(o.mounts);
  if (!view || (o.copy && (o.copy.plan.parents || o.copy.plan.items.length === 0))) return undefined;
  const copyUps: string[] = [];
  // A pending WORKDIR is made with mkdir -p: its existing components must be dirs, and only a
  // missing one writes (so copies up those above it); one the image has is left alone.
  const workdirs: { path: string; user?: string }[] = [];
  for (const w of o.workdirs) {
    const abs = cleanAbs(w.path);
    const e = view.lookup(abs);
    if (e.kind === 'missing') {
      copyUps.push(abs);
      workdirs.push(w);
    } else if (e.kind !== 'dir') return undefined;
  }
  if (o.copy && !checkCopy(view, o.copy, copyUps)) return undefined;
  // Names are read from the image's /etc/passwd and /etc/group, as through the mount.
  const read = async (f: string): Promise<string | undefined> => {
    const text = view.readFile(f);
    if (text === 'blocked') throw new NeedsMount();
    return text;
  };
  const owners = new Map<string, { uid: number; gid: number }>();
  try {
    for (const w of workdirs) {
      if (w.user) owners.set(w.user, await resolveChownIds(w.user, read).catch((e: unknown) => {
        if (e instanceof NeedsMount) throw e;
        return { uid: 0, gid: 0 };
      }));
    }
    const chown = o.chown ? await resolveChownIds(o.chown, read) : undefined;
    return {
      root: view.upper,
      ...(chown ? { chown } : {}),
      workdirs,
      ownerOf: async (user) => (user ? owners.get(user) : undefined) ?? { uid: 0, gid: 0 },
      prepare: () => {
        for (const p of copyUps) view.copyUpDirs(p);
      },
    };
  } catch (e) {
    if (e instanceof NeedsMount) return undefined;
    throw e;
  }
}

/** Whether everything the copy writes is new in the image; adds the dirs to copy up. */
function checkCopy(view: UpperView, o: NonNullable<DirectCopyOptions['copy']>, copyUps: string[]): boolean {
  const destAbs = cleanAbs(o.dest.startsWith('/') ? o.dest : posix.join(o.workdir || '/', o.dest));
  const dest = view.lookup(destAbs);
  if (dest.kind === 'blocked') return false;
  if (dest.kind === 'other') {
    // One file replacing a file of the image (through the mount: unlinked, then written anew).
    // Spelt as a directory, or for several sources, the mount's copy fails on it: so must this.
    const asDir = /(^|\/)\.?$/.test(o.dest);
    const only = o.plan.items.length === 1 ? o.plan.items[0]! : undefined;
    if (!dest.st.isFile() || asDir || o.plan.multiple || !only || only.isDir || only.archive) return false;
  }
  const missing = (abs: string): boolean => view.lookup(abs).kind === 'missing';
  for (const item of o.plan.items) {
    if (dest.kind !== 'dir') continue; // all the copy writes is below a new path, or replaces one file
    // Into an existing directory: a file lands at dest/name, new or replacing a non-directory.
    if (!item.isDir && !item.archive) {
      const at = view.lookup(posix.join(destAbs, item.name)).kind;
      if (at !== 'missing' && at !== 'other') return false;
      continue;
    }
    // A directory's contents merge into dest: each top-level name must be new there, and there
    // must be one (an empty one writes nothing, so copies nothing up). An archive's are unknown.
    if (item.archive || item.walk) return false;
    const top = item.entries.filter((e) => e.rel !== '' && !e.rel.includes('/'));
    if (top.length === 0 || !top.every((e) => missing(posix.join(destAbs, e.rel)))) return false;
  }
  copyUps.push(destAbs);
  return true;
}

/**
 * A COPY --from's plan made in the one layer dir of the source image that holds all its sources
 * (soleLayerRoot), or undefined where only the merged rootfs gives the same plan: a wildcard is
 * matched against the merged listing. (A whiteout in that layer, of a name no layer below has, is a
 * device, which the copy's walk skips as the merged view hides it.)
 */
export async function planInLayer(layerRoot: string | undefined, sources: string[], plan: (root: string) => Promise<CopyPlan>): Promise<CopyPlan | undefined> {
  if (layerRoot === undefined || sources.some((s) => /[*?[\\]/.test(s))) return undefined;
  return plan(layerRoot);
}
