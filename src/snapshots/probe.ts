/**
 * What the kernel's overlayfs can do for this root, found by trying real mounts in a scratch dir
 * under the root (containerd overlayutils: Supported, NeedsUserXAttr). A positive result is cached
 * in `<root>/probe.json` and recomputed when the kernel release, the user or the user namespace
 * changes.
 *
 * - `userxattr`: inside a user namespace overlay must keep its private xattrs in `user.overlay.*`
 *   (kernel >= 5.11); whiteouts/opaque markers then use `user.overlay.opaque`.
 * - `index=off`: layers are shared between many mounts; the inode index would tie a lower layer
 *   to one upper dir and refuse later mounts.
 * - `redirect_dir=off`, `metacopy=off`: a renamed dir would be a redirect xattr and a chmod'ed
 *   file a metadata-only copy-up; neither can be expressed in an OCI layer diff of the upper dir,
 *   so both are switched off and the upper dir stays a complete record of the changes.
 * - `volatile` (Linux 5.10): probed, not passed to every mount; a RUN's last mount of its upper
 *   dir takes it (OverlaySnapshotter.volatileMounts).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { exists } from '../fs.js';
import { release } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { mountAll, unmount } from './mount.js';
import type { Mount } from '../sandbox/spec.js';
import type { ProbeResult } from './snapshotter.js';

const PROBE_FILE = 'probe.json';
/** The probe's scratch dir, `probe-<pid>-XXXXXX`: named by its process, so a killed probe's is found. */
export const PROBE_DIR = /^probe-(\d+)-[A-Za-z0-9]{6}$/;

/** False inside a user namespace (a rootless CLI), where overlay keeps its xattrs in `user.*`. */
export async function inInitialUserNamespace(): Promise<boolean> {
  try {
    const map = (await readFile('/proc/self/uid_map', 'utf8')).trim().split(/\s+/);
    return map[0] === '0' && map[1] === '0' && map[2] === '4294967295';
  } catch {
    return true;
  }
}

/** Which optional features the overlay module knows (a parameter file means the option exists). */
async function knownOffOptions(): Promise<string[]> {
  const out: string[] = [];
  for (const p of ['index', 'redirect_dir', 'metacopy']) {
    if (await exists(`/sys/module/overlay/parameters/${p}`)) out.push(`${p}=off`);
  }
  return out;
}

async function tryMount(dir: string, lowers: string[], options: string[]): Promise<string | undefined> {
  const target = join(dir, 'merged');
  const m: Mount = {
    type: 'overlay',
    source: 'overlay',
    cwd: dir,
    options: [...options, `lowerdir=${lowers.join(':')}`, 'upperdir=upper', 'workdir=work'],
  };
  try {
    await mountAll([m], target);
  } catch (e) {
    return (e as Error).message;
  }
  try {
    // The merged view must show both layers.
    await access(join(target, 'l0-file'));
    if (lowers.length > 1) await access(join(target, 'l1-file'));
    await writeFile(join(target, 'written'), 'x');
  } catch (e) {
    return `overlay mounted but did not behave: ${(e as Error).message}`;
  } finally {
    await unmount(target);
  }
  return undefined;
}

async function runProbe(root: string): Promise<ProbeResult> {
  const userNamespace = !(await inInitialUserNamespace());
  const base = unsupportedProbe(userNamespace, 'trusted.overlay.opaque');
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, `probe-${process.pid}-`));
  const fresh = async (): Promise<void> => {
    await rm(join(dir, 'upper'), { recursive: true, force: true });
    await rm(join(dir, 'work'), { recursive: true, force: true });
    await mkdir(join(dir, 'upper'));
    await mkdir(join(dir, 'work'));
  };
  try {
    for (const d of ['l0', 'l1', 'merged']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'l0', 'l0-file'), '0');
    await writeFile(join(dir, 'l1', 'l1-file'), '1');

    // userxattr only where it is needed: outside a user namespace it would move overlay's
    // metadata to user.* for no reason.
    const xattrOpts = userNamespace ? ['userxattr'] : [];
    let opts = [...xattrOpts, ...(await knownOffOptions())];
    await fresh();
    let err = await tryMount(dir, ['l0'], opts);
    if (err !== undefined) {
      // Some kernels know a parameter but refuse its mount option; keep only accepted ones.
      const kept: string[] = [...xattrOpts];
      for (const o of opts.filter((x) => !xattrOpts.includes(x))) {
        await fresh();
        if ((await tryMount(dir, ['l0'], [...kept, o])) === undefined) kept.push(o);
      }
      opts = kept;
      await fresh();
      err = await tryMount(dir, ['l0'], opts);
    }
    if (err !== undefined) return { ...base, reason: err };
    await fresh();
    const multi = (await tryMount(dir, ['l1', 'l0'], opts)) === undefined;
    await fresh();
    const volatile = (await tryMount(dir, ['l0'], [...opts, 'volatile'])) === undefined;
    return {
      ...base,
      supported: true,
      multipleLowers: multi,
      userxattr: userNamespace,
      opaqueXattr: userNamespace ? 'user.overlay.opaque' : 'trusted.overlay.opaque',
      options: opts,
      volatile,
    };
  } finally {
    await unmount(join(dir, 'merged')).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** Probes overlayfs for `root` (the overlay root), using the cached result when still valid. */
export function probeOverlay(root: string, opts: { refresh?: boolean } = {}): Promise<ProbeResult> {
  return cachedProbe(root, runProbe, opts);
}

/**
 * A probe's result for `root`, from `<root>/probe.json` while it was made by this kernel, uid and
 * kind of namespace, else from `run` (the overlay and fuse-overlayfs probes share this).
 */
export async function cachedProbe(root: string, run: (root: string) => Promise<ProbeResult>, opts: { refresh?: boolean } = {}): Promise<ProbeResult> {
  const path = join(root, PROBE_FILE);
  if (!opts.refresh) {
    try {
      const cached = JSON.parse(await readFile(path, 'utf8')) as ProbeResult;
      if (
        cached.version === 2 &&
        cached.kernel === release() &&
        cached.uid === (process.getuid?.() ?? -1) &&
        cached.userNamespace === !(await inInitialUserNamespace())
      ) {
        return cached;
      }
    } catch {
      // missing or unreadable: probe again
    }
  }
  const result = await run(root);
  // Only a positive result is kept: a failure may be passing (a full disk, a module not yet
  // loaded) and is cheap to find again.
  if (result.supported) await writeFileAtomic(path, JSON.stringify(result, null, 2) + '\n');
  return result;
}

/** What a probe reports before it has found anything (no support, no options). */
export function unsupportedProbe(userNamespace: boolean, opaqueXattr: ProbeResult['opaqueXattr']): ProbeResult {
  return {
    version: 2,
    kernel: release(),
    uid: process.getuid?.() ?? -1,
    userNamespace,
    supported: false,
    multipleLowers: false,
    userxattr: false,
    opaqueXattr,
    options: [],
    volatile: false,
    checkedAt: new Date().toISOString(),
  };
}
