/**
 * The package as npm publishes it: `npm pack`, then an install of the tarball into a directory of
 * its own. The tarball carries the built JavaScript and the helper's C sources, not binaries or
 * code caches; npm's install step compiles the sandbox helper, and the installed `imgbuild` runs a
 * container with it.
 *
 * The install is `npm ci` against a lockfile made from the tarball's manifest and this
 * repository's package-lock.json (its non-dev entries, the versions the suite runs with), so it
 * needs no registry metadata: `npm ci` never caches any, and with an empty cache an `npm install`
 * of the tarball would have to ask the registry for every dependency (`--offline`: ENOTCACHED).
 * The tarballs come from the cache `npm ci` filled, or from the registry if it lacks one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { REPO_ROOT } from '../helpers/cli.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let store: string;
let installed: string;

function run(cmd: string, args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

interface LockEntry { version?: string; dev?: boolean; link?: boolean; [k: string]: unknown }

/**
 * A project in `dir` that depends on the tarball, with a complete lockfile: the tarball's own
 * entry (from the manifest inside it) and the production part of the repository's lockfile,
 * whose paths stay valid one level down (node_modules/X is still found from node_modules/imgbuild).
 */
function writeInstallLock(dir: string, tgz: string): void {
  const tar = spawnSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' });
  expect(tar.status, tar.stderr).toBe(0);
  const manifest = JSON.parse(tar.stdout) as Record<string, unknown> & { version: string; allowScripts?: Record<string, boolean> };
  const repoLock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const spec = `file:${relative(dir, tgz)}`;
  const project = {
    name: 'imgbuild-package-check',
    private: true,
    dependencies: { imgbuild: spec },
    // the package's install step (npm names a tarball by its absolute path here), and those its
    // own policy allows
    allowScripts: { [`file:${tgz}`]: true, ...manifest.allowScripts },
  };
  const packages: Record<string, unknown> = {
    '': { name: project.name, dependencies: project.dependencies },
    'node_modules/imgbuild': {
      version: manifest.version,
      resolved: spec,
      integrity: `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`,
      hasInstallScript: true,
      ...Object.fromEntries(['license', 'dependencies', 'optionalDependencies', 'bin', 'engines'].filter((k) => manifest[k] !== undefined).map((k) => [k, manifest[k]])),
    },
  };
  for (const [path, entry] of Object.entries(repoLock.packages)) {
    if (path !== '' && !entry.dev && !entry.link) packages[path] = entry;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify(project, null, 2));
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ name: project.name, lockfileVersion: 3, requires: true, packages }, null, 2));
}

beforeAll(async () => {
  ({ tmp, root: store } = await tmpBusyboxStore('imgbuild-package-'));
  // --ignore-scripts: pack what the test setup built (prepare would rebuild dist/ under the other
  // test files that run meanwhile).
  const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp.dir], REPO_ROOT);
  expect(packed.status, packed.out).toBe(0);
  const tgz = readdirSync(tmp.dir).find((n) => n.endsWith('.tgz'));
  expect(tgz, packed.out).toBeDefined();
  const prefix = join(tmp.dir, 'prefix');
  writeInstallLock(prefix, join(tmp.dir, tgz!));
  const inst = run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], prefix);
  expect(inst.status, inst.out).toBe(0);
  // every dependency the installed manifest asks for is there, in a version it accepts
  const ls = run('npm', ['ls', '--all', '--omit=dev'], prefix);
  expect(ls.status, ls.out).toBe(0);
  installed = join(prefix, 'node_modules', 'imgbuild');
}, 180_000);

afterAll(async () => {
  await tmp?.cleanup();
});

describe('the npm package', () => {
  it('is installed with a sandbox helper compiled on the spot, and no code caches of ours', () => {
    expect(existsSync(join(installed, 'native', 'build', 'imgbuild-sandbox'))).toBe(true);
    expect(existsSync(join(installed, 'native', 'sandbox.c'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'cli', 'bundle.cjs'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'cli', 'code-cache'))).toBe(false);
  });

  it('runs a container through the installed executable', () => {
    const exe = join(tmp.dir, 'prefix', 'node_modules', '.bin', 'imgbuild');
    const r = run(exe, ['--root', store, 'run', '--rm', BUSYBOX_REF, 'echo', 'from the package'], tmp.dir);
    expect(r.out).toBe('from the package\n');
    expect(r.status).toBe(0);
    // its first run wrote its code cache beside its own bundle
    expect(readdirSync(join(installed, 'dist', 'cli', 'code-cache')).some((n) => n.startsWith('run-'))).toBe(true);
  });
});
