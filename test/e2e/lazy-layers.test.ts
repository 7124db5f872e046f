/**
 * Build layers kept unwritten (store/lazy.ts): a build hashes each layer and writes no blob; the
 * bytes are packed again from the committed snapshot when save, push or --output need them, and
 * are the bytes `--write-layers` (the eager path) writes. Interop of the results (skopeo, podman,
 * the registry and a second store), prune keeping what the layers need, and the one-line failures
 * of a snapshot changed or gone, with no blob stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeTmp } from '../helpers/tmp.js';
import { expectOneLineError, runCli, type CliResult } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { writeContext } from '../helpers/context.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { checkClean, checkStore } from '../helpers/store-check.js';
import { validateImage } from '../conformance/validate-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { listLazyLayers, readLazyLayer } from '../../src/store/lazy.js';
import type { Digest } from '../../src/image/digest.js';

const tmp = await makeTmp('imgbuild-e2e-lazy-');
const lazy = join(tmp.dir, 'lazy');
const eager = join(tmp.dir, 'eager');
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
let reg: TestRegistry;
let ctx: string;

// A COPY, and a RUN whose layer has a whiteout, an opaque directory, a hard link and a larger file.
const DOCKERFILE = `FROM busybox
COPY tree /tree
RUN rm /tree/a && rm -rf /tree/sub && mkdir /tree/sub && echo new > /tree/sub/n && ln /tree/b /tree/b2 && head -c 3000000 /dev/zero | tr '\\0' x > /big
`;

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
  await ensureBusybox(lazy);
  await ensureBusybox(eager);
  ctx = await writeContext(tmp.dir, 'ctx', { Dockerfile: DOCKERFILE, 'tree/a': 'a\n', 'tree/b': 'b\n', 'tree/sub/old': 'old\n' });
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

async function cli(args: string[], root: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const r = await runCli(args, { root, env, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`imgbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

/** The layers a build made (all but busybox's). */
async function builtLayers(root: string, ref: string): Promise<Digest[]> {
  const store = await OciStore.open(root);
  try {
    return (await findImage(store, ref)).manifest.layers.slice(1).map((l) => l.digest);
  } finally {
    await store.release();
  }
}

