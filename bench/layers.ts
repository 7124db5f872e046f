/**
 * Layer commit and apply throughput, beside the standard tools measured in the same run.
 *
 *   npx tsx bench/layers.ts            # ~500 MB tree copied from /usr
 *   BENCH_QUICK=1 npx tsx bench/layers.ts   # ~60 MB, to check it works
 *
 * "commit" = pack the tree (deterministic tar) + sha256 of the tar (diffID) + compression +
 * sha256 of the blob + write into the store, i.e. writeLayerBlob(packDir(tree)). Baselines:
 * `tar -c | gzip -6` and `tar -c | zstd -3 -T0` (no hashing, output discarded to a pipe). Our gzip
 * row uses level 6 too, to compare like for like (layers default to level 4: DEFAULT_GZIP_LEVEL).
 * "apply" = applyLayer(flat) of the stored blob into an empty dir, beside `tar -x`.
 * MB/s are of the uncompressed tar. The machine's load average is printed, since other jobs may
 * share the cores.
 */
import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { packDir } from '../src/tar/pack.js';
import { applyLayer } from '../src/tar/apply.js';
import { openLayerTar, writeLayerBlob, type LayerBlob } from '../src/store/layers.js';
import { OciStore } from '../src/store/store.js';
import type { Compression } from '../src/image/media-types.js';

const quick = process.env.BENCH_QUICK === '1';
const TARGET = (quick ? 60 : 500) * 1024 * 1024;
const MB = 1024 * 1024;

/** Copies files from `from` into `to` until `budget` bytes of file content are copied. */
function copyTree(from: string, to: string, budget: { left: number }): void {
  let names: string[];
  try {
    names = readdirSync(from).sort();
  } catch {
    return;
  }
  for (const n of names) {
    if (budget.left <= 0) return;
    const s = join(from, n);
    const d = join(to, n);
    let st;
    try {
      st = lstatSync(s);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      mkdirSync(d);
      copyTree(s, d, budget);
    } else if (st.isFile()) {
      try {
        copyFileSync(s, d);
        budget.left -= st.size;
      } catch { /* unreadable: skip */ }
    } else if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(s), d);
    }
  }
}

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, (performance.now() - t0) / 1000];
}
async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}

function sh(cmd: string): string {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout.trim();
}

const rows: string[][] = [];
function row(what: string, tarBytes: number, secs: number, outBytes?: number, vs?: number): void {
  rows.push([
    what,
    (tarBytes / MB / secs).toFixed(1),
    secs.toFixed(2),
    outBytes !== undefined ? (outBytes / MB).toFixed(1) : '',
    outBytes !== undefined ? (tarBytes / outBytes).toFixed(2) : '',
    vs !== undefined ? `${vs.toFixed(2)}x` : '',
  ]);
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(process.env.IMGBUILD_TEST_TMP ?? tmpdir(), 'imgbuild-bench-'));
  try {
    const tree = join(base, 'tree');
    mkdirSync(tree);
    const budget = { left: TARGET };
    for (const src of ['/usr/lib', '/usr/share', '/usr/bin']) {
      if (budget.left <= 0) break;
      const d = join(tree, src.slice(1).replace('/', '_'));
      mkdirSync(d);
      copyTree(src, d, budget);
    }
    const tarSize = Number(sh(`tar -C ${tree} -cf - . | wc -c`));
    const files = Number(sh(`find ${tree} | wc -l`));
    console.log(`tree: ${(tarSize / MB).toFixed(0)} MB tar, ${files} entries; cores: ${availableParallelism()}; load before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    const store = await OciStore.open(join(base, 'store'));
    const blobs: Partial<Record<Compression, LayerBlob>> = {};

    // Baselines first, then ours, interleaved per codec so drifting load hits both alike.
    const [gzOut, gzSecs] = time(() => Number(sh(`tar -C ${tree} -cf - . | gzip -6 | wc -c`)));
    const [ourGz, ourGzSecs] = await timeAsync(() => writeLayerBlob(store, packDir(tree, { mode: 'plain' }), { compression: 'gzip', level: 6 }));
    blobs.gzip = ourGz;
    const [zsOut, zsSecs] = time(() => Number(sh(`tar -C ${tree} -cf - . | zstd -3 -T0 -q | wc -c`)));
    const [ourZs, ourZsSecs] = await timeAsync(() => writeLayerBlob(store, packDir(tree, { mode: 'plain' }), { compression: 'zstd' }));
    blobs.zstd = ourZs;
    const [, tarOnlySecs] = time(() => sh(`tar -C ${tree} -cf - . | sha256sum`));
    const [ourNone, ourNoneSecs] = await timeAsync(() => writeLayerBlob(store, packDir(tree, { mode: 'plain' }), { compression: 'none' }));
    blobs.none = ourNone;

    row('tar -c | gzip -6', tarSize, gzSecs, gzOut);
    row('imgbuild commit gzip (parallel)', ourGz.uncompressedSize, ourGzSecs, ourGz.size, gzSecs / ourGzSecs);
    row('tar -c | zstd -3 -T0', tarSize, zsSecs, zsOut);
    row('imgbuild commit zstd (parallel)', ourZs.uncompressedSize, ourZsSecs, ourZs.size, zsSecs / ourZsSecs);
    row('tar -c | sha256sum', tarSize, tarOnlySecs);
    row('imgbuild commit none (tar+hash)', ourNone.uncompressedSize, ourNoneSecs, ourNone.size, tarOnlySecs / ourNoneSecs);

    const fresh = (n: string): string => {
      const d = join(base, n);
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d);
      return d;
    };
    const plainBlob = store.blobPath(ourNone.digest);
    const gzBlob = store.blobPath(ourGz.digest);
    const zsBlob = store.blobPath(ourZs.digest);
    const [, tarXSecs] = time(() => sh(`tar -xf ${plainBlob} -C ${fresh('x1')}`));
    const [, ourXSecs] = await timeAsync(async () => applyLayer(fresh('x2'), await openLayerTar(store, ourNone), { mode: 'flat' }));
    const [, tarXzSecs] = time(() => sh(`gzip -dc ${gzBlob} | tar -xf - -C ${fresh('x3')}`));
    const [, ourXzSecs] = await timeAsync(async () => applyLayer(fresh('x4'), await openLayerTar(store, ourGz), { mode: 'flat' }));
    const [, tarXzsSecs] = time(() => sh(`zstd -dcq ${zsBlob} | tar -xf - -C ${fresh('x5')}`));
    const [, ourXzsSecs] = await timeAsync(async () => applyLayer(fresh('x6'), await openLayerTar(store, ourZs), { mode: 'flat' }));
    row('tar -x', tarSize, tarXSecs);
    row('imgbuild apply (flat, verified)', tarSize, ourXSecs, undefined, tarXSecs / ourXSecs);
    row('gzip -dc | tar -x', tarSize, tarXzSecs);
    row('imgbuild apply gzip', tarSize, ourXzSecs, undefined, tarXzSecs / ourXzSecs);
    row('zstd -dc | tar -x', tarSize, tarXzsSecs);
    row('imgbuild apply zstd', tarSize, ourXzsSecs, undefined, tarXzsSecs / ourXzsSecs);

    const header = ['operation', 'MB/s', 'seconds', 'out MB', 'ratio', 'speed vs tool'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    console.log(fmt(header));
    for (const r of rows) console.log(fmt(r));
    console.log(`load after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`goal: imgbuild gzip commit >= 1.7x tar|gzip -6 on 2 cores -> ${(gzSecs / ourGzSecs).toFixed(2)}x`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
