/**
 * Registry transfer benchmark: push and pull of a 300 MB, 5-layer image (gzip layers of
 * incompressible data, so the bytes on the wire are the image size) to a local distribution
 * registry, with the imgbuild CLI and with `skopeo copy` (OCI layout → docker://, and back) in the
 * same run. Each measurement gets a fresh registry so neither tool finds blobs already there.
 * A third row pushes the same kind of image stored uncompressed (as builds keep layers), so both
 * tools gzip on the way out; our compression cache is cleared before each run to keep it fair.
 * BENCH_QUICK=1 uses 5 × 6 MB. Goal: imgbuild no slower than skopeo.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { makeTmp } from '../test/helpers/tmp.js';
import { startRegistry } from '../test/helpers/registry.js';
import { OciStore } from '../src/layers/store.js';
import { writeLayerBlob } from '../src/layers/compress.js';
import { writeImage } from '../src/layers/image.js';
import type { Descriptor, ImageConfig } from '../src/layers/types.js';

const QUICK = process.env.BENCH_QUICK === '1';
const LAYERS = 5;
const LAYER_BYTES = (QUICK ? 6 : 60) * 1024 * 1024;
const FILE_BYTES = 4 * 1024 * 1024;
const REPS = QUICK ? 1 : 3;
const REPO_ROOT = join(import.meta.dirname, '..');
const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js');
const REF = 'docker.io/bench/image:1';

/** Half random, half repetitive text: compresses to roughly half, like typical image content. */
function mixedBytes(size: number): Buffer {
  const b = randomBytes(size);
  const text = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n'.repeat(80));
  for (let off = 0; off < size; off += 8192) text.copy(b, off, 0, Math.min(4096, size - off));
  return b;
}

function layerTar(i: number, mixed = false): Readable {
  const pack = tar.pack();
  (async () => {
    for (let off = 0, f = 0; off < LAYER_BYTES; off += FILE_BYTES, f++) {
      const size = Math.min(FILE_BYTES, LAYER_BYTES - off);
      const data = mixed ? mixedBytes(size) : randomBytes(size);
      await new Promise<void>((res, rej) =>
        pack.entry({ name: `layer${i}/file${f}.bin`, size, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())),
      );
    }
    pack.finalize();
  })().catch((e: unknown) => pack.destroy(e as Error));
  return pack;
}

async function makeImage(root: string, compression: 'gzip' | 'none'): Promise<void> {
  const store = await OciStore.open(root);
  const layers: Descriptor[] = [];
  const diffIds = [];
  for (let i = 0; i < LAYERS; i++) {
    const b = await writeLayerBlob(store, layerTar(i, compression === 'none'), { compression, level: 1 });
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
}

function timed(cmd: string, args: string[]): Sample {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'BENCHTIME %U %S', cmd, ...args], { encoding: 'utf8', env: { ...process.env } });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  const m = /BENCHTIME ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wall: ms, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`build first (node scripts/build.mjs): ${CLI} missing`);
  const tmp = await makeTmp('imgbuild-bench-registry-');
  try {
    const src = join(tmp.dir, 'src');
    const raw = join(tmp.dir, 'raw');
    process.stdout.write(`generating ${LAYERS} × ${LAYER_BYTES / 1024 / 1024} MB layers (gzip, and uncompressed)...\n`);
    await makeImage(src, 'gzip');
    await makeImage(raw, 'none');
    const times = {
      ourPush: [] as Sample[], skopeoPush: [] as Sample[], ourPull: [] as Sample[], skopeoPull: [] as Sample[],
      ourGzPush: [] as Sample[], skopeoGzPush: [] as Sample[],
    };
    let n = 0;
    for (let rep = 0; rep < REPS; rep++) {
      // alternate who goes first so cache warmth favours neither
      const order = rep % 2 === 0 ? ['ours', 'skopeo'] : ['skopeo', 'ours'];
      for (const who of order) {
        const reg = await startRegistry({ mode: 'none' });
        try {
          const dest = `${reg.host}/bench/image:1`;
          const rawDest = `${reg.host}/bench/raw:1`;
          if (who === 'ours') {
            times.ourPush.push(timed(process.execPath, [CLI, '--root', src, 'push', '-q', REF, dest]));
            times.ourPull.push(timed(process.execPath, [CLI, '--root', join(tmp.dir, `pull-${++n}`), 'pull', '-q', dest]));
            await rm(join(raw, 'cache'), { recursive: true, force: true });
            times.ourGzPush.push(timed(process.execPath, [CLI, '--root', raw, 'push', '-q', REF, rawDest]));
          } else {
            times.skopeoPush.push(timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${src}:${REF}`, `docker://${dest}`]));
            times.skopeoPull.push(timed('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${dest}`, `oci:${join(tmp.dir, `skopeo-${++n}`)}:x`]));
            times.skopeoGzPush.push(timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${raw}:${REF}`, `docker://${rawDest}`]));
          }
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
      return `| ${op} | ${(a / 1000).toFixed(2)} s (${(mb / (a / 1000)).toFixed(0)} MB/s), cpu ${(ac / 1000).toFixed(2)} s | ${(b / 1000).toFixed(2)} s (${(mb / (b / 1000)).toFixed(0)} MB/s), cpu ${(bc / 1000).toFixed(2)} s | ${(a / b).toFixed(2)} | ${(ac / bc).toFixed(2)} |`;
    };
    const load = (await import('node:os')).loadavg()[0]!.toFixed(1);
    process.stdout.write(`\n${mb} MB, ${LAYERS} layers, median of ${REPS} (load average ${load} on ${(await import('node:os')).cpus().length} cpus)\n\n`);
    process.stdout.write('| operation | imgbuild | skopeo copy | wall ratio (imgbuild/skopeo, <1 is faster) | cpu ratio |\n|---|---|---|---|---|\n');
    process.stdout.write(`${row('push (oci layout → registry)', times.ourPush, times.skopeoPush)}\n`);
    process.stdout.write(`${row('pull (registry → store / oci layout)', times.ourPull, times.skopeoPull)}\n`);
    process.stdout.write(`${row('push of uncompressed layers, gzip on the way', times.ourGzPush, times.skopeoGzPush)}\n`);
  } finally {
    await tmp.cleanup();
  }
}

await main();