const blobFile = (root: string, d: string): string => join(root, 'blobs', 'sha256', d.slice('sha256:'.length));
const sha256 = (p: string): string => `sha256:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;

describe('lazy build layers', () => {
  it('a build writes no layer blob; save, push and --output give the bytes the eager build writes', async () => {
    const a = await cli(['build', '-q', '-t', 'lz:1', ctx], lazy, EPOCH);
    const b = await cli(['build', '-q', '--write-layers', '-t', 'lz:1', ctx], eager, EPOCH);
    expect(a.stdout).toBe(b.stdout); // same diffIDs and layer digests: the same image id
    const layers = await builtLayers(lazy, 'lz:1');
    expect(layers).toHaveLength(2);
    for (const d of layers) {
      expect(existsSync(blobFile(lazy, d))).toBe(false);
      expect(readLazyLayer(lazy, d)?.size).toBeGreaterThan(0);
      expect(sha256(blobFile(eager, d))).toBe(d);
    }
    expect(await checkStore(lazy)).toEqual([]);

    // save streams the layers packed again: the same archive bytes as from the eager store.
    for (const format of ['docker', 'oci']) {
      const la = join(tmp.dir, `lazy-${format}.tar`);
      const ea = join(tmp.dir, `eager-${format}.tar`);
      await cli(['save', '--format', format, '-o', la, 'lz:1'], lazy);
      await cli(['save', '--format', format, '-o', ea, 'lz:1'], eager);
      expect(sha256(la)).toBe(sha256(ea));
    }
    // skopeo and podman read the archive.
    const sk = spawnSync('skopeo', ['copy', '-q', `docker-archive:${join(tmp.dir, 'lazy-docker.tar')}`, `oci:${join(tmp.dir, 'sk')}:lz`], { encoding: 'utf8' });
    expect(sk.status, sk.stderr).toBe(0);
    const p = join(tmp.dir, 'podman');
    const podman = ['--root', join(p, 'root'), '--runroot', join(p, 'run'), '--tmpdir', join(p, 'tmp'), '--storage-driver', 'vfs', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
    const load = spawnSync('podman', [...podman, 'load', '-i', join(tmp.dir, 'lazy-docker.tar')], { encoding: 'utf8' });
    expect(load.status, load.stderr).toBe(0);
    const loaded = /Loaded image: (\S+)/.exec(load.stdout)?.[1];
    expect(loaded, load.stdout).toBeDefined();
    const run = spawnSync('podman', [...podman, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', loaded!, 'sh', '-c', 'ls /tree; cat /tree/sub/n; wc -c < /big'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe('b\nb2\nsub\nnew\n3000000\n');
    spawnSync('podman', [...podman, 'system', 'reset', '-f']);

    // push compresses from the snapshot: the uncompressed blob is still not written.
    await cli(['push', 'lz:1', `${reg.host}/lazy/lz:1`], lazy);
    for (const d of layers) expect(existsSync(blobFile(lazy, d))).toBe(false);
    const other = join(tmp.dir, 'pulled');
    await cli(['pull', '-q', `${reg.host}/lazy/lz:1`], other);
    const inspect = JSON.parse((await cli(['inspect', `${reg.host}/lazy/lz:1`], other)).stdout) as { Id: string }[];
    expect(inspect[0]!.Id).toBe(a.stdout.trim());
    expect((await cli(['run', '--rm', `${reg.host}/lazy/lz:1`, 'cat', '/tree/b2', '/tree/sub/n'], other)).stdout).toBe('b\nnew\n');

    // --output writes an OCI layout of files: the blobs are written (verified) then, and are the
    // eager build's bytes.
    const out = join(tmp.dir, 'out');
    await cli(['build', '-q', '-t', 'lz:1', '--output', `type=oci,dest=${out}`, ctx], lazy, EPOCH);
    for (const d of layers) {
      expect(sha256(blobFile(out, d))).toBe(d);
      expect(sha256(blobFile(lazy, d))).toBe(d);
      expect(readLazyLayer(lazy, d)).toBeUndefined();
    }
    const store = await OciStore.open(lazy);
    await validateImage(store, (await findImage(store, 'lz:1')).descriptor);
    await store.release();
  }, 90_000);

  it('prune keeps the snapshots lazy layers need; once no image names them they go', async () => {
    await writeContext(tmp.dir, 'ctx2', { Dockerfile: 'FROM busybox\nRUN echo two > /two\n' });
    await cli(['build', '-q', '-t', 'lz:2', join(tmp.dir, 'ctx2')], lazy);
    const [d] = await builtLayers(lazy, 'lz:2');
    const rec = readLazyLayer(lazy, d!)!;
    await cli(['prune'], lazy);
    expect(existsSync(join(lazy, rec.dir))).toBe(true);
    expect(await checkClean(lazy)).toEqual([]);
    await cli(['save', '-o', join(tmp.dir, 'two.tar'), 'lz:2'], lazy);
    await cli(['rmi', 'lz:2'], lazy);
    await cli(['prune'], lazy);
    expect(readLazyLayer(lazy, d!)).toBeUndefined();
    expect(existsSync(join(lazy, rec.dir))).toBe(false);
    expect((await listLazyLayers(lazy)).map((r) => r.digest)).not.toContain(d);
    expect(await checkClean(lazy)).toEqual([]);
  }, 60_000);

  it('a snapshot that changed fails in one line and stores no blob; one that is gone too', async () => {
    await writeContext(tmp.dir, 'ctx3', { Dockerfile: 'FROM busybox\nRUN echo three > /three\n' });
    await cli(['build', '-q', '-t', 'lz:3', join(tmp.dir, 'ctx3')], lazy);
    const [d] = await builtLayers(lazy, 'lz:3');
    const rec = readLazyLayer(lazy, d!)!;
    await appendFile(join(lazy, rec.dir, 'three'), 'tampered\n');
    const changed = /^imgbuild: FAILED_PRECONDITION: layer sha256:[0-9a-f]{64} no longer matches its build snapshot overlay\/snapshots\/\d+\/fs \(it packs to sha256:[0-9a-f]{64}, \d+ bytes\): the image is damaged, build it again$/;
    expectOneLineError(await runCli(['save', '-o', join(tmp.dir, 'three.tar'), 'lz:3'], { root: lazy }), changed);
    expectOneLineError(await runCli(['push', '--compression', 'none', 'lz:3', `${reg.host}/lazy/lz:3`], { root: lazy }), changed);
    expectOneLineError(await runCli(['push', 'lz:3', `${reg.host}/lazy/lz:3`], { root: lazy }), changed);
    expect(existsSync(blobFile(lazy, d!))).toBe(false);
    // No conversion of it was recorded either.
    expect(existsSync(join(lazy, 'cache', 'compressed', `sha256-${d!.slice(7)}.gzip.json`))).toBe(false);

    await rm(join(lazy, rec.dir), { recursive: true });
    await mkdir(join(tmp.dir, 'gone'), { recursive: true });
    const gone = /^imgbuild: NOT_FOUND: layer sha256:[0-9a-f]{64} was never written as a blob and its build snapshot overlay\/snapshots\/\d+\/fs is gone: the image is damaged, build it again$/;
    expectOneLineError(await runCli(['save', '-o', join(tmp.dir, 'gone', 'three.tar'), 'lz:3'], { root: lazy }), gone);
    const pushed = await runCli(['push', 'lz:3', `${reg.host}/lazy/lz:3`], { root: lazy });
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr.trim()).toMatch(gone);
    expect(existsSync(blobFile(lazy, d!))).toBe(false);
  }, 60_000);
});
