/**
 * `build --cache-to type=registry` and `--cache-from` between two stores standing for two machines,
 * through the real distribution registry: a build on the second store with the first's cache runs
 * no RUN (each RUN writes random bytes, so a RUN that ran would change the image) and gives the
 * very same image digest, with no snapshot made (a hit needs descriptors only, the image's blobs
 * are fetched at the end); after a context change only the steps whose keys changed run, and later
 * steps hit again; mode=min keeps the image's steps, mode=max every stage's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { validateImage } from '../conformance/validate-image.js';

const tmp = await makeTmp('imgbuild-e2e-cache-registry-');
let reg: TestRegistry;
let n = 0;

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

/** A fresh store with busybox: one machine. */
async function machine(): Promise<string> {
  const root = join(tmp.dir, `m${++n}`);
  await ensureBusybox(root);
  return root;
}

async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(tmp.dir, name);
  await mkdir(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  return dir;
}

/** Each step's outcome in plain progress: `CACHED`, `DONE`, or `ERROR`, by the step's label. */
export function outcomes(stderr: string): Map<string, string> {
  const labels = new Map<string, string>();
  const out = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const [, id, rest] = m as unknown as [string, string, string];
    if (!labels.has(id)) labels.set(id, rest);
    else if (rest === 'CACHED' || /^DONE /.test(rest) || rest.startsWith('ERROR')) out.set(labels.get(id)!, rest.split(' ')[0]!);
  }
  return out;
}

async function build(root: string, ctx: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult & { id: string }> {
  const r = await runCli(['build', '--progress=plain', ...args, ctx], { root, env });
  expect(r.code, r.stderr).toBe(0);
  return { ...r, id: r.stdout.trim() };
}

async function manifestDigest(root: string, ref: string): Promise<string> {
  const store = await OciStore.open(root);
  try {
    const img = await findImage(store, ref);
    await validateImage(store, img.descriptor);
    return img.descriptor.digest;
  } finally {
    await store.release();
  }
}

const DOCKERFILE = [
  'FROM busybox',
  'COPY a /a',
  'RUN head -c 64 /dev/urandom > /r1',
  'WORKDIR /w',
  'COPY b .',
  'RUN cat /a b > /ab && head -c 64 /dev/urandom > /r2',
  'ENV X=1',
  'LABEL l=v',
  'CMD ["cat", "/ab"]',
  '',
].join('\n');

it('a fresh store with the cache runs no RUN, makes no snapshot, and gives the same image digest', async () => {
  const ctx = await context('full', { Dockerfile: DOCKERFILE, a: 'A\n', b: 'B\n' });
  const ref = `${reg.host}/cache/full:c`;
  const m1 = await machine();
  const first = await build(m1, ctx, ['-t', 'app:1', '--cache-to', `type=registry,ref=${ref}`]);
  expect(first.stderr).toContain(`exporting cache to ${ref}`);

  const m2 = await machine();
  const second = await build(m2, ctx, ['-t', 'app:1', '--cache-from', ref]);
  const steps = [...outcomes(second.stderr)].filter(([l]) => /^\[\S+ \d+\/\d+\] (RUN|COPY)/.test(l));
  expect(steps.length).toBe(4);
  expect(steps.every(([, o]) => o === 'CACHED'), second.stderr).toBe(true);
  expect(second.id).toBe(first.id);
  expect(await manifestDigest(m2, 'app:1')).toBe(await manifestDigest(m1, 'app:1'));
  // Nothing was unpacked or run: no snapshot exists on the second machine.
  expect(await readdir(join(m2, 'overlay', 'snapshots')).catch(() => [])).toEqual([]);
  // The image is whole there: it runs.
  const run = await runCli(['run', '--rm', '--network', 'none', 'app:1'], { root: m2 });
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toBe('A\nB\n');
}, 90_000);
