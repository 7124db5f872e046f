/**
 * The vfs snapshotter (copies, no mount) against overlay: the same deterministic Dockerfile built
 * in two stores, one with each, gives the same layers (diff ids), deletions as whiteouts included;
 * and a vfs store keeps no mounts and holds whole rootfs copies.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeContext } from '../helpers/context.js';
import { makeTmp, mountsUnder } from '../helpers/tmp.js';
import { runCli, CLI_EXE } from '../helpers/cli.js';
import { spawnSync } from 'node:child_process';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { openLayerTar } from '../../src/store/layers.js';
import { readTar } from '../../src/tar/reader.js';
import type { Descriptor } from '../../src/image/types.js';

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-vfs-');
});
afterAll(async () => {
  await tmp.cleanup();
});

const DOCKERFILE = `FROM busybox AS base
RUN mkdir -p /a/b && echo hi > /a/b/f && ln /a/b/f /a/b/g && chmod 700 /a && rm /bin/ls && rm -f /etc/group && mkfifo /a/p
COPY c.txt /a/c.txt
RUN rm /a/b/f && echo more >> /a/c.txt && chown 12:34 /a/b/g && touch -d @5 /a/c.txt && mkdir /a/b/f
WORKDIR /w
FROM busybox
COPY --from=base /a /copied
RUN echo done > /copied/done && rm -r /copied/b
`;

async function buildIn(name: string, driver: string): Promise<{ diffIds: string[]; store: OciStore; desc: Descriptor; stderr: string; root: string }> {
  const root = join(tmp.dir, name);
  await ensureBusybox(root);
  const ctx = await writeContext(tmp.dir, `ctx-${name}`, { Dockerfile: DOCKERFILE, 'c.txt': 'copied\n' });
  const r = await runCli(['build', '--progress=plain', '--storage-driver', driver, '-t', 'out', ctx], { root, env: { SOURCE_DATE_EPOCH: '1000000' } });
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  const store = await OciStore.open(root);
  const img = await findImage(store, 'out');
  return { diffIds: img.config.rootfs.diff_ids, store, desc: img.descriptor, stderr: r.stderr, root };
}

async function entries(store: OciStore, desc: Descriptor): Promise<string[][]> {
  const manifest = JSON.parse((await store.read(desc)).toString('utf8')) as { layers: Descriptor[] };
  const out: string[][] = [];
  for (const l of manifest.layers) {
    const names: string[] = [];
    for await (const e of readTar(await openLayerTar(store, l))) {
      names.push(`${e.header.type} ${e.header.name}`);
      if (e.body) for await (const _ of e.body) void _;
    }
    out.push(names);
  }
  return out;
}

describe('vfs snapshotter', () => {
  it('gives the same layers as overlay for the same build, whiteouts and hard links included', async () => {
    const ov = await buildIn('overlay', 'overlay');
    const vfs = await buildIn('vfs', 'vfs');
    expect(vfs.diffIds).toEqual(ov.diffIds);
    const layers = await entries(vfs.store, vfs.desc);
    const top = layers[layers.length - 1]!;
    expect(top).toContain('file copied/.wh.b');
    expect(top).toContain('file copied/done');
    // The vfs store is plain directories: nothing mounted, a whole rootfs per snapshot.
    expect(await mountsUnder(vfs.root)).toEqual([]);
    const snaps = await readdir(join(vfs.root, 'vfs', 'snapshots'));
    expect(snaps.length).toBeGreaterThan(0);
    expect((await stat(join(vfs.root, 'vfs', 'snapshots', snaps[0]!, 'fs', 'bin', 'sh'))).isFile()).toBe(true);
  }, 90_000);

  it('prune removes the vfs snapshots no image needs, and keeps those of a tagged image', async () => {
    const root = join(tmp.dir, 'prune');
    await ensureBusybox(root);
    const ctx = await writeContext(tmp.dir, 'ctx-prune', { Dockerfile: 'FROM busybox\nRUN echo 1 > /one\nRUN echo 2 > /two\n' });
    const b = await runCli(['build', '-q', '--storage-driver', 'vfs', '-t', 'keep', ctx], { root });
    expect(b.code, b.stderr).toBe(0);
    const snaps = join(root, 'vfs', 'snapshots');
    const before = (await readdir(snaps)).length;
    expect(before).toBe(3); // busybox, RUN one, RUN two
    // Kept: every chain snapshot of the tagged image.
    expect((await runCli(['prune', '-f'], { root })).code).toBe(0);
    expect((await readdir(snaps)).length).toBe(3);
    expect((await runCli(['rmi', 'keep', BUSYBOX_REF], { root })).code).toBe(0);
    const p = await runCli(['prune', '-f'], { root });
    expect(p.code, p.stderr).toBe(0);
    expect(await readdir(snaps)).toEqual([]);
  }, 60_000);

  it('without CAP_SYS_ADMIN (no mount) a build picks vfs by itself and COPY, COPY --from and WORKDIR work; info names vfs', async () => {
    const root = join(tmp.dir, 'nocap');
    await ensureBusybox(root);
    const ctx = await writeContext(tmp.dir, 'ctx-nocap', {
      Dockerfile: 'FROM busybox AS one\nCOPY a.txt /src/a.txt\nFROM busybox\nWORKDIR /app\nCOPY --from=one /src/a.txt ./b.txt\nCOPY a.txt /etc/\n',
      'a.txt': 'A\n',
    });
    const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const r = spawnSync('capsh', ['--drop=cap_sys_admin', '--', '-c', 'exec "$0" "$@"', CLI_EXE, '--root', root, ...args], { encoding: 'utf8' });
        resolve({ code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr });
      });
    const b = await run(['build', '-q', '-t', 'nocap', ctx]);
    expect(b.code, b.stderr).toBe(0);
    const info = await run(['info']);
    expect(info.stdout).toContain('Storage Driver: vfs');
    expect(await readdir(join(root, 'vfs', 'snapshots'))).not.toEqual([]);
    expect(await mountsUnder(root)).toEqual([]);
    // What the image holds, read through the store by a normal run.
    const r = await runCli(['run', '--rm', 'nocap', 'cat', '/app/b.txt', '/etc/a.txt'], { root });
    expect(r.stdout).toBe('A\nA\n');
  }, 60_000);

  it('names a storage driver it does not know in one line', async () => {
    const root = join(tmp.dir, 'bad');
    const ctx = await writeContext(tmp.dir, 'ctx-bad', { Dockerfile: 'FROM busybox\n' });
    const r = await runCli(['build', '--storage-driver', 'zfs', ctx], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe('imgbuild: INVALID_ARGUMENT: invalid storage driver "zfs": overlay, fuse-overlayfs or vfs');
  });
});
