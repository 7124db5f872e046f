/**
 * Build speed beside BuildKit and buildah, side by side in one run on the same contexts and the
 * same local busybox base (no Docker Hub):
 *  - imgbuild through its executable (`bin/imgbuild build --network host`, Node's start-up included);
 *  - BuildKit in a private dockerd (Debian's docker.io: own data root, exec root and socket,
 *    overlay2, no bridge or iptables), `DOCKER_BUILDKIT=1 docker build --network host`;
 *  - buildah on overlay with runc (`bud --isolation oci --runtime runc --layers`), own root and runroot.
 * A peer that is not installed or does not start is skipped with one line; one that fails later is
 * left out from there on. Everything started is stopped and everything mounted unmounted at the end,
 * on Ctrl-C too (run it with `node --import tsx`: the tsx command kills a script whose clean-up
 * takes more than 30 ms).
 *
 *   npm run bench                                   # every area (BENCH_ONLY=build for this one)
 *   BENCH_QUICK=1 node --import tsx bench/build.ts  # small sizes (about 4 min): to check it works
 *   BENCH_LARGE=1 node --import tsx bench/build.ts  # adds 100k files and a 2 GB file (61 min more at load 12-16)
 *   BENCH_RUNS=3                                    # repetitions per build, medians shown (default 1)
 *   BENCH_WORKLOADS=doc,files                       # workloads whose names start so (doc, node_modules, files-, bytes-)
 *   BENCH_NO_INSTRUCTIONS=1                         # skips the per-instruction scaling of imgbuild alone
 *
 * Cold means new storage holding the base image and one probe build (its snapshot unpacked, the
 * overlay probe's answer cached, a new dockerd's worker set up): no build cache of the workload.
 * Workloads (bench/build/workloads.ts): hello (one small file copied in and read by a RUN: the
 * fixed cost alone); /usr/share/doc copied in, copied again by a RUN with deletes and a RUN writing
 * an 80 MB file; the project's node_modules; files-N (1k → 10k → 100k tiny files) and bytes-N (10
 * MB → 200 MB → 2 GB in one file), each copied in and copied again by a RUN. Each is built cold
 * (every tool emptied of images and cache but the base), as a no-op rebuild, and after one file
 * changed. The tools take turns in a rotating order, with a `sync` (untimed) before each build so
 * one tool's writeback does not land in another's time. Each cold build starts on a new file system
 * of the tool's own (bench/build/volume.ts: a loop-mounted ext4 made like the host's, with direct
 * I/O; without loop mounts, the old storage goes into a trash emptied at the end), so nothing is
 * deleted while builds are timed and no tool's removals slow another's file creation (trash.ts says
 * why: ext4 without a journal makes file creation slow for minutes after many files were removed);
 * on that new storage each tool first builds a one-line probe (untimed), so a cold build does not
 * include a tool's first-use set-up.
 * One pass of the default workloads took 10.5 min on 2 cores at load 10-14 (other work running).
 * Peak memory is GNU time's maximum RSS: the largest process of the command's tree (for imgbuild,
 * its Node process); BuildKit's is in dockerd, which the client's figure would not show.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBusybox } from '../test/helpers/base-image.js';
import { REPO_ROOT, CLI_EXE, CLI_MAIN } from '../test/helpers/cli.js';
import { Imgbuild, type Builder } from './build/tools.js';
import { BuildKit } from './build/buildkit.js';
import { Buildah } from './build/buildah.js';
import { GNU_TIME, removeTree, run } from './build/measure.js';
import { bigFile, docTree, hello, nodeModules, tinyFiles, type Workload, type WorkloadSpec } from './build/workloads.js';
import { mainTable, record, seriesTable, summary, type Results, type Scenario } from './build/report.js';
import { instructionScaling } from './build/instructions.js';
import { Trash } from './build/trash.js';
import { Volumes, type Storage } from './build/volume.js';

const quick = process.env.BENCH_QUICK === '1';
const large = process.env.BENCH_LARGE === '1';
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const only = process.env.BENCH_WORKLOADS?.split(',').map((s) => s.trim()).filter(Boolean);

function specs(): WorkloadSpec[] {
  const all = quick
    ? [hello(), docTree(600, 8), nodeModules(REPO_ROOT, 400), ...[100, 1000, 5000].map(tinyFiles), ...[1, 10, 50].map(bigFile)]
    : [
        hello(),
        docTree(undefined, 80),
        nodeModules(REPO_ROOT, undefined),
        ...[1000, 10000, ...(large ? [100000] : [])].map(tinyFiles),
        ...[10, 200, ...(large ? [2000] : [])].map(bigFile),
      ];
  return all.filter((s) => !only || only.some((o) => s.name.startsWith(o)));
}

const say = (s: string): boolean => process.stderr.write(`bench/build: ${s}\n`);

async function main(): Promise<void> {
  if (!existsSync(CLI_MAIN)) run([process.execPath, join(REPO_ROOT, 'scripts', 'build.mjs')]);
  // Short path: dockerd's containerd puts sockets under the exec root (108-byte limit).
  const work = mkdtempSync(join(process.env.IMGBUILD_TEST_TMP ?? tmpdir(), 'ib-bench-'));
  const builders: Builder[] = [];
  let volumes: Volumes | string = 'not made yet';
  let cleaned = false;
  const cleanup = (): void => {
    if (cleaned) return;
    cleaned = true;
    for (const b of builders) {
      try {
        b.close();
      } catch (e) {
        say(`${b.name}: clean-up: ${(e as Error).message}`);
      }
    }
    if (typeof volumes !== 'string') volumes.close();
    removeTree(work);
  };
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const base = join(work, 'base');
    await ensureBusybox(base);
    const archive = join(work, 'busybox-docker.tar');
    run([CLI_EXE, '--root', base, 'save', '--format', 'docker', '-o', archive, 'busybox']);
    // The base used once, as dockerd's and buildah's stores hold it (unpacked, their storage
    // probed): imgbuild's cold build then starts from the base's snapshot and the overlay probe's
    // cached answer, not from a store that has never mounted anything.
    run([CLI_EXE, '--root', base, 'run', '--rm', '--network', 'none', 'busybox', 'true']);

    const skipped: string[] = [];
    builders.push(new Imgbuild(work, base));
    const peerStarts = [['BuildKit', BuildKit.start], ['buildah', Buildah.start]] as const;
    for (const [name, start] of peerStarts) {
      const b = start(work, archive);
      if (typeof b === 'string') skipped.push(`${name} skipped: ${b}`);
      else builders.push(b);
    }
    for (const line of skipped) process.stdout.write(`${line}\n`);
    if (!GNU_TIME) process.stdout.write('peak RSS not measured: /usr/bin/time (Debian: apt-get install time) is missing\n');
    const peers = builders.slice(1).map((b) => b.name);
    const dropped = new Set<string>();
    const res: Results = new Map();
    const workloads: Workload[] = [];
    const loadBefore = loadavg();
    const t0 = Date.now();
    const trash = new Trash(join(work, 'trash'));
    volumes = Volumes.open(join(work, 'volumes'));
    const storage: Storage = typeof volumes === 'string' ? trash : volumes;
    process.stdout.write(typeof volumes === 'string' ? `tools share one filesystem (no loop volumes: ${volumes}); old storage goes into a trash\n` : `${volumes.about}\n`);
    // Built on each tool's new storage before its cold build: a first build pays once for what a
    // tool sets up on first use (BuildKit's worker and databases in a new dockerd), which is not
    // what a cold build of a workload is about.
    const probe = join(work, 'probe');
    mkdirSync(probe, { recursive: true });
    writeFileSync(join(probe, 'Dockerfile'), 'FROM busybox\nRUN true\n');

    for (const spec of specs()) {
      const dir = join(work, `ctx-${spec.name}`);
      mkdirSync(dir, { recursive: true });
      const w: Workload = { name: spec.name, dir, ...spec.make(dir) };
      workloads.push(w);
      say(`${w.name}: ${w.files} files, ${(w.bytes / 1e6).toFixed(1)} MB`);
      // Each build may hold up to three copies of the context (BuildKit's own copy, the COPY, the
      // RUN's copy), two builds a run per tool; the trash is emptied only when that would not fit.
      const need = w.bytes * 6 * builders.length * RUNS + 2e9;
      if (storage === trash && trash.free() < need) {
        trash.empty();
        process.stdout.write(`trash emptied before ${w.name} (${(need / 1e9).toFixed(1)} GB needed): its first builds carry the cost of files just removed\n`);
      }
      let changes = 0;
      for (let rep = 0; rep < RUNS; rep++) {
        // A rotating order, so that no tool is always first after the context was written.
        const live = builders.filter((b) => !dropped.has(b.name));
        const order = live.map((_, i) => live[(i + rep) % live.length]!);
        for (const b of order) {
          try {
            const build = (s: Scenario): string => {
              spawnSync('sync');
              const t = b.build(dir);
              record(res, w.name, b.name, s, t);
              say(`${w.name}: ${b.name} ${s} ${t.secs.toFixed(2)} s${t.rssKiB === undefined ? '' : `, peak RSS ${(t.rssKiB / 1024).toFixed(0)} MiB`}`);
              return t.last;
            };
            b.renew(storage);
            b.build(probe);
            const cold = build('cold');
            const noop = build('no-op rebuild');
            w.change(changes++);
            const changed = build('one file changed');
            // The figures mean something only if the rebuild was served from cache and the change was seen.
            if (noop !== cold) process.stdout.write(`${b.name}: ${w.name}'s no-op rebuild made another image (${noop} after ${cold})\n`);
            if (changed === cold) process.stdout.write(`${b.name}: ${w.name}'s build after one file changed gave the same image\n`);
          } catch (e) {
            if (b.name === 'imgbuild') throw e;
            dropped.add(b.name);
            process.stdout.write(`${b.name} left out from ${w.name} on: ${(e as Error).message}\n`);
          }
        }
      }
      trash.put(dir);
    }

    const minutes = ((Date.now() - t0) / 60000).toFixed(1);
    process.stdout.write(`\n${builders.map((b) => `- ${b.about}`).join('\n')}\n`);
    process.stdout.write(`\nmedians of ${RUNS} run(s)${quick ? ' (quick sizes)' : ''}${large ? '' : '; 100k files and 2 GB with BENCH_LARGE=1'}; ${minutes} min; `);
    process.stdout.write(`load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadavg().map((x) => x.toFixed(2)).join(' ')} after on ${cpus().length} cores\n`);
    if (Math.max(loadBefore[0]!, loadavg()[0]!) > cpus().length) process.stdout.write('the machine was busy with other work: these figures are noisy\n');
    process.stdout.write('\n');
    mainTable(res, workloads, peers);
    const rssTools = GNU_TIME ? ['imgbuild', ...peers.filter((p) => p === 'buildah')] : [];
    seriesTable(res, workloads, peers, 'files', rssTools);
    seriesTable(res, workloads, peers, 'bytes', rssTools);
    summary(res, workloads, peers);

    for (const b of builders.slice(1)) b.close();
    if (process.env.BENCH_NO_INSTRUCTIONS !== '1') instructionScaling(work, base, { quick, runs: Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3)) });
  } finally {
    cleanup();
  }
}

await main();
