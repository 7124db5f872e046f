/**
 * The README's first command, as written: `bash scripts/demo.sh` on a checkout, end to end (setup,
 * build of dist/ and native/, the busybox base image, `build` of fixtures/demo, `run --rm demo`).
 *
 * It runs on a copy of the sources in a tmp dir (its own dist/ and native/build, so the build
 * does not rewrite the dist/ that other test files are using), with node_modules linked from the
 * checkout, and a store in a tmp IMGBUILD_ROOT. An `npm` shim on PATH refuses anything that would
 * install into the linked node_modules; the lock file is dated back so setup.sh does not want to.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cp, mkdir, symlink, utimes, writeFile, chmod, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { makeTmp } from '../helpers/tmp.js';
import { REPO_ROOT } from '../helpers/cli.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let repo: string;
let bin: string;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-readme-');
  repo = join(tmp.dir, 'repo');
  await mkdir(repo);
  for (const p of ['bin', 'scripts', 'src', 'fixtures/demo', 'tsconfig.json', 'package.json', 'package-lock.json']) {
    await cp(join(REPO_ROOT, p), join(repo, p), { recursive: true });
  }
  // native/ without its build output, so the helper is compiled here as on a fresh clone.
  await mkdir(join(repo, 'native'));
  for (const n of await readdir(join(REPO_ROOT, 'native'))) {
    if (n !== 'build') await cp(join(REPO_ROOT, 'native', n), join(repo, 'native', n), { recursive: true });
  }
  await symlink(join(REPO_ROOT, 'node_modules'), join(repo, 'node_modules'));
  await utimes(join(repo, 'package-lock.json'), 0, 0);
  bin = join(tmp.dir, 'bin');
  await mkdir(bin);
  const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  await writeFile(
    join(bin, 'npm'),
    `#!/bin/sh\ncase "$1" in ci|install|i|uninstall|update|prune) echo "npm $1 refused in this test" >&2; exit 99 ;; esac\nexec ${npm} "$@"\n`,
  );
  await chmod(join(bin, 'npm'), 0o755);
}, 60_000);
afterAll(async () => {
  await tmp.cleanup();
});

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, stdout, stderr });
    });
  });
}

describe('README: bash scripts/demo.sh', () => {
  it('builds and runs the demo image in a fresh store, and again on a second run', async () => {
    const store = join(tmp.dir, 'store');
    const env: NodeJS.ProcessEnv = { ...process.env, IMGBUILD_ROOT: store, PATH: `${bin}:${process.env.PATH ?? ''}` };
    // CI exports this for scripts/test.sh; here it would ask for `npm ci` into the linked node_modules.
    delete env.IMGBUILD_FORCE_NPM_CI;
    const first = await run('bash', ['scripts/demo.sh'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(/refused in this test/);
    // base-image.sh and `build` print image ids; then the demo's own output (fixtures/demo/hello.sh):
    // greeting, motd, build info.
    const motd = await readFile(join(REPO_ROOT, 'fixtures/demo/motd.txt'), 'utf8');
    const demoOut = (ids: number): RegExp => new RegExp(
      `^(sha256:[0-9a-f]{64}\\n){${ids}}Hello from imgbuild\\n${motd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}version 1\\.0, built \\d{4}-\\d{2}-\\d{2}\\n$`,
    );
    expect(first.stdout).toMatch(demoOut(2));
    // The build went through the plain progress view, with every step.
    expect(first.stderr).toMatch(/\[stage-0 \d+\/\d+\] RUN chmod 0755 hello\.sh/);
    // It was built by this copy: dist/ and the native helper were made here.
    const made = spawnSync('sh', ['-c', 'ls bin/imgbuild dist/cli/bin.cjs dist/cli/bundle.cjs && ls native/build'], { cwd: repo, encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    // The store now has both images, and a second run reuses the base image and the cache.
    const images = spawnSync(join(repo, 'bin/imgbuild'), ['images', '--format', 'json'], { env, encoding: 'utf8' });
    expect(images.status, images.stderr).toBe(0);
    const names = images.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { Repository: string }).Repository).sort();
    expect(names).toEqual(['busybox', 'demo']);
    const second = await run('bash', ['scripts/demo.sh'], env);
    expect(second.code, second.stderr).toBe(0);
    // The base image is there already: only the build's id, the same as before (all steps cached).
    expect(second.stdout).toMatch(demoOut(1));
    expect(second.stdout.split('\n')[0]).toBe(first.stdout.split('\n')[1]);
    expect(second.stderr).toMatch(/CACHED/);
  }, 400_000);
});
