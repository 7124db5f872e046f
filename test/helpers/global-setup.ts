/**
 * Runs once before the suite: makes sure dist/ and the native helper are built, so e2e tests
 * exercise the same CLI a user runs. Fails loudly rather than letting tests skip.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export default function setup(): void {
  const root = join(import.meta.dirname, '..', '..');
  if (process.env.IMGBUILD_SKIP_BUILD === '1' && existsSync(join(root, 'dist', 'cli', 'bundle.cjs'))) return;
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed before tests (node scripts/build.mjs)');
}
