/**
 * Registry transfer benchmark: push and pull of a 300 MB, 5-layer image to a local distribution
 * registry, with the imgbuild CLI and with `skopeo copy` (OCI layout → docker://, and back) in the
 * same run. The layers hold real files (binaries, libraries, text from /usr, walked in sorted
 * order so every run packs the same bytes): compressibility decides what gzip costs, and zeros or
 * random bytes would make compression look free or hopeless. Each measurement gets a fresh
 * registry so neither tool finds blobs already there.
 *
 * Rows: (1) push of gzip layers as stored (no compression work on either side); (2) pull into our
 * store vs. skopeo into an OCI layout (both verify digests and fsync each blob); (3) push of the
 * same image stored uncompressed (as builds keep layers), so both tools gzip on the way out —
 * skopeo with pgzip at its default level, we with our default push level (see
 * DEFAULT_GZIP_LEVEL in src/compress/compress.ts); the compressed sizes are printed to show both did
 * comparable work. Our compression cache is cleared before each run to keep it fair.
 * BENCH_QUICK=1 uses 5 × 6 MB; BENCH_REPS sets the repetitions; BENCH_OPS=pull (or push, gzpush,
 * comma-separated) measures only those rows; BENCH_VERBOSE=1 prints every sample; BENCH_NODE_ARGS
 * adds node options to our CLI's runs (profiling); BENCH_CLI runs another build's executable.
 * Goal: imgbuild no slower than skopeo. Wall ratios swing with the host's load (other jobs share
 * the 2 cores); CPU ratios are steadier. Three runs on a 2-core host, load average 2.3 / 4.8 /
 * 4.4 (imgbuild ÷ skopeo, wall | cpu): push 0.96|1.03, 0.98|1.11, 1.02|1.11; pull 1.70|1.57, 1.77|1.63, 1.44|1.60; gzip
 * push 1.09|1.11, 1.41|1.07, 0.88|1.08. Before the tuning (same data, load 5.1): push 1.36|1.48,
 * pull 2.37|2.63, gzip push 2.31|2.13. Pull's remaining gap is mostly fixed cost: ~130 ms from
 * process start to the first request (Node start-up, module loading) against a Go binary's ~15.
 *
 * Pull, looked at again (BENCH_OPS=pull, median of 7, load average 3.4: imgbuild 0.54 s, skopeo
 * 0.28 s, wall 1.96, cpu 1.68; the 300 MB of tar are 108 MB of gzip blobs on the wire). A traced
 * quiet run (socket connect/first byte, fs calls, fsync) puts the time at: Node boot until our
 * main.js is read ~48 ms; CLI, store layout and the registry modules (undici ~28 ms of that) until
 * ~100 ms; ping (an https attempt first, as skopeo does for an insecure registry), manifest and
 * config until the layer requests go out at ~122 ms; data until ~340 ms; the last blob's fsync
 * ~25 ms; placing, tagging, sources ~10 ms. skopeo's whole run takes ~220 ms (load 1.9): our data
 * phase alone is about that long, and most of the gap is what comes before it. Tried in the download path and NOT
 * kept, each A/B'd against the unchanged build in the same loop (old | new | skopeo, median of
 * 9-15, load 2-4): chunks batched into one FileHandle.writev per batch instead of the WriteStream
 * pipeline 0.42 | 0.42 | 0.25 s; hashing on one worker thread fed 1 MiB transferred batches
 * 0.46 | 0.60 | 0.28 s (worker start-up outweighs ~60 ms of SHA-256); hashing by reading back on
 * workers after the download 0.47 | 0.48 | 0.32 s; a datasync every 4 MB during the download so
 * the final fsync is short (it fell to ~5 ms) 0.50 | 0.51 | 0.31 s; 2 or 3 parallel downloads
 * instead of 6: 0.53 | 0.51 / 0.54 | 0.28 s; UV_THREADPOOL_SIZE=16 0.50 | 0.48 | 0.34 s;
 * --max-semi-space-size=32 0.52 | 0.54 | 0.31 s. None moves the wall time beyond the noise of a
 * shared 2-core host. A 1 MB image shows the fixed cost alone: 0.25 s against skopeo's 0.03 s
 * (median of 15, load 2.1), 0.23 s of it CPU; in its profile ~70 ms are waits on the fresh store's
 * layout (fsync'd oci-layout, index.json, imgbuild.json under the index lock) and on the end's
 * fsync → place → lease → tag chain. Writing config and manifest to synced ingest files beside the
 * downloads, placing blobs in parallel and recording sources while tagging left it at 0.25 | 0.25 |
 * 0.03 s. What is left is outside the transfer code: Node's boot, the CLI's module graph (undici
 * alone ~28 ms to load) and the store's first-time layout.
 *
 * Start-up, later (BENCH_OPS=pull BENCH_REPS=9, load ~1): the executable's code-cached bundle
 * (undici inside), NODE_EXTRA_CA_CERTS deferred past Node's start (34 ms on this machine), the
 * unverified agent loading no CA store (18 ms of the loopback https attempt), and a new root's
 * layout files written concurrently brought the first layer request from ~121 ms to ~82 ms after
 * process start: 0.39-0.41 s → 0.36 s against skopeo's 0.25 s (wall 1.47, cpu 1.33). What remains
 * is the data phase (~225 ms for 108 MB on 2 cores, about skopeo's whole run) and ~35 ms of final
 * fsync and placing. The registry's CPU (new column with BENCH_VERBOSE=1) is ~60 ms for either
 * client, so the difference is ours. Tried then and NOT kept: hashing on a worker started at
 * command start, fed through a SharedArrayBuffer ring per blob (structured-clone postMessage of
 * 64 KiB chunks cost ~30 µs each, as much as hashing them): main-thread copies and doorbell wakes
 * cost ~37 ms of the ~56 ms of SHA-256 they moved, the worker's hashing ran slower (72 ms), and the
 * process CPU rose from 0.39 to 0.49-0.59 s with no wall gain (0.39-0.46 s); writing each chunk
 * with writeSync instead of the WriteStream (no thread-pool hand-offs, whose submissions showed
 * 25-44 ms of main-thread stalls under load): 0.41 s, unchanged.
 *
 * Then `perf` of a 1 MB pull found ~100 ms of CPU compiling undici's llhttp WebAssembly with
 * TurboFan on background threads (the hidden load on the second core that the worker attempt had
 * competed with). With `--liftoff-only` (src/cli/bin.cts), an fdatasync every 8 MB while a blob
 * arrives (the final fsync fell from ~25-29 ms to ~4-7 ms), config and manifest staged as synced
 * ingests during the download, and the https and http pings sent together: 0.31-0.32 s vs
 * skopeo's 0.24-0.25 s (wall 1.26-1.34, CPU 1.10-1.17, BENCH_REPS=9-11). The hash worker, tried
 * again on top of that: 0.36 s, CPU 0.42 s — still worse. The first layer request now leaves at
 * ~75 ms after process start (Node ~20 ms, the CLI ~20 ms, ping/manifest/new root/ingests the
 * rest); the data phase is about skopeo's, so what separates the two is mostly start-up.
 *
 * Next round (BENCH_OPS=pull, medians of 9-11, same host): the built-in code caches Node refused
 * after --liftoff-only (modules loaded first now, 19 → 7 ms), an eightfold interrupt budget for
 * the transfer commands (TurboFan ~53 → ~8 ms of CPU during the data phase), connections reused
 * after the ping and every HEAD, requests through undici's dispatch with our own handler (no
 * Readable/WriteStream per chunk: CPU 0.30 → 0.27 s), downloads started before a new root's layout
 * files are written, an early writeback every 4 MB instead of 8 (8 MB: 1.16-1.17, 4 MB:
 * 1.06-1.08), and node:child_process and node:worker_threads loaded on first use: 1.36 → 1.02-1.15
 * over eight runs (most near 1.08), the CPU ratio 1.20 → 0.88-0.97; push 0.81 → 0.67-0.76, gzip
 * push 1.16 → 1.04-1.07. 3 or 2 parallel downloads instead of 6 measured 1.05 and 1.11 against
 * 1.10 in the same hour, inside the noise. A system-wide
 * perf then shows the main thread busy throughout the data phase and the second core ~25% idle,
 * yet hashing on a worker (a thread that reads each file back as it grows, no copies on the main
 * thread) was slower again: 1.15 against 1.07, CPU 0.35 against 0.28 s, its start costing ~40 ms
 * of CPU because Node's built-in caches are refused in a worker too under the changed flags. The
 * first layer request now leaves ~48 ms after exec against skopeo's ~14: Node's start ~20 ms, our
 * bundle's code cache and the preloaded modules ~12 ms, the ping and manifest (an https attempt
 * beside the http one, llhttp compiled on the first connection) ~15 ms.
 *
 * Last round (BENCH_OPS=pull, REPS=11, and interleaved A/B runs of built copies, medians of
 * 10-30, half of them after an untimed push so the registry's writeback competes as it does here):
 * a pull's libuv pool sized to the cores (2 here; four threads writing and flushing preempted the
 * main thread: 264 → 251 ms, skopeo 250), a loopback registry pinged over plain http first (no TLS
 * attempt: the layer requests leave ~4 ms earlier), ingest files created by their first write and
 * flushed through their write handle (~5 ms earlier again), and the session's pools destroyed with
 * one error whose stack is set (undici's close made Node format a stack per connection against
 * the whole bundle: 2.5-7.5 ms after the pull, now ~1), node:tls loaded by a verifying connection
 * only: 1.07 → 0.97-1.01 over ten bench runs of 15 rounds (median 1.00; the ratio within a round,
 * new column, 0.97-1.00 at the median), CPU ratio 0.80-0.83. Within the noise and NOT kept: no
 * ping at all (the manifest request first, as containerd does: 1.01 | 1.01 in three paired runs
 * with BENCH_CLI), one early flush at a time across the pull, writes batched to at least 256/512 KiB
 * (771 writevs → 284), EARLY_SYNC_BYTES 2 or 8 MB again, WRITE_AHEAD 4 MB, `--v8-pool-size` 1/2,
 * forced minor GCs every 1 or 4 MB, glibc malloc tuning (trim threshold, top pad, arena count;
 * glibc.malloc.hugetlb=1 cut the page faults from ~13,500 to ~5,400 with no change in wall time).
 * System-wide `perf` of one pull: our main thread busy for the whole run (SHA-256 ~27% of it,
 * socket reads ~15%, page faults on fresh read buffers ~11%, softirq ~9%), the thread pool ~80
 * ms, the registry ~80 ms, the second core idle ~55 ms — less than moving the hashing over would
 * need. We still lose at start-up and win it back in the data phase: our first request leaves
 * ~42 ms after exec (Node ~17 ms, its modules for a pull ~6, our bundle ~8, the CLI ~8), skopeo's
 * at ~12-15.
 *
 * Then every new layer came to be checked before the image is tagged (src/tar/check.ts):
 * decompressed and its tar headers parsed in the download's sink. Two bench runs each, alternated
 * (BENCH_OPS=pull, REPS=7, load 3-5.5): before 1.12 and 0.99 (per round 1.09, 1.18), after 3.49 and
 * 3.04 (per round 3.28, 2.86); CPU 0.30 → 1.34-1.45 s against skopeo's 0.37-0.40. `perf` (2 kHz)
 * of one pull: main thread 0.39 → 0.76 s, thread pool 0.07 → 0.93 s (inflate_fast 34% of all
 * samples). No better in interleaved rounds (medians of 7-9): checking each file after its
 * download, a pool of 1 or 4 threads, 1 MiB zlib output chunks. `igzip -dc` as the decoder was
 * ~20% faster, and is not used (see check.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { makeTmp } from '../test/helpers/tmp.js';
import { startRegistry } from '../test/helpers/registry.js';
import { OciStore } from '../src/store/store.js';
import { writeLayerBlob } from '../src/store/layers.js';
import { writeImage } from '../src/store/images.js';
import type { Descriptor, ImageConfig } from '../src/image/types.js';

const QUICK = process.env.BENCH_QUICK === '1';
const LAYERS = 5;
const LAYER_BYTES = (QUICK ? 6 : 60) * 1024 * 1024;
const REPS = Number(process.env.BENCH_REPS ?? (QUICK ? 1 : 5));
/** BENCH_OPS=pull (or push, gzpush, comma-separated) runs only those rows; the default is all three. */
const OPS = new Set((process.env.BENCH_OPS ?? 'push,pull,gzpush').split(',').map((x) => x.trim()));
const REPO_ROOT = join(import.meta.dirname, '..');
/** BENCH_CLI: another build's executable to measure instead of this checkout's (A/B of a change). */
const CLI = process.env.BENCH_CLI ?? join(REPO_ROOT, 'bin', 'imgbuild');
const REF = 'docker.io/bench/image:1';
/** BENCH_NODE_ARGS: extra node options for our CLI's runs, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** Our CLI as users start it (the executable), or its Node entry under node with NODE_ARGS. */
const ours = (args: string[]): [string, string[]] =>
  NODE_ARGS.length > 0 ? [process.execPath, [...NODE_ARGS, join(REPO_ROOT, 'dist', 'cli', 'bin.cjs'), ...args]] : [CLI, args];

