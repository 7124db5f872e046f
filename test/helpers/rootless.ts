/**
 * Running the real CLI as an unprivileged user: `imgbuild-ci`, made (with its /etc/subuid and
 * /etc/subgid ranges) by scripts/rootless-user.sh, which `scripts/setup.sh` runs and these helpers
 * run again (it is idempotent and locked), so a test file works on its own too. Each test gets a
 * private directory owned by the user, its HOME and XDG_DATA_HOME, so its store is the one a
 * rootless user gets by default; cleanup checks that the user has no process left and nothing is
 * mounted there.
 */
import { afterEach, beforeAll, beforeEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, runCli, type CliOptions, type CliResult } from './cli.js';
import { makeTmp, mountsUnder } from './tmp.js';
import { busyboxLayerTar } from './base-image.js';

export const TEST_USER = 'imgbuild-ci';
/** The same without a subordinate id range. */
export const TEST_USER_NOSUB = 'imgbuild-ci-nosub';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

export function ensureTestUser(name = TEST_USER): TestUser {
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'rootless-user.sh'), 'ensure'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rootless-user.sh ensure failed: ${r.stderr}`);
  const id = (flag: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  return { name, uid: id('-u'), gid: id('-g') };
}

/**
 * The pids of the user's processes; with `home`, only those of one test's commands: the ones
 * with that HOME in their environment and their descendants (a container's processes have an
 * environment of their own), so that test files running at once as the same user keep apart.
 */
export function processesOf(user: TestUser, home?: string): number[] {
  const r = spawnSync('pgrep', ['-u', String(user.uid)], { encoding: 'utf8' });
  const all = r.stdout.split('\n').filter(Boolean).map(Number);
  if (home === undefined) return all;
  const parent = new Map<number, number>();
  const mine = new Set<number>();
  for (const pid of all) {
    try {
      parent.set(pid, Number(/\) \S+ (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1]));
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`HOME=${home}`)) mine.add(pid);
    } catch {
      // gone meanwhile
    }
  }
  return all.filter((pid) => {
    for (let p: number | undefined = pid, i = 0; p !== undefined && i < 64; p = parent.get(p), i++) if (mine.has(p)) return true;
    return false;
  });
}

export interface UserEnv {
  user: TestUser;
  /** The user's HOME, owned by it. */
  dir: string;
  /** `$XDG_DATA_HOME/imgbuild`: the store root a rootless user gets by default. */
  root: string;
  /** Runs the CLI as the user, with `--root root`. */
  cli(args: string[], o?: Omit<CliOptions, 'root' | 'wrap'>): Promise<CliResult>;
  /** Writes a file the user owns under its HOME and returns its path. */
  file(name: string, body: string | Buffer): Promise<string>;
  /** Imports the test busybox as `busybox:latest` into the user's store, as the user. */
  importBusybox(): Promise<void>;
  cleanup(): Promise<void>;
}

/** `noNewPrivs`: the CLI starts with no_new_privs set, as in a pod with allowPrivilegeEscalation: false. */
export async function makeUserEnv(user: TestUser, o: { noNewPrivs?: boolean } = {}): Promise<UserEnv> {
  const tmp = await makeTmp('imgbuild-rootless-');
  await chown(tmp.dir, user.uid, user.gid);
  const env = {
    HOME: tmp.dir,
    XDG_DATA_HOME: join(tmp.dir, 'data'),
    XDG_RUNTIME_DIR: join(tmp.dir, 'run'),
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    USER: user.name,
    LOGNAME: user.name,
  };
  const wrap = ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--reset-env', ...(o.noNewPrivs ? ['--no-new-privs'] : [])];
  const ue: UserEnv = {
    user,
    dir: tmp.dir,
    root: join(tmp.dir, 'data', 'imgbuild'),
    // --reset-env sets HOME etc. from passwd; `env` then gives the test's own.
    cli: (args, o = {}) =>
      runCli(args, { cwd: tmp.dir, ...o, root: ue.root, env: { ...env, ...o.env }, wrap: [...wrap, 'env', ...Object.entries({ ...env, ...o.env }).map(([k, v]) => `${k}=${v}`)] }),
    file: async (name, body) => {
      const p = join(tmp.dir, name);
      await writeFile(p, body);
      await chown(p, user.uid, user.gid);
      return p;
    },
    importBusybox: async () => {
      const p = await ue.file('busybox.tar', await busyboxLayerTar());
      const r = await ue.cli(['import', p, 'busybox:latest']);
      if (r.code !== 0) throw new Error(`import as ${user.name} failed: ${r.stderr}`);
    },
    cleanup: async () => {
      // A monitor may still be exiting after the command that stopped its container returned.
      let left = processesOf(user, tmp.dir);
      for (let i = 0; i < 100 && left.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        left = processesOf(user, tmp.dir);
      }
      const mounts = await mountsUnder(tmp.dir);
      await tmp.cleanup();
      if (left.length > 0) throw new Error(`${user.name} still has processes: ${left.join(' ')}`);
      if (mounts.length > 0) throw new Error(`mounts left under ${tmp.dir}: ${mounts.join(' ')}`);
    },
  };
  return ue;
}

/**
 * The hooks most rootless test files share: the test user once, a fresh environment of its own for
 * each test, cleaned up after it. `bind` receives both (before every test).
 */
export function useUserEnv(bind: (user: TestUser, env: UserEnv) => void): void {
  let user: TestUser;
  let env: UserEnv;
  beforeAll(() => {
    user = ensureTestUser();
  });
  beforeEach(async () => {
    env = await makeUserEnv(user);
    bind(user, env);
  });
  afterEach(async () => {
    await env.cleanup();
  });
}
