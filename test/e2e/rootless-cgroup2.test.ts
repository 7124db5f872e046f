/**
 * The rootless CLI on a cgroup v2 hierarchy with a subtree delegated to the user, for real: this
 * machine's v2 hierarchy (the hybrid layout's /sys/fs/cgroup/unified, without resource
 * controllers) is bind-mounted on /sys/fs/cgroup in a mount namespace of the test's, a group in it
 * is chowned to the test user as systemd chowns user@UID.service, and the CLI starts inside it as
 * a login session would. Containers then get their group under that subtree, whatever their
 * network; a limit is refused for want of a delegated controller; rm leaves nothing.
 */
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { chown, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expectOneLineError, runCli, type CliResult, okOut } from '../helpers/cli.js';
import { ensureTestUser, makeUserEnv, type TestUser, type UserEnv } from '../helpers/rootless.js';

const UNIFIED = '/sys/fs/cgroup/unified';
const usable = existsSync(join(UNIFIED, 'cgroup.procs'));
const NAME = `imgbuild-test-rl2-${process.pid}`;
const group = join(UNIFIED, NAME);
let user: TestUser;
let env: UserEnv;

/** The CLI as the user, in a session placed in the delegated group, seeing the v2 hierarchy at /sys/fs/cgroup. */
function cli(args: string[]): Promise<CliResult> {
  const vars = { HOME: env.dir, XDG_DATA_HOME: join(env.dir, 'data'), XDG_RUNTIME_DIR: join(env.dir, 'run'), PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', USER: user.name };
  const script = `mount --bind ${UNIFIED} /sys/fs/cgroup && echo $$ > /sys/fs/cgroup/${NAME}/session/cgroup.procs && exec setpriv --reuid ${user.uid} --regid ${user.gid} --init-groups --reset-env env ${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' ')} "$@"`;
  return runCli(args, { root: env.root, cwd: env.dir, wrap: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh'] });
}

async function owned(d: string): Promise<void> {
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) await chown(join(d, f), user.uid, user.gid);
}

beforeAll(async () => {
  if (!usable) return;
  user = ensureTestUser();
  await mkdir(join(group, 'session'), { recursive: true });
  await owned(group);
  await owned(join(group, 'session'));
});
afterAll(async () => {
  if (!usable || !existsSync(group)) return;
  const dirs = [...(existsSync(join(group, 'imgbuild')) ? readdirSync(join(group, 'imgbuild'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(group, 'imgbuild', e.name)) : []), join(group, 'imgbuild'), join(group, 'session'), group];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    await writeFile(join(d, 'cgroup.kill'), '1').catch(() => {});
    for (let i = 0; i < 100; i++) {
      try {
        await rmdir(d);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
});
beforeEach(async () => {
  if (!usable) return;
  env = await makeUserEnv(user);
  await env.importBusybox();
});
afterEach(async () => env?.cleanup());

describe.skipIf(!usable)('rootless on cgroup v2 with a delegated subtree', () => {
  it.each([['none'], ['host'], ['slirp4netns']])('a --network %s container runs in its group under the subtree, and rm removes it', async (network) => {
    const r = await cli(['run', '-d', '--network', network, 'busybox', 'sleep', '100']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    const dir = join('/sys/fs/cgroup', NAME, 'imgbuild', id);
    const doc = JSON.parse(okOut(await cli(['inspect', id]))) as { State: { Pid: number }; Cgroup: { version: number; paths: string[] } }[];
    expect(doc[0]!.Cgroup).toEqual({ version: 2, paths: [dir] });
    // The kernel's word, from the host: the container's pid 1 is in that group.
    expect((await readFile(`/proc/${doc[0]!.State.Pid}/cgroup`, 'utf8')).match(/^0::(.*)$/m)?.[1]).toBe(`/${NAME}/imgbuild/${id}`);
    expect(existsSync(join(group, 'imgbuild', id))).toBe(true);
    expect((await cli(['rm', '-f', id])).code).toBe(0);
    expect(existsSync(join(group, 'imgbuild', id))).toBe(false);
  });

  it('info names the cgroup driver; a limit without its delegated controller is refused in one line', async () => {
    const info = await cli(['info', '--format', '{{.CgroupDriver}} {{.CgroupVersion}} {{json .CgroupControllers}}']);
    expect(info.stdout).toBe('cgroupfs 2 []\n');
    const r = await cli(['run', '--rm', '--pids-limit', '5', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expectOneLineError(r, new RegExp(`^imgbuild: FAILED_PRECONDITION: --pids-limit cannot be applied to a rootless container: the pids controller is not delegated to this user \\(/sys/fs/cgroup/${NAME}/cgroup\\.controllers has: none\\): add them with Delegate=cpu cpuset io memory pids`));
    const ok = await cli(['run', '--rm', 'busybox', 'cat', '/proc/self/cgroup']);
    expect(ok.stderr).toBe('');
    // Its own cgroup namespace, rooted at its group.
    expect(ok.stdout).toMatch(/^0::\/$/m);
    expect(readdirSync(join(group, 'imgbuild'), { withFileTypes: true }).filter((e) => e.isDirectory())).toEqual([]);
  });
});