/** Regular files under /usr in sorted walk order (no file over 8 MB, so layers mix many files). */
function* usrFiles(dir = '/usr'): Generator<{ path: string; size: number; mode: number }> {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) yield* usrFiles(p);
    else if (st.isFile() && st.size > 0 && st.size <= 8 * 1024 * 1024) yield { path: p, size: st.size, mode: st.mode & 0o7777 };
  }
}

/** LAYERS disjoint groups of real files, each about LAYER_BYTES of content. */
function pickLayers(): { path: string; size: number; mode: number }[][] {
  const groups: { path: string; size: number; mode: number }[][] = [];
  let cur: { path: string; size: number; mode: number }[] = [];
  let n = 0;
  for (const f of usrFiles()) {
    cur.push(f);
    n += f.size;
    if (n >= LAYER_BYTES) {
      groups.push(cur);
      if (groups.length === LAYERS) return groups;
      cur = [];
      n = 0;
    }
  }
  throw new Error(`/usr holds less than ${LAYERS} × ${LAYER_BYTES} bytes of files`);
}

function layerTar(files: { path: string; size: number; mode: number }[]): Readable {
  const pack = tar.pack();
  (async () => {
    for (const f of files) {
      let data: Buffer;
      try {
        data = readFileSync(f.path);
      } catch {
        continue; // unreadable: skip
      }
      await new Promise<void>((res, rej) =>
        pack.entry({ name: f.path.slice(1), size: data.length, mode: f.mode, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())),
      );
    }
    pack.finalize();
  })().catch((e: unknown) => pack.destroy(e as Error));
  // a streamx Readable: writeLayerBlob only pipes and iterates it, which both kinds support
  return pack as unknown as Readable;
}

