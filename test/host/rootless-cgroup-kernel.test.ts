/**
 * Delegation on the real kernel: this machine's cgroup v2 hierarchy (the hybrid layout's
 * /sys/fs/cgroup/unified, which has no resource controllers) gets a group chowned to the test
 * user as systemd chowns user@UID.service, and the user's process placed inside it. Run as that
 * user in its user namespace, the rootless code finds the subtree by ownership, makes a
 * container group the kernel lets it make, moves a process into it (allowed below the common
 * ancestor it owns), kills and removes it; a limit is refused for want of a delegated controller,
 * and outside the subtree nothing is found. The controllers and limit files are covered on a fake
 * tree in rootless-cgroup.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chown, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTestUser, type TestUser } from '../helpers/rootless.js';
import { REPO_ROOT } from '../helpers/cli.js';

const UNIFIED = '/sys/fs/cgroup/unified';
const usable = existsSync(join(UNIFIED, 'cgroup.procs'));
const group = join(UNIFIED, `imgbuild-test-deleg-${process.pid}`);
let user: TestUser;

/** Runs the fixture as the user in its namespace; `inside`: from a process placed in the delegated group first. */
function runFixture(inside: boolean): Record<string, unknown> {
  const fixture = join(REPO_ROOT, 'test', 'host', 'fixtures', 'delegation.ts');
  const asUser = ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', 'unshare', '--user', '--map-root-user', process.execPath, '--import', 'tsx', fixture, UNIFIED, String(user.uid)];
  // The shell (root) joins the group and then becomes the user: what logind and systemd do for a session.
  const script = inside ? `echo $$ > ${group}/session/cgroup.procs && exec "$@"` : 'exec "$@"';
  const r = spawnSync('sh', ['-c', script, 'sh', ...asUser], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`fixture failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

beforeAll(async () => {
  if (!usable) return;
  user = ensureTestUser();
  await mkdir(group);
  // systemd's Delegate=yes: the directory and these files become the user's.
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) await chown(join(group, f), user.uid, user.gid);
  await mkdir(join(group, 'session'));
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) await chown(join(group, 'session', f), user.uid, user.gid);
});

afterAll(async () => {
  if (!usable || !existsSync(group)) return;
  for (const d of [join(group, 'imgbuild', 'ctr'), join(group, 'imgbuild', 'limited'), join(group, 'imgbuild'), join(group, 'session'), group]) {
    if (!existsSync(d)) continue;
    for (const pid of (await readFile(join(d, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    await writeFile(join(d, 'cgroup.kill'), '1').catch(() => {});
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(d);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
});

describe.skipIf(!usable)('rootless cgroups on the kernel\'s cgroup v2 hierarchy', () => {
  it('inside the delegated group: the subtree is found, a container group made, joined, killed and removed', () => {
    const out = runFixture(true);
    expect(out.delegation).toEqual({ delegated: true, cgroupRoot: UNIFIED, dir: group, controllers: [], busy: false });
    expect(out.paths).toEqual([join(group, 'imgbuild', 'ctr')]);
    expect(out.pids).toEqual([out.child]);
    expect(out.removed).toBe(true);
    expect(out.refused).toBe(`the pids controller is not delegated to this user (${group}/cgroup.controllers has: none): add them with Delegate=cpu cpuset io memory pids in a drop-in for user@.service (/etc/systemd/system/user@.service.d/delegate.conf) and log in again`);
    // Made by the user: the kernel kept the owner (its uid, seen from the host).
    expect(spawnSync('stat', ['-c', '%u', join(group, 'imgbuild')], { encoding: 'utf8' }).stdout.trim()).toBe(String(user.uid));
    expect(existsSync(join(group, 'imgbuild', 'limited'))).toBe(false);
  });

  it('outside it (the root group, root\'s): no delegation, and the reason', () => {
    const out = runFixture(false);
    expect(out.delegation).toEqual({
      delegated: false,
      version: 2,
      reason: `no delegation: imgbuild's cgroup / is not writable by it: no subtree is delegated to user ${user.uid} (log in through systemd-logind for user.slice/user-${user.uid}.slice/user@${user.uid}.service, or give the container its own writable cgroup namespace)`,
    });
  });
});
