/**
 * Builds and prune at the same time: two build loops (fresh steps, cache hits whose layers and
 * snapshots a prune may just have taken, tags that move) run against a loop of `prune` and
 * `prune -a`. Every build and every prune must succeed: what a build uses is leased, and prune
 * spares leased blobs and snapshots. Afterwards the store is consistent and a last prune leaves
 * no leftovers.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tmpBusyboxStore } from '../helpers/base-image.js';
import { checkClean, checkStore } from '../helpers/store-check.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let root: string;

beforeAll(async () => {
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-prune-race-'));
  // A container made from busybox keeps it through `prune -a`, as in Docker.
  const r = await runCli(['run', '--name', 'keep', 'busybox', 'true'], { root });
  expect(r.code, r.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await runCli(['rm', '-f', 'keep'], { root });
  await tmp?.cleanup();
});

const BUILDS_PER_WORKER = 18;

describe('builds racing prune', () => {
  it(`${2 * BUILDS_PER_WORKER} builds against a prune / prune -a loop: no failures`, async () => {
    const failures: string[] = [];
    let buildsDone = 0;
    let prunes = 0;
    let stop = false;
    const pruneLoop = (async () => {
      while (!stop) {
        const r = await runCli(prunes % 2 === 0 ? ['prune'] : ['prune', '-a'], { root });
        prunes++;
        if (r.code !== 0) failures.push(`prune: ${r.stderr.trim()}`);
      }
    })();
    const worker = async (w: number): Promise<void> => {
      const ctx = join(tmp.dir, `ctx${w}`);
      await mkdir(ctx);
      await writeFile(
        join(ctx, 'Dockerfile'),
        'FROM busybox\nARG N\nRUN echo $N > /n\nRUN echo b > /b\nCOPY f /f\nRUN cat /n /b /f > /all\n',
      );
      for (let i = 0; i < BUILDS_PER_WORKER; i++) {
        // Every third build repeats an earlier one: its steps are cache hits whose layers (and
        // snapshots) a prune may have taken meanwhile.
        const n = i % 3 === 2 ? `${w}-${i - 2}` : `${w}-${i}`;
        await writeFile(join(ctx, 'f'), `${n}\n`);
        const r: CliResult = await runCli(['build', '-q', '--build-arg', `N=${n}`, '-t', `race${w}:${i % 2}`, ctx], { root });
        buildsDone++;
        if (r.code !== 0) failures.push(`build ${w}/${i}: ${r.stderr.trim()}`);
      }
    };
    try {
      await Promise.all([worker(1), worker(2)]);
    } finally {
      stop = true;
      await pruneLoop;
    }
    console.log(`builds: ${buildsDone}, prunes: ${prunes}, failures: ${failures.length}`);
    expect(failures).toEqual([]);
    expect(buildsDone).toBe(2 * BUILDS_PER_WORKER);
    expect(prunes).toBeGreaterThan(1);

    // The store is whole: a rebuild (from whatever the prunes left of the cache) runs.
    expect(await checkStore(root)).toEqual([]);
    for (const w of [1, 2]) {
      const ctx = join(tmp.dir, `ctx${w}`);
      const b = await runCli(['build', '-q', '--build-arg', `N=${w}-last`, '-t', `final${w}`, ctx], { root });
      expect(b.code, b.stderr).toBe(0);
      const r = await runCli(['run', '--rm', `final${w}`, 'cat', '/all'], { root });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${w}-last\\nb\\n${w}-\\d+\\n$`));
    }
    const p = await runCli(['prune', '-a'], { root });
    expect(p.code, p.stderr).toBe(0);
    expect(await checkClean(root)).toEqual([]);
  }, 180_000);
});
