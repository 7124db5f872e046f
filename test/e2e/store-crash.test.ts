/**
 * kill -9 at any moment: each store-changing command (build, pull, push, load, tag, rmi, prune)
 * is run as the real CLI and killed (its whole process group, with SIGKILL) after delays spread
 * over the time a full run of it takes. After every kill the store must be consistent as the next
 * command sees it (test/helpers/store-check.ts), `images` must work, and `prune` must succeed and
 * leave no leftover of the dead process (ingest, lease, lock and temp files, scratch dirs, stale
 * snapshots, mounts). After each command's round, `inspect`, `build` and `run` must work too.
 *
 * A run the timer did not catch must have succeeded: a failure there is a store a previous kill
 * broke. Nothing here depends on where a kill lands, only on what every kill must leave behind.
 * IMGBUILD_CRASH_SCALE=N multiplies the kill points, for a longer hunt by hand.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_EXE, runCli, type CliResult } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { checkClean, checkStore } from '../helpers/store-check.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage } from '../../src/store/images.js';
import { chainIds } from '../../src/image/model.js';
import { listLazyDigests } from '../../src/store/lazy.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let root: string;
let reg: TestRegistry;
let ctx: string;
let archive: string;
const SCALE = Math.max(1, Number(process.env.IMGBUILD_CRASH_SCALE ?? 1) || 1);
/** Kill points tried, per command (reported at the end). */
const tried: Record<string, { killed: number; finished: number }> = {};

