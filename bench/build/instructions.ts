/**
 * The cost per instruction as a Dockerfile grows (`FROM busybox` and N instructions): N LABELs,
 * and a mix with an ENV, a WORKDIR and a `RUN true` among every 100 LABELs. A cold build and a
 * cached rebuild of each; the marginal column is the cost of each instruction added since the
 * previous N, which stays flat when build time is linear in N (start-up is in the first row only).
 * Copying the image config per step made it quadratic: 8,000 LABELs took 39 s, 10,000 77 s.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_EXE } from '../../test/helpers/cli.js';
import { median, removeTree, run, timed } from './measure.js';

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

export function instructionScaling(work: string, base: string, o: { quick: boolean; runs: number }): void {
  const sizes = o.quick ? [250, 500, 1000] : [1000, 2000, 4000, 8000, 10000];
  process.stdout.write('\n### Cost per instruction (imgbuild)\n\n| Dockerfile | N | cold (s) | cold µs/instr | cold marginal µs/instr | rebuild (s) | rebuild marginal µs/instr |\n|---|---:|---:|---:|---:|---:|---:|\n');
  for (const mix of [false, true]) {
    let prev: { n: number; cold: number; rebuild: number } | undefined;
    for (const n of sizes) {
      const ctx = join(work, `scale-${n}`);
      mkdirSync(ctx, { recursive: true });
      writeFileSync(join(ctx, 'Dockerfile'), scalingDockerfile(n, mix));
      const cold: number[] = [];
      const rebuild: number[] = [];
      for (let r = 0; r < o.runs; r++) {
        const root = join(work, `scale-root-${n}-${r}`);
        run(['cp', '-a', base, root]);
        const ours = (): number => timed([CLI_EXE, '--root', root, 'build', '-q', '-t', 'scale', ctx]).secs;
        cold.push(ours());
        rebuild.push(ours());
        removeTree(root);
      }
      const c = median(cold)!;
      const rb = median(rebuild)!;
      const marginal = (t: number, p: number | undefined): string => (prev && p !== undefined ? ((t - p) / (n - prev.n) * 1e6).toFixed(0) : '');
      process.stdout.write(`| ${mix ? 'mix' : 'LABEL'} | ${n} | ${c.toFixed(3)} | ${(c / n * 1e6).toFixed(0)} | ${marginal(c, prev?.cold)} | ${rb.toFixed(3)} | ${marginal(rb, prev?.rebuild)} |\n`);
      prev = { n, cold: c, rebuild: rb };
    }
  }
  process.stdout.write('\ngoal: the marginal cost per instruction stays flat as N grows (linear build time)\n');
}
