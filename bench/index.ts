/**
 * `npm run bench`: runs each area's benchmark in turn (they share two cores, so never in
 * parallel) and prints their tables. Each bench measures a peer in the same run and reports ratios.
 * BENCH_QUICK=1 shrinks the data sets; BENCH_ONLY=layers,build runs a subset (rootless: bench/rootless.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const AREAS = ['layers', 'build', 'cache', 'run', 'registry', 'rootless'];
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
let failed = 0;
for (const area of AREAS) {
  if (only && !only.includes(area)) continue;
  const file = join(import.meta.dirname, `${area}.ts`);
  if (!existsSync(file)) continue;
  process.stdout.write(`\n## ${area}\n\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    failed++;
    process.stdout.write(`(bench ${area} failed with status ${r.status})\n`);
  }
}
process.exitCode = failed ? 1 : 0;