async function makeImage(root: string, compression: 'gzip' | 'none', groups: { path: string; size: number; mode: number }[][]): Promise<void> {
  const store = await OciStore.open(root);
  const layers: Descriptor[] = [];
  const diffIds = [];
  for (const g of groups) {
    const b = await writeLayerBlob(store, layerTar(g), { compression });
    layers.push({ mediaType: b.mediaType, digest: b.digest, size: b.size });
    diffIds.push(b.diffId);
  }
  const config: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: { Cmd: ['sh'] } };
  const m = await writeImage(store, config, layers);
  await store.tag(REF, m);
  await store.release();
}

interface Sample {
  wall: number;
  /** user + system CPU seconds of the tool (GNU time), less sensitive to a busy machine than wall time */
  cpu: number;
  /** CPU ms the registry process spent meanwhile (clock ticks of /proc/<pid>/stat: 10 ms steps) */
  server: number;
}

function cpuTicksOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function timed(cmd: string, args: string[], serverPid: number): Sample {
  const s0 = cpuTicksOf(serverPid);
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'BENCHTIME %U %S', cmd, ...args], { encoding: 'utf8', env: { ...process.env } });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  const m = /BENCHTIME ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wall: ms, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN, server: (cpuTicksOf(serverPid) - s0) * 10 };
}