const cli = async (args: string[], o: { input?: string } = {}): Promise<CliResult> => {
  const r = await runCli(args, { root, ...o });
  if (r.code !== 0) throw new Error(`imgbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
};

/** Whether any process of group `pgid` is left. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `imgbuild args` in a process group of its own and SIGKILLs the group after `delayMs`
 * (mount(8), zstd and other helpers die with it, so none finishes its work after the check).
 * Resolves once every process of the group is gone.
 */
async function runKilled(args: string[], delayMs: number): Promise<{ killed: boolean; r: CliResult }> {
  const child = spawn(CLI_EXE, ['--root', root, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pgid = child.pid!;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      killed = false; // finished just before
    }
  }, delayMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('close', (c, s) => res({ code: c, signal: s })),
  );
  clearTimeout(timer);
  for (let i = 0; groupAlive(pgid); i++) {
    if (i === 500) throw new Error(`processes of the killed imgbuild ${args[0]} are still running`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const r = { code: code ?? 137, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  return { killed: killed && signal === 'SIGKILL', r };
}

/** The invariants after a kill: a consistent store, a working `images`, a `prune` that cleans up. */
async function afterKill(what: string): Promise<void> {
  expect(await checkStore(root), `${what}: store as the next command sees it`).toEqual([]);
  await cli(['images', '-q']);
  await cli(['prune']);
  expect(await checkClean(root), `${what}: after prune`).toEqual([]);
}

/** Other commands still work: inspect, a build and a run. */
async function freshCommands(): Promise<void> {
  await cli(['inspect', 'busybox']);
  const dir = join(tmp.dir, 'fresh');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo fresh > /fresh\n');
  await cli(['build', '-q', '-t', 'fresh:1', dir]);
  const r = await cli(['run', '--rm', 'fresh:1', 'cat', '/fresh']);
  expect(r.stdout).toBe('fresh\n');
  await cli(['rmi', 'fresh:1']);
  await cli(['prune']);
  expect(await checkClean(root)).toEqual([]);
}

/**
 * Runs `args()` once in full (it must succeed; its time sets the spread), then `points` times
 * killed at delays spread evenly over that time, with `before()` setting up each run.
 */
async function killLoop(name: string, basePoints: number, before: (i: number) => Promise<void>, args: (i: number) => string[]): Promise<void> {
  const points = basePoints * SCALE;
  tried[name] = { killed: 0, finished: 0 };
  await before(0);
  const t0 = Date.now();
  await cli(args(0));
  const full = Date.now() - t0;
  await afterKill(`${name} (not killed)`);
  for (let i = 1; i <= points; i++) {
    await before(i);
    const delay = Math.round((full * (i - 0.5)) / points);
    const { killed, r } = await runKilled(args(i), delay);
    if (killed) tried[name].killed++;
    else {
      // The timer came too late: then the command must have done its job.
      expect(r.code, `${name} finished after ${delay} ms but failed: ${r.stderr}`).toBe(0);
      tried[name].finished++;
    }
    await afterKill(`${name} killed after ${delay} of ${full} ms`);
  }
  await freshCommands();
}

async function busyboxChain(): Promise<string> {
  const s = await OciStore.open(root);
  const img = await loadImage(s, (await s.resolve(BUSYBOX_REF))!);
  return chainIds(img.config.rootfs.diff_ids).at(-1)!;
}

beforeAll(async () => {
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-crash-'));
  reg = await startRegistry({ mode: 'none' });
  ctx = join(tmp.dir, 'ctx');
  await mkdir(ctx);
  // An image with an 8 MB layer of random bytes (incompressible), so that transfers take a while.
  const big = join(tmp.dir, 'big');
  await mkdir(big);
  await writeFile(join(big, 'Dockerfile'), 'FROM busybox\nRUN head -c 8388608 /dev/urandom > /random && echo 1 > /one\n');
  await cli(['build', '-q', '-t', 'big:1', big]);
  archive = join(tmp.dir, 'big.tar');
  await cli(['save', '-o', archive, 'big:1']);
  await cli(['push', 'big:1', `${reg.host}/big:1`]);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
  if (Object.keys(tried).length > 0) console.log('kill points (killed/finished):', JSON.stringify(tried));
});

describe('SIGKILL at any moment leaves a store the next command can use', () => {
  it('build (unpack, RUN, COPY, commit, tag)', async () => {
    await writeFile(
      join(ctx, 'Dockerfile'),
      'FROM busybox\nARG N\nRUN echo $N > /n && mkdir /d && for i in 1 2 3 4 5 6 7 8; do echo $i > /d/$i; done\nCOPY f /f\nRUN cat /n /f > /g\n',
    );
    await writeFile(join(ctx, 'f'), 'f\n');
    await killLoop(
      'build',
      14,
      async (i) => {
        // Every other build starts without busybox's snapshot, so kills land in the unpack too.
        if (i % 2 === 1) {
          // Snapshots are a cache of the layers only once every built layer is written as a
          // blob (store/lazy.ts): write them before dropping every snapshot.
          const s = await OciStore.open(root);
          for (const d of await listLazyDigests(root)) await s.materialize(d);
          await s.release();
          const sn = await OverlaySnapshotter.open(join(root, 'overlay'));
          await sn.removeWhere((all) => all.keys());
          expect(await sn.acquire(await busyboxChain())).toBe(false);
        }
      },
      (i) => ['build', '-q', '--build-arg', `N=${i}-${Date.now()}`, ctx],
    );
  }, 120_000 * SCALE);

  it('tag', async () => {
    await killLoop('tag', 6, async () => {}, (i) => ['tag', 'busybox', `tagged:${i}`]);
  }, 60_000 * SCALE);

  it('push (compress, upload)', async () => {
    // The prune after each kill takes the compressed layers (no image names them), so every push
    // compresses again; a new repository each time makes it upload.
    await killLoop('push', 8, async () => {}, (i) => ['push', 'big:1', `${reg.host}/pushed${i}:1`]);
  }, 90_000 * SCALE);

  it('pull (download, place, tag)', async () => {
    const ref = `${reg.host}/big:1`;
    await killLoop(
      'pull',
      8,
      async () => {
        const r = await runCli(['rmi', ref], { root });
        if (r.code !== 0 && !/NOT_FOUND/.test(r.stderr)) throw new Error(r.stderr);
      },
      () => ['pull', '-q', ref],
    );
  }, 90_000 * SCALE);

  it('load', async () => {
    await killLoop(
      'load',
      8,
      async () => {
        const r = await runCli(['rmi', 'big:1'], { root });
        if (r.code !== 0 && !/NOT_FOUND/.test(r.stderr)) throw new Error(r.stderr);
        await cli(['prune']);
      },
      () => ['load', '-q', '-i', archive],
    );
  }, 90_000 * SCALE);

  it('rmi', async () => {
    await killLoop('rmi', 8, async () => void (await cli(['load', '-q', '-i', archive])), () => ['rmi', 'big:1']);
  }, 90_000 * SCALE);

  it('prune (images, blobs, snapshots)', async () => {
    await killLoop(
      'prune',
      8,
      async () => {
        // Garbage of every kind: an image nothing tags any more, its blobs and its snapshots.
        await cli(['load', '-q', '-i', archive]);
        await cli(['run', '--rm', 'big:1', 'true']);
        const s = await OciStore.open(root);
        await s.untag('docker.io/library/big:1');
      },
      () => ['prune'],
    );
  }, 90_000 * SCALE);
});
