/**
 * The build battery (test/e2e/battery/) against imgbuild: every case is built in process on the
 * busybox base, the image's layers are applied to a directory, and its files and config are
 * checked against what the case expects (BuildKit's and moby's behaviour, read from their
 * integration tests). Cases run a few at a time in one store. A case marked `xfail` must still
 * fail; when it starts passing, drop the mark. The same cases run against buildah in
 * build-battery-buildah.test.ts (opt-in).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { makeTmp, mountsUnder } from '../helpers/tmp.js';
import { checkClean } from '../helpers/store-check.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { build } from '../../src/builder/build.js';
import { OciStore } from '../../src/store/store.js';
import { openLayerTar } from '../../src/store/layers.js';
import { applyLayer } from '../../src/tar/apply.js';
import type { Descriptor } from '../../src/image/types.js';
import { CASES } from './battery/cases/index.js';
import { judgeError, startHttp, verify, writeCaseContext, type Outcome } from './battery/harness.js';
import type { Case } from './battery/types.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let http: { base: string; close: () => Promise<void> };
// Builds share the machine's two cores: a few at a time keeps each one's wait short.
const limit = pLimit(3);
/** Every case's outcome, written to $IMGBUILD_BATTERY_REPORT (JSON) when that is set. */
const outcomes: Record<string, Outcome> = {};

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-battery-');
  root = join(tmp.dir, 'store');
  await ensureBusybox(root);
  http = await startHttp();
}, 120_000);

afterAll(async () => {
  const report = process.env.IMGBUILD_BATTERY_REPORT;
  if (report) await writeFile(report, `${JSON.stringify(outcomes, null, 1)}\n`);
  await http?.close();
  await tmp?.cleanup();
});

async function flatten(desc: Descriptor, dest: string): Promise<void> {
  const store = await OciStore.open(root);
  await mkdir(dest, { recursive: true });
  const manifest = JSON.parse((await store.read(desc)).toString('utf8')) as { layers: Descriptor[] };
  for (const l of manifest.layers) await applyLayer(dest, await openLayerTar(store, l), { mode: 'flat' });
}

async function runCase(c: Case): Promise<Outcome> {
  const dir = join(tmp.dir, c.name);
  for (const [i, b] of (c.bases ?? []).entries()) {
    const ctx = join(dir, `base-${i}`);
    await writeCaseContext(ctx, b, http.base);
    await build({ root, contextDir: ctx, tags: [b.tag] });
  }
  const ctx = join(dir, 'context');
  await writeCaseContext(ctx, c, http.base);
  const secrets = [];
  for (const [id, value] of Object.entries(c.secrets ?? {})) {
    const src = join(dir, `secret-${id}`);
    await writeFile(src, value);
    secrets.push({ id, src });
  }
  let result;
  try {
    result = await build({
      root, contextDir: ctx, tags: [`localhost/battery/${c.name}:latest`],
      ...(c.args ? { buildArgs: c.args } : {}),
      ...(c.target ? { target: c.target } : {}),
      ...(secrets.length ? { secrets } : {}),
    });
  } catch (e) {
    return judgeError(c, e instanceof Error ? e.message : String(e));
  }
  const judged = judgeError(c, undefined);
  if (!judged.ok) return judged;
  const rootfs = join(dir, 'rootfs');
  await flatten(result.descriptor, rootfs);
  const problems = await verify(c, rootfs, result.config);
  return { ok: problems.length === 0, problems };
}

describe('build battery: imgbuild', () => {
  it('has unique case names', () => {
    const names = CASES.map((c) => c.name);
    expect(names.length).toBe(new Set(names).size);
  });

  for (const c of CASES) {
    const t = c.xfail ? it.concurrent.fails : it.concurrent;
    t(`${c.name} (${c.upstream})`, async () => {
      const outcome = await limit(() => runCase(c));
      outcomes[c.name] = outcome;
      expect(outcome.problems.join('\n')).toBe('');
    }, 180_000);
  }
});

describe('build battery: after every case', () => {
  // Many cases fail on purpose (errors, failing RUNs, refused mounts): none may leave a mount, a
  // step's scratch dir, an active snapshot, an ingest or lease file or a half-written cache entry.
  it('leaves the store clean and nothing mounted', async () => {
    expect(Object.keys(outcomes).length).toBe(CASES.length);
    expect(await checkClean(root)).toEqual([]);
    expect(await mountsUnder(tmp.dir)).toEqual([]);
  });
});

