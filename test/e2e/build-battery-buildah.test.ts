/**
 * The build battery (test/e2e/battery/) against buildah, opt-in (IMGBUILD_BATTERY_BUILDAH=1: it
 * takes several minutes): each case is built with `buildah build --isolation chroot` on the same
 * busybox base (copied into a private vfs store with skopeo), its image mounted and checked as
 * build-battery.test.ts checks imgbuild's. A case marked `buildahFails` must fail (it records
 * where buildah 1.28 differs from BuildKit); `buildahSkip` cases are not given to buildah.
 * $IMGBUILD_BATTERY_REPORT names a JSON file for every case's outcome.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { makeTmp } from '../helpers/tmp.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import type { ImageConfig } from '../../src/image/types.js';
import { CASES } from './battery/cases/index.js';
import { judgeError, startHttp, verify, writeCaseContext, type Outcome } from './battery/harness.js';
import type { Case } from './battery/types.js';

const ENABLED = process.env.IMGBUILD_BATTERY_BUILDAH === '1';

let tmp: { dir: string; cleanup: () => Promise<void> };
let bRoot: string;
let bRun: string;
let http: { base: string; close: () => Promise<void> };
const limit = pLimit(2);
const outcomes: Record<string, Outcome> = {};

/** Runs buildah on the private store; resolves with its status and output. */
function buildah(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // TMPDIR keeps buildah's cache mounts ($TMPDIR/buildah-cache) in this test's directory, not host-wide.
    const p = spawn('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp.dir } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8').trim(), stderr: Buffer.concat(err).toString('utf8').trim() }));
  });
}

async function buildahOk(args: string[]): Promise<string> {
  const r = await buildah(args);
  if (r.code !== 0) throw new Error(`buildah ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  if (!ENABLED) return;
  tmp = await makeTmp('imgbuild-battery-buildah-');
  const root = join(tmp.dir, 'store');
  bRoot = join(tmp.dir, 'buildah-root');
  bRun = join(tmp.dir, 'buildah-run');
  await ensureBusybox(root);
  const r = spawnSync('skopeo', ['copy', '-q', `oci:${root}:${BUSYBOX_REF}`, `containers-storage:[vfs@${bRoot}+${bRun}]${BUSYBOX_REF}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`skopeo copy failed: ${r.stderr}`);
  http = await startHttp();
}, 120_000);

afterAll(async () => {
  if (!ENABLED) return;
  const report = process.env.IMGBUILD_BATTERY_REPORT;
  if (report) await writeFile(report, `${JSON.stringify(outcomes, null, 1)}\n`);
  await http?.close();
  // buildah's vfs store may hold mounts of its containers; unmount them before removal.
  spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'umount', '--all']);
  await tmp?.cleanup();
});

function buildArgs(c: { args?: Record<string, string> }): string[] {
  return Object.entries(c.args ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
}

async function runCase(c: Case): Promise<Outcome> {
  const dir = join(tmp.dir, c.name);
  // Docker's image format: buildah drops SHELL, ONBUILD and HEALTHCHECK from an OCI config.
  const common = ['build', '--isolation', 'chroot', '--pull=never', '-q', '--layers', '--format', 'docker'];
  for (const [i, b] of (c.bases ?? []).entries()) {
    const ctx = join(dir, `base-${i}`);
    await writeCaseContext(ctx, b, http.base);
    await buildahOk([...common, '-t', b.tag, ctx]);
  }
  const ctx = join(dir, 'context');
  await writeCaseContext(ctx, c, http.base);
  const secrets: string[] = [];
  for (const [id, value] of Object.entries(c.secrets ?? {})) {
    const src = join(dir, `secret-${id}`);
    await writeFile(src, value);
    secrets.push('--secret', `id=${id},src=${src}`);
  }
  const tag = `localhost/battery/${c.name}:latest`;
  const r = await buildah([...common, ...buildArgs(c), ...(c.target ? ['--target', c.target] : []), ...secrets, '-t', tag, ctx]);
  if (r.code !== 0) return judgeError(c, r.stderr || `exit status ${r.code}`);
  const judged = judgeError(c, undefined);
  if (!judged.ok) return judged;
  const oci = (JSON.parse(await buildahOk(['inspect', '--type', 'image', tag])) as { Docker: ImageConfig }).Docker;
  // buildah labels every image with its version: an artefact of the builder, not of the Dockerfile.
  const labels = oci.config?.Labels;
  if (labels) delete labels['io.buildah.version'];
  const ctr = await buildahOk(['from', '--pull=never', '-q', tag]);
  try {
    const mnt = await buildahOk(['mount', ctr]);
    const problems = await verify(c, mnt, oci);
    return { ok: problems.length === 0, problems };
  } finally {
    await buildah(['umount', ctr]);
    await buildah(['rm', ctr]);
  }
}

// Without the opt-in, one skipped test stands for the battery (not 250 skipped ones).
describe.skipIf(ENABLED)('build battery: buildah', () => {
  it.skip('every case against buildah (set IMGBUILD_BATTERY_BUILDAH=1)', () => {});
});

describe.runIf(ENABLED)('build battery: buildah', () => {
  for (const c of CASES) {
    if (c.buildahSkip) {
      it.skip(`${c.name} (${c.buildahSkip})`, () => {});
      continue;
    }
    const t = c.buildahFails ? it.concurrent.fails : it.concurrent;
    t(`${c.name} (${c.upstream})`, async () => {
      const outcome = await limit(() => runCase(c));
      outcomes[c.name] = outcome;
      expect(outcome.problems.join('\n')).toBe('');
    }, 300_000);
  }
});
