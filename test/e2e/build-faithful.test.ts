/**
 * Faithfulness against a reference builder: for each fixtures/build/<case>, the final rootfs of
 * our build must equal, file by file (path, type, mode, owner, content, link target, link count),
 * what `buildah build` makes of the same Dockerfile on the same busybox base (pushed into a
 * private vfs buildah store with skopeo). A case with `Dockerfile.reference` gives buildah that
 * file instead (for syntax buildah 1.28 lacks, e.g. heredocs). Then our image, copied with skopeo
 * into a private podman store, must run under podman.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { build } from '../../src/builder/build.js';
import { OciStore } from '../../src/store/store.js';
import { openLayerTar } from '../../src/store/layers.js';
import { applyLayer } from '../../src/tar/apply.js';
import type { Descriptor } from '../../src/image/types.js';
import { validateImage } from '../conformance/validate-image.js';

const CASES_DIR = join(REPO_ROOT, 'fixtures', 'build');
const CASES = readdirSync(CASES_DIR).filter((c) => existsSync(join(CASES_DIR, c, 'Dockerfile'))).sort();

/**
 * Paths whose presence is an artefact of the builder, not of the Dockerfile: buildah leaves the
 * mount points of /etc/hosts, /etc/resolv.conf and /etc/hostname and RUN --mount targets it
 * created in the image (BuildKit and imgbuild keep them out of layers).
 */
const BUILDER_ARTEFACTS = new Set(['etc/hosts', 'etc/resolv.conf', 'etc/hostname', 'run/secrets']);

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let bRoot: string;
let bRun: string;

function sh(cmd: string, args: string[], o: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: o.cwd, input: o.input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

function buildah(args: string[]): string {
  return sh('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, ...args]);
}

/** path → "type mode uid:gid nlink content-hash|link-target" for every entry under dir. */
async function describeTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await readdir(join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(dir, r);
      const st = await lstat(p);
      const mode = (st.mode & 0o7777).toString(8);
      const owner = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out.set(r, `dir ${mode} ${owner}`);
        await walk(r);
      } else if (st.isSymbolicLink()) {
        out.set(r, `symlink ${owner} -> ${await readlink(p)}`);
      } else if (st.isFile()) {
        const h = createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16);
        out.set(r, `file ${mode} ${owner} nlink=${st.nlink} ${h}`);
      } else {
        out.set(r, `other ${mode} ${owner} rdev=${st.rdev}`);
      }
    }
  };
  await walk('');
  return out;
}

function compareTrees(ours: Map<string, string>, theirs: Map<string, string>): string[] {
  const diffs: string[] = [];
  const keys = new Set([...ours.keys(), ...theirs.keys()]);
  for (const k of [...keys].sort()) {
    if (BUILDER_ARTEFACTS.has(k)) continue;
    const a = ours.get(k);
    const b = theirs.get(k);
    if (a === b) continue;
    // Empty mount-point dirs buildah leaves behind for RUN --mount targets.
    if (a === undefined && b?.startsWith('dir ') && ![...theirs.keys()].some((x) => x.startsWith(`${k}/`))) continue;
    diffs.push(`${k}: imgbuild=${a ?? '(missing)'} buildah=${b ?? '(missing)'}`);
  }
  return diffs;
}

async function flatten(store: OciStore, desc: Descriptor, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const manifest = JSON.parse((await store.read(desc)).toString('utf8')) as { layers: Descriptor[] };
  for (const l of manifest.layers) await applyLayer(dest, await openLayerTar(store, l), { mode: 'flat' });
}

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-faithful-');
  root = join(tmp.dir, 'root');
  bRoot = join(tmp.dir, 'buildah-root');
  bRun = join(tmp.dir, 'buildah-run');
  await ensureBusybox(root);
  sh('skopeo', ['copy', '-q', `oci:${root}:${BUSYBOX_REF}`, `containers-storage:[vfs@${bRoot}+${bRun}]${BUSYBOX_REF}`]);
}, 120_000);

afterAll(async () => {
  // buildah's vfs store may hold mounts of its containers; unmount them before removal.
  spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'umount', '--all']);
  await tmp.cleanup();
});

describe('builds match buildah file by file', () => {
  it.each(CASES)('%s', async (name) => {
    const ctx = join(CASES_DIR, name);
    const result = await build({ root, contextDir: ctx, tags: [`faithful-${name}`], sourceDateEpoch: 1700000000 });
    const store = await OciStore.open(root);
    await validateImage(store, result.descriptor);
    const oursDir = join(tmp.dir, `ours-${name}`);
    await flatten(store, result.descriptor, oursDir);

    const ref = existsSync(join(ctx, 'Dockerfile.reference')) ? join(ctx, 'Dockerfile.reference') : join(ctx, 'Dockerfile');
    buildah(['build', '--isolation', 'chroot', '--pull=never', '-q', '-f', ref, '-t', `ref-${name}`, ctx]);
    const ctr = buildah(['from', '--pull=never', '-q', `ref-${name}`]);
    try {
      const mnt = buildah(['mount', ctr]);
      const diffs = compareTrees(await describeTree(oursDir), await describeTree(mnt));
      expect(diffs).toEqual([]);
    } finally {
      buildah(['umount', ctr]);
      buildah(['rm', ctr]);
    }
  }, 120_000);
});

describe('our images run under podman', () => {
  it('the multi-stage fixture image runs', async () => {
    const pRoot = join(tmp.dir, 'podman-root');
    const pRun = join(tmp.dir, 'podman-run');
    const ref = 'localhost/faithful-multistage:latest';
    // skopeo reads the store root as an OCI layout: the layers' blobs must be written.
    const r = await build({ root, contextDir: join(CASES_DIR, 'multistage'), tags: [ref], writeLayers: true });
    expect(r.tags).toEqual([ref]);
    sh('skopeo', ['copy', '-q', `oci:${root}:${ref}`, `containers-storage:[vfs@${pRoot}+${pRun}]${ref}`]);
    const out = sh('podman', [
      '--root', pRoot, '--runroot', pRun, '--storage-driver', 'vfs', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs',
      'run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1000:1000', ref,
    ]);
    // CMD ["app"] finds /opt/app/bin/app through the image's PATH.
    expect(out).toBe('main\nlib');
    spawnSync('podman', ['--root', pRoot, '--runroot', pRun, '--storage-driver', 'vfs', 'system', 'reset', '-f']);
  }, 120_000);
});
