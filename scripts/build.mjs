// Builds what `npm ci` must leave ready: the TypeScript output in dist/ and the
// native sandbox helper in native/build/. Fails with one line naming what is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error && r.error.code === 'ENOENT') {
    console.error(`imgbuild build: '${cmd}' not found; ${what}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`imgbuild build: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  console.error('imgbuild build: the typescript package is missing; run `npm ci` (dev dependencies are needed to build)');
  process.exit(1);
}
run(process.execPath, [tsc, '-p', 'tsconfig.json'], 'Node.js is required');
if (existsSync(join(root, 'native', 'Makefile'))) {
  run('make', ['-s', '-C', 'native'], 'install make and a C compiler (Debian: apt-get install build-essential)');
}