/** Total size of the layer blobs the registry holds for `repo` (its storage is a plain filesystem tree). */
async function pushedLayerBytes(storage: string, repo: string): Promise<number> {
  const base = join(storage, 'docker', 'registry', 'v2');
  const links = join(base, 'repositories', repo, '_layers', 'sha256');
  let total = 0;
  for (const hex of await readdir(links).catch(() => [] as string[])) {
    const data = join(base, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const st = lstatSync(data, { throwIfNoEntry: false });
    // the config blob is linked too; it is tiny, and the same on both sides
    if (st) total += st.size;
  }
  return total;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const bundle = join(REPO_ROOT, 'dist', 'cli', 'bundle.cjs');
  if (!existsSync(bundle)) throw new Error(`build first (node scripts/build.mjs): ${bundle} missing`);
  const tmp = await makeTmp('imgbuild-bench-registry-');
  try {
    const src = join(tmp.dir, 'src');
    const raw = join(tmp.dir, 'raw');
    process.stdout.write(`packing ${LAYERS} × ${LAYER_BYTES / 1024 / 1024} MB layers of /usr files (gzip, and uncompressed)...\n`);
    const groups = pickLayers();
    await makeImage(src, 'gzip', groups);
    if (OPS.has('gzpush')) await makeImage(raw, 'none', groups);
    const gzSizes = { ours: [] as number[], skopeo: [] as number[] };
    const times = {
      ourPush: [] as Sample[], skopeoPush: [] as Sample[], ourPull: [] as Sample[], skopeoPull: [] as Sample[],
      ourGzPush: [] as Sample[], skopeoGzPush: [] as Sample[],
    };
    let n = 0;
    // Round -1 is a warm-up, not recorded: each tool's first run after an install pays once for
    // what later runs reuse (our CLI writes its per-command code cache; either binary's pages
    // come into the page cache).
    for (let rep = -1; rep < REPS; rep++) {
      const keep = <T,>(xs: T[], x: T): void => void (rep >= 0 && xs.push(x));
      // alternate who goes first so cache warmth favours neither
      const order = rep % 2 === 0 ? ['ours', 'skopeo'] : ['skopeo', 'ours'];
      for (const who of order) {
        const reg = await startRegistry({ mode: 'none' });
        try {
          const dest = `${reg.host}/bench/image:1`;
          const rawDest = `${reg.host}/bench/raw:1`;
          // pull needs the image in the registry: pushed untimed when the push row is not measured
          if (!OPS.has('push')) timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${src}:${REF}`, `docker://${dest}`], reg.pid);
          if (who === 'ours') {
            if (OPS.has('push')) keep(times.ourPush, timed(...ours(['--root', src, 'push', '-q', REF, dest]), reg.pid));
            if (OPS.has('pull')) keep(times.ourPull, timed(...ours(['--root', join(tmp.dir, `pull-${++n}`), 'pull', '-q', dest]), reg.pid));
            if (OPS.has('gzpush')) {
              await rm(join(raw, 'cache'), { recursive: true, force: true });
              keep(times.ourGzPush, timed(...ours(['--root', raw, 'push', '-q', REF, rawDest]), reg.pid));
              keep(gzSizes.ours, await pushedLayerBytes(reg.storage, 'bench/raw'));
            }
          } else {
            if (OPS.has('push')) keep(times.skopeoPush, timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${src}:${REF}`, `docker://${dest}`], reg.pid));
            if (OPS.has('pull')) keep(times.skopeoPull, timed('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${dest}`, `oci:${join(tmp.dir, `skopeo-${++n}`)}:x`], reg.pid));
            if (OPS.has('gzpush')) {
              keep(times.skopeoGzPush, timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${raw}:${REF}`, `docker://${rawDest}`], reg.pid));
              keep(gzSizes.skopeo, await pushedLayerBytes(reg.storage, 'bench/raw'));
            }
          }
          // pulled copies are not needed again; keep the tmp dir from growing by 300 MB per run
          await rm(join(tmp.dir, `pull-${n}`), { recursive: true, force: true });
          await rm(join(tmp.dir, `skopeo-${n}`), { recursive: true, force: true });
        } finally {
          await reg.stop();
        }
      }
    }
    const mb = (LAYERS * LAYER_BYTES) / 1024 / 1024;
    const row = (op: string, ours: Sample[], theirs: Sample[]): string => {
      const a = median(ours.map((x) => x.wall));
      const b = median(theirs.map((x) => x.wall));
      const ac = median(ours.map((x) => x.cpu));
      const bc = median(theirs.map((x) => x.cpu));
      // Each round runs both tools back to back: the ratio within a round is blind to the drift of
      // the host's load between rounds, and its spread shows how much of a difference is noise.
      const rounds = ours.map((x, i) => x.wall / theirs[i]!.wall).sort((x, y) => x - y);
      const at = (q: number): string => rounds[Math.min(rounds.length - 1, Math.floor(q * rounds.length))]!.toFixed(2);
      return `| ${op} | ${(a / 1000).toFixed(2)} s (${(mb / (a / 1000)).toFixed(0)} MB/s), cpu ${(ac / 1000).toFixed(2)} s | ${(b / 1000).toFixed(2)} s (${(mb / (b / 1000)).toFixed(0)} MB/s), cpu ${(bc / 1000).toFixed(2)} s | ${(a / b).toFixed(2)} | ${at(0.5)} (${at(0.25)}–${at(0.75)}) | ${(ac / bc).toFixed(2)} |`;
    };
    const load = (await import('node:os')).loadavg()[0]!.toFixed(1);
    process.stdout.write(`\n${mb} MB, ${LAYERS} layers, median of ${REPS} (load average ${load} on ${(await import('node:os')).cpus().length} cpus)\n\n`);
    process.stdout.write('| operation | imgbuild | skopeo copy | wall ratio (imgbuild/skopeo, <1 is faster) | wall ratio per round (median, middle half) | cpu ratio |\n|---|---|---|---|---|---|\n');
    if (OPS.has('push')) process.stdout.write(`${row('push (oci layout → registry)', times.ourPush, times.skopeoPush)}\n`);
    if (OPS.has('pull')) process.stdout.write(`${row('pull (registry → store / oci layout)', times.ourPull, times.skopeoPull)}\n`);
    if (OPS.has('gzpush')) process.stdout.write(`${row('push of uncompressed layers, gzip on the way', times.ourGzPush, times.skopeoGzPush)}\n`);
    if (process.env.BENCH_VERBOSE === '1') {
      for (const [k, v] of Object.entries(times)) {
        if (v.length) process.stdout.write(`${k}: ${v.map((x) => `${Math.round(x.wall)} (cpu ${Math.round(x.cpu)}, registry ${x.server})`).join(' ')} ms\n`);
      }
    }
    if (OPS.has('gzpush')) process.stdout.write(`\ngzip layers pushed in row 3: imgbuild ${(median(gzSizes.ours) / 1e6).toFixed(1)} MB, skopeo ${(median(gzSizes.skopeo) / 1e6).toFixed(1)} MB (of ${mb} MB tar)\n`);
  } finally {
    await tmp.cleanup();
  }
}

await main();
