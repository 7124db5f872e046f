/**
 * The package as npm publishes it: `npm pack`, then `npm install` of the tarball into a prefix of
 * its own (offline, from the npm cache `npm ci` filled). The tarball carries the built JavaScript
 * and the helper's C sources, not binaries or code caches; npm's install step compiles the sandbox
 * helper, and the installed `imgbuild` runs a container with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { REPO_ROOT } from '../helpers/cli.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let store: string;
let installed: string;

function run(cmd: string, args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  ({ tmp, root: store } = await tmpBusyboxStore('imgbuild-package-'));
  // --ignore-scripts: pack what the test setup built (prepare would rebuild dist/ under the other
  // test files that run meanwhile).
  const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp.dir], REPO_ROOT);
  expect(packed.status, packed.out).toBe(0);
  const tgz = readdirSync(tmp.dir).find((n) => n.endsWith('.tgz'));
  expect(tgz, packed.out).toBeDefined();
  const inst = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--prefix', join(tmp.dir, 'prefix'), join(tmp.dir, tgz!)], tmp.dir);
  expect(inst.status, inst.out).toBe(0);
  installed = join(tmp.dir, 'prefix', 'node_modules', 'imgbuild');
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
