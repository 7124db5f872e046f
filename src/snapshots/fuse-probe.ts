/**
 * Whether fuse-overlayfs can serve a snapshot root here: its binary, /dev/fuse and a real mount of
 * two lower layers and an upper dir in a scratch dir under the root (the same scratch naming as the
 * kernel probe, probe.ts, so a killed probe's dir is swept the same way). Costing a mount and a
 * daemon, a positive result is cached in `<root>/probe.json`, recomputed when the kernel release,
 * the user or the user namespace changes.
 *
 * fuse-overlayfs reads the whiteouts and opaque markers imgbuild unpacks layers with (char 0:0
 * devices; `trusted.overlay.opaque`, or `user.overlay.opaque` in a user namespace, since 1.5), so
 * its layers are unpacked exactly as the kernel overlay's are.
 */
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mount } from '../sandbox/spec.js';
import { mountAll, unmount } from './mount.js';
import { cachedProbe, inInitialUserNamespace, unsupportedProbe } from './probe.js';
import type { ProbeResult } from './snapshotter.js';

/** The mount type a fuse-overlayfs mount shows in mountinfo, and which mount.ts runs the binary for. */
export const FUSE_OVERLAY_TYPE = 'fuse.fuse-overlayfs';

/** A fuse-overlayfs mount of `lowers` (topmost first) with an optional upper and work dir, paths relative to `cwd`. */
export function fuseOverlayMount(lowers: string[], cwd: string, upper?: { upperdir: string; workdir: string }): Mount {
  const options = [`lowerdir=${lowers.join(':')}`, ...(upper ? [`upperdir=${upper.upperdir}`, `workdir=${upper.workdir}`] : [])];
  return { type: FUSE_OVERLAY_TYPE, source: 'fuse-overlayfs', options, cwd };
}

async function runProbe(root: string): Promise<ProbeResult> {
  const userNamespace = !(await inInitialUserNamespace());
  const base = unsupportedProbe(userNamespace, userNamespace ? 'user.overlay.opaque' : 'trusted.overlay.opaque');
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, `probe-${process.pid}-`));
  const merged = join(dir, 'merged');
  try {
    for (const d of ['l0', 'l1', 'upper', 'work', 'merged']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'l0', 'l0-file'), '0');
    await writeFile(join(dir, 'l1', 'l1-file'), '1');
    try {
      await mountAll([fuseOverlayMount(['l1', 'l0'], dir, { upperdir: 'upper', workdir: 'work' })], merged);
    } catch (e) {
      return { ...base, reason: (e as Error).message };
    }
    try {
      await access(join(merged, 'l0-file'));
      await access(join(merged, 'l1-file'));
      await writeFile(join(merged, 'written'), 'x');
    } catch (e) {
      return { ...base, reason: `fuse-overlayfs mounted but did not behave: ${(e as Error).message}` };
    } finally {
      await unmount(merged);
    }
    return { ...base, supported: true, multipleLowers: true, userxattr: userNamespace };
  } finally {
    await unmount(merged).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** Probes fuse-overlayfs for `root` (the fuse-overlayfs snapshot root), using the cached result when still valid. */
export function probeFuseOverlay(root: string, opts: { refresh?: boolean } = {}): Promise<ProbeResult> {
  return cachedProbe(root, runProbe, opts);
}
