/**
 * The executable's code caches for a user who cannot write beside the bundle (every rootless user
 * of an installation root owns): its own, under $XDG_CACHE_HOME/imgbuild/code-cache, one for the
 * CLI it starts and one for that CLI's re-run inside its user namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CLI_MAIN, REPO_ROOT } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';
import { ensureTestUser, type TestUser } from '../helpers/rootless.js';

const { codeCacheDirs, cacheName } = createRequire(import.meta.url)(CLI_MAIN) as {
  codeCacheDirs: (bundleDir: string, env: NodeJS.ProcessEnv, uid: number) => string[];
  cacheName: (command: string, env: NodeJS.ProcessEnv, uid: number) => string;
};

describe('code caches of a user who cannot write beside the bundle', () => {
  it('root uses the directory beside the bundle alone; others add their own cache directory', () => {
    expect(codeCacheDirs('/opt/i/dist/cli', { HOME: '/root', XDG_CACHE_HOME: '/c' }, 0)).toEqual(['/opt/i/dist/cli/code-cache']);
    expect(codeCacheDirs('/opt/i/dist/cli', { HOME: '/home/u', XDG_CACHE_HOME: '/c' }, 1000)).toEqual(['/opt/i/dist/cli/code-cache', '/c/imgbuild/code-cache']);
    // The re-run inside the user namespace is uid 0 there, and still the user's.
    expect(codeCacheDirs('/opt/i/dist/cli', { HOME: '/home/u', IMGBUILD_ROOTLESS: '1000:1000' }, 0)).toEqual(['/opt/i/dist/cli/code-cache', '/home/u/.cache/imgbuild/code-cache']);
    // A relative XDG_CACHE_HOME is invalid (XDG base directory spec); no HOME, no cache of its own.
    expect(codeCacheDirs('/d', { HOME: '/home/u', XDG_CACHE_HOME: 'rel' }, 1000)).toEqual(['/d/code-cache', '/home/u/.cache/imgbuild/code-cache']);
    expect(codeCacheDirs('/d', {}, 1000)).toEqual(['/d/code-cache']);

    expect(cacheName('run', {}, 0)).toBe('run');
    expect(cacheName('run', {}, 1000)).toBe('user-run');
    expect(cacheName('run', { IMGBUILD_ROOTLESS: '1000:1000' }, 0)).toBe('run');
  });

  describe('as an unprivileged user', () => {
    // Not makeUserEnv: its cleanup fails on any process of the user, and other test files run
    // theirs meanwhile. These commands end before spawnSync returns.
    let user: TestUser;
    let tmp: Awaited<ReturnType<typeof makeTmp>>;
    let env: { dir: string; user: TestUser };
    beforeAll(async () => {
      user = ensureTestUser();
      tmp = await makeTmp('imgbuild-bin-rootless-');
      spawnSync('chown', [`${user.uid}:${user.gid}`, tmp.dir]);
      env = { dir: tmp.dir, user };
    });
    afterAll(async () => {
      await tmp?.cleanup();
    });

    it('the CLI and its re-run in the user namespace each keep a cache of their own there, read on the next run', () => {
      // A root-owned installation the user can read, not write.
      const inst = join(env.dir, 'inst');
      const cli = join(inst, 'dist', 'cli');
      mkdirSync(cli, { recursive: true });
      for (const f of readdirSync(join(REPO_ROOT, 'dist', 'cli')).filter((n) => n === 'bin.cjs' || /^bundle(-[a-z]+)?\.cjs$/.test(n))) {
        copyFileSync(join(REPO_ROOT, 'dist', 'cli', f), join(cli, f));
      }
      symlinkSync(join(REPO_ROOT, 'node_modules'), join(inst, 'node_modules'));
      chmodSync(inst, 0o755);
      const cache = join(env.dir, 'cache');
      const asUser = (args: string[], more: Record<string, string> = {}) => {
        const vars = { HOME: env.dir, XDG_DATA_HOME: join(env.dir, 'data'), XDG_RUNTIME_DIR: join(env.dir, 'run'), XDG_CACHE_HOME: cache, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', USER: env.user.name, ...more };
        const wrap = ['--reuid', String(env.user.uid), '--regid', String(env.user.gid), '--init-groups', '--reset-env', 'env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)];
        const r = spawnSync('setpriv', [...wrap, process.execPath, join(cli, 'bin.cjs'), ...args], { encoding: 'utf8', cwd: env.dir, timeout: 30_000, killSignal: 'SIGKILL' });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr };
      };
      const dir = join(cache, 'imgbuild', 'code-cache');
      // A command runs from its own bundle when the build made one (scripts/build.mjs).
      const key = (command: string): string => {
        const own = join(cli, `bundle-${command}.cjs`);
        const st = statSync(existsSync(own) ? own : join(cli, 'bundle.cjs'));
        return `-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}`;
      };

      // `volume ls` runs again inside the user namespace: two processes, two caches.
      const first = asUser(['volume', 'ls']);
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      expect(readdirSync(dir).sort()).toEqual([`user-volume${key('volume')}.bin`, `volume${key('volume')}.bin`]);
      for (const f of readdirSync(dir)) expect({ f, uid: statSync(join(dir, f)).uid }).toEqual({ f, uid: env.user.uid });
      expect(existsSync(join(cli, 'code-cache'))).toBe(false);
      // The next run reads them (V8 accepts them: neither is rewritten) and behaves the same.
      const mtimes = readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs);
      expect(asUser(['volume', 'ls'])).toEqual(first);
      expect(readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs)).toEqual(mtimes);

      // Writing a command's cache drops that command's caches of other builds from the user's directory.
      const stale = join(dir, `user-images-v0.0.0-x64-1-1.bin`);
      writeFileSync(stale, 'old');
      spawnSync('chown', [`${env.user.uid}:${env.user.gid}`, stale]);
      expect(asUser(['images', '-q']).status).toBe(0);
      expect(readdirSync(dir).sort()).toEqual([`user-images${key('images')}.bin`, `user-volume${key('volume')}.bin`, `volume${key('volume')}.bin`]);

      // A cache directory that cannot be made (mkdir fails with ENOENT under /proc): no cache, and
      // the command still ends (Node's recursive mkdir would spin there for ever).
      const nowhere = asUser(['images', '-q'], { XDG_CACHE_HOME: '/proc/imgbuild-nowhere' });
      expect(nowhere.status).toBe(0);
    });
  });
});
