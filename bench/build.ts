/**
 * Build speed beside buildah, measured in the same run on the same context and base image.
 *
 *   npx tsx bench/build.ts               # 5,000-file context
 *   BENCH_QUICK=1 npx tsx bench/build.ts # 500 files, to check it works
 *
 * Three builds of one Dockerfile (2 RUNs and a COPY of the context):
 *  - cold: a fresh store that holds only the busybox base (snapshots, layers, cache all empty);
 *  - no-op rebuild: the same build again, nothing changed;
 *  - one file changed: one context file rewritten, so the COPY and the RUN after it re-run.
 * imgbuild is timed through its CLI (`bin/imgbuild build`, Node start-up included);
 * buildah as `buildah build --layers --isolation chroot` on a private vfs store. Each timing is the
 * median of `BENCH_RUNS` (default 3; 1 when quick) repetitions.
 *
 * Then the cost per instruction as a Dockerfile grows (`FROM busybox` and N instructions): N LABELs,
 * and a mix with an ENV, a WORKDIR and a `RUN true` among every 100 LABELs. A cold build and a
 * cached rebuild of each; the marginal column is the cost of each instruction added since the
 * previous N, which stays flat when build time is linear in N (start-up is in the first row only).
 * Copying the image config per step made it quadratic: 8,000 LABELs took 39 s, 10,000 77 s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBusybox, BUSYBOX_REF } from '../test/helpers/base-image.js';
import { REPO_ROOT, CLI_EXE, CLI_MAIN } from '../test/helpers/cli.js';

const quick = process.env.BENCH_QUICK === '1';
const FILES = quick ? 500 : 5000;
const RUNS = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  const secs = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return secs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function makeContext(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, 'src', `d${i % 50}`);
    if (i < 50) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.txt`), `file ${i}\n${'x'.repeat(1000)}\n`);
  }
  writeFileSync(join(dir, 'Dockerfile'), [
    'FROM busybox',
    'RUN echo prepare > /prepared',
    'COPY src/ /app/src/',
    'RUN find /app/src -type f | wc -l > /app/count',
    'CMD ["cat", "/app/count"]',
    '',
  ].join('\n'));
}

/** `FROM busybox` and n instructions: LABELs, or with an ENV, WORKDIR and RUN among every 100. */
function scalingDockerfile(n: number, mix: boolean): string {
  const lines = ['FROM busybox'];
  for (let i = 1; i <= n; i++) {
    if (mix && i % 100 === 0) lines.push(`ENV e${i}=v${i}`);
    else if (mix && i % 100 === 33) lines.push(`WORKDIR /w${i}`);
    else if (mix && i % 100 === 66) lines.push('RUN true');
    else lines.push(`LABEL k${i}=v${i}`);
  }
  return `${lines.join('\n')}\n`;
}

function scaling(work: string, base: string): void {
  const sizes = quick ? [250, 500, 1000] : [1000, 2000, 4000, 8000, 10000];
  process.stdout.write('\n| Dockerfile | N | cold (s) | cold µs/instr | cold marginal µs/instr | rebuild (s) | rebuild marginal µs/instr |\n|---|---:|---:|---:|---:|---:|---:|\n');
  for (const mix of [false, true]) {
    let prev: { n: number; cold: number; rebuild: number } | undefined;
    for (const n of sizes) {
      const ctx = join(work, `scale-${n}`);
      mkdirSync(ctx, { recursive: true });
      writeFileSync(join(ctx, 'Dockerfile'), scalingDockerfile(n, mix));
      const cold: number[] = [];
      const rebuild: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const root = join(work, `scale-root-${n}-${run}`);
        sh('cp', ['-a', base, root]);
        const ours = (): number => sh(CLI_EXE, ['--root', root, 'build', '-q', '-t', 'scale', ctx]);
        cold.push(ours());
        rebuild.push(ours());
        rmSync(root, { recursive: true, force: true });
      }
      const c = median(cold);
      const r = median(rebuild);
      const marginal = (t: number, p: number | undefined): string => (prev && p !== undefined ? ((t - p) / (n - prev.n) * 1e6).toFixed(0) : '');
      process.stdout.write(`| ${mix ? 'mix' : 'LABEL'} | ${n} | ${c.toFixed(3)} | ${(c / n * 1e6).toFixed(0)} | ${marginal(c, prev?.cold)} | ${r.toFixed(3)} | ${marginal(r, prev?.rebuild)} |\n`);
      prev = { n, cold: c, rebuild: r };
    }
  }
  process.stdout.write('\ngoal: the marginal cost per instruction stays flat as N grows (linear build time)\n');
}

async function main(): Promise<void> {
  if (!existsSync(CLI_MAIN)) sh(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')]);
  const work = mkdtempSync(join(process.env.IMGBUILD_TEST_TMP ?? tmpdir(), 'imgbuild-bench-build-'));
  try {
    const ctx = join(work, 'ctx');
    makeContext(ctx);
    const base = join(work, 'base');
    await ensureBusybox(base);

    const results: Record<string, { ours: number[]; buildah: number[] }> = {
      cold: { ours: [], buildah: [] },
      'no-op rebuild': { ours: [], buildah: [] },
      'one file changed': { ours: [], buildah: [] },
    };
    for (let run = 0; run < RUNS; run++) {
      // imgbuild: a fresh store holding only the base image.
      const root = join(work, `ours-${run}`);
      sh('cp', ['-a', base, root]);
      const ours = (): number => sh(CLI_EXE, ['--root', root, 'build', '-q', '-t', 'bench', ctx]);
      results.cold!.ours.push(ours());
      results['no-op rebuild']!.ours.push(ours());
      writeFileSync(join(ctx, 'src', 'd7', 'f7.txt'), `changed ${run} ${Date.now()}\n`);
      results['one file changed']!.ours.push(ours());

      // buildah: a fresh vfs store with the same base image.
      const bRoot = join(work, `buildah-${run}`);
      const bRun = join(work, `buildah-run-${run}`);
      sh('skopeo', ['copy', '-q', `oci:${base}:${BUSYBOX_REF}`, `containers-storage:[vfs@${bRoot}+${bRun}]${BUSYBOX_REF}`]);
      const buildah = (): number => sh('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'build', '--layers', '--isolation', 'chroot', '--pull=never', '-q', '-t', 'bench', ctx]);
      results.cold!.buildah.push(buildah());
      results['no-op rebuild']!.buildah.push(buildah());
      writeFileSync(join(ctx, 'src', 'd7', 'f7.txt'), `changed again ${run} ${Date.now()}\n`);
      results['one file changed']!.buildah.push(buildah());
      spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'rm', '--all']);
      spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'rmi', '--all', '-f']);
    }
    process.stdout.write(`context: ${FILES} files; median of ${RUNS} run(s); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n\n`);
    process.stdout.write('| build | imgbuild (s) | buildah --layers (s) | buildah / imgbuild |\n|---|---:|---:|---:|\n');
    for (const [what, r] of Object.entries(results)) {
      const o = median(r.ours);
      const b = median(r.buildah);
      process.stdout.write(`| ${what} | ${o.toFixed(3)} | ${b.toFixed(3)} | ${(b / o).toFixed(1)}x |\n`);
    }
    process.stdout.write('\ngoals: cold build faster than buildah; no-op rebuild < 0.3 s\n');
    scaling(work, base);
  } finally {
    // Stores hold no live mounts after the CLI exits; buildah vfs neither once containers are removed.
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
