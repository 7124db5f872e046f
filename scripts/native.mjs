// Compiles the native sandbox helper (native/build/imgbuild-sandbox) with make and the system C
// compiler. npm runs this when the package is installed (package.json "install"), so an install
// from the published tarball, which carries the C sources but no binaries, gets a helper too;
// scripts/build.mjs runs the same make for a checkout. Without make or a compiler it only warns:
// pull, push, images and the other store commands work without the helper, run and build need it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const native = join(dirname(fileURLToPath(import.meta.url)), '..', 'native');
if (existsSync(join(native, 'Makefile'))) {
  const r = spawnSync('make', ['-s', '-C', native], { stdio: 'inherit' });
  if (r.status !== 0) {
    const why = r.error && r.error.code === 'ENOENT' ? 'make is not installed' : `make failed (exit ${r.status})`;
    console.error(`imgbuild: the sandbox helper was not built (${why}); \`imgbuild run\` and \`build\` need it: install make and a C compiler (Debian: apt-get install build-essential), then run \`make -C ${native}\``);
  }
}
