/**
 * Rootless cgroups on cgroup v2 against a fake cgroupfs tree (this machine runs v1, whose refusal
 * is checked for real in test/e2e/rootless.test.ts): finding the subtree delegated to the user by
 * ownership, the controllers enabled down to the container's group, the limit files written,
 * removal, the processes moved out of a busy namespace root, and the one-line refusals.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { access, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cgroup } from '../../src/host/cgroups.js';
import { containerParent, createDelegatedCgroup, findDelegation, type Delegation } from '../../src/host/rootless-cgroup.js';
import { makeTmp } from '../helpers/tmp.js';

const UID = 4242;
const SERVICE = `user.slice/user-${UID}.slice/user@${UID}.service`;
let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

/** A cgroup dir with its interface files, owned by `uid` (the user, or root: 0). */
async function group(rel: string, o: { uid?: number; controllers?: string; procs?: string; subtree?: string } = {}): Promise<string> {
  const d = join(root, rel);
  await mkdir(d, { recursive: true });
  await writeFile(join(d, 'cgroup.controllers'), `${o.controllers ?? 'cpu io memory pids'}\n`);
  await writeFile(join(d, 'cgroup.subtree_control'), o.subtree ?? '');
  await writeFile(join(d, 'cgroup.procs'), o.procs ?? '');
  const uid = o.uid ?? 0;
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control']) await chown(join(d, f), uid, uid);
  return d;
}

beforeEach(async () => {
  tmp = await makeTmp();
  root = join(tmp.dir, 'cgroup');
  await group('', { controllers: 'cpuset cpu io memory hugetlb pids rdma misc' });
  await group('user.slice');
  await group(`user.slice/user-${UID}.slice`);
  await group('user.slice/user-4242.slice/session-3.scope', { procs: '700\n' });
  // What systemd makes for `user@UID.service` with Delegate=yes: the service's tree is the user's.
  await group(SERVICE, { uid: UID, controllers: 'cpu io memory pids', subtree: 'cpu io memory pids' });
  await group(`${SERVICE}/init.scope`, { uid: UID, procs: '900\n' });
  await group(`${SERVICE}/app.slice`, { uid: UID });
  await group(`${SERVICE}/app.slice/term.scope`, { uid: UID, procs: '1000\n' });
});
afterEach(async () => tmp.cleanup());

const read = (p: string): Promise<string> => readFile(p, 'utf8');
const present = (p: string): Promise<boolean> => access(p).then(() => true, () => false);
const find = (self: string, o: { controllers?: string } = {}): Promise<Delegation> => findDelegation({ cgroupRoot: root, version: 2, uid: UID, selfCgroup: `0::${self}\n`, ...o });
const delegated = (d: Delegation): Extract<Delegation, { delegated: true }> => {
  if (!d.delegated) throw new Error(d.reason);
  return d;
};

describe('finding the delegated subtree', () => {
  it('a CLI in a scope of the systemd user manager: the subtree is user@UID.service', async () => {
    const d = delegated(await find(`/${SERVICE}/app.slice/term.scope`));
    expect(d.dir).toBe(join(root, SERVICE));
    expect(d.controllers).toEqual(['cpu', 'io', 'memory', 'pids']);
    expect(d.busy).toBe(false);
    expect(containerParent(d)).toBe(`${SERVICE}/imgbuild`);
  });

  it('a CLI in a login session scope (root-owned) gets none, and is told to run in the user manager', async () => {
    const d = await find('/user.slice/user-4242.slice/session-3.scope');
    expect(d.delegated).toBe(false);
    expect(!d.delegated && d.reason).toBe(
      `no delegation: imgbuild's cgroup /user.slice/user-4242.slice/session-3.scope is not writable by it: it lies outside ${SERVICE}, the subtree systemd delegates to user ${UID}: run imgbuild from a user session (systemd-run --user --scope imgbuild ...)`,
    );
  });

  it('without a user manager the reason says nothing is delegated', async () => {
    await chown(join(root, SERVICE), 0, 0);
    const d = await find('/user.slice/user-4242.slice/session-3.scope');
    expect(!d.delegated && d.reason).toMatch(/^no delegation: imgbuild's cgroup \S+ is not writable by it: no subtree is delegated to user 4242 \(log in through systemd-logind/);
  });

  it('cgroup v1 never delegates: the reason says so', async () => {
    const d = await findDelegation({ cgroupRoot: root, version: 1, uid: UID });
    expect(d).toEqual({ delegated: false, version: 1, reason: expect.stringMatching(/^cgroup v1 does not support rootless limits \(they need cgroup v2/) });
  });

  it('a CLI inside a container that owns its cgroup namespace: the root, busy with its processes', async () => {
    // The container's view: its cgroup namespace root is the mount's root, and it holds the CLI.
    await group('', { uid: UID, controllers: 'cpu memory pids', procs: '1\n57\n' });
    const d = delegated(await find('/'));
    expect(d).toMatchObject({ dir: root, busy: true, controllers: ['cpu', 'memory', 'pids'] });
    expect(containerParent(d)).toBe('imgbuild');
  });

  it('the real /sys/fs/cgroup: v1 here gives the v1 reason, v2 an answer either way', async () => {
    const d = await findDelegation();
    expect(typeof d.delegated).toBe('boolean');
  });
});

describe('a container group in the delegated subtree', () => {
  it('enables the controllers down to the group, writes the limits, and is removed whole', async () => {
    const d = delegated(await find(`/${SERVICE}/app.slice/term.scope`));
    await writeFile(join(d.dir, 'cgroup.subtree_control'), '');
    const cg = await createDelegatedCgroup('c0ffee', { memory: 64 * 1024 * 1024, memorySwap: 128 * 1024 * 1024, cpus: 0.5, pidsLimit: 20 }, d);
    const dir = join(root, SERVICE, 'imgbuild', 'c0ffee');
    expect(cg.paths).toEqual([dir]);
    expect((await read(join(root, SERVICE, 'cgroup.subtree_control'))).split(' ').sort()).toEqual(['+cpu', '+io', '+memory', '+pids']);
    expect((await read(join(root, SERVICE, 'imgbuild', 'cgroup.subtree_control'))).split(' ').sort()).toEqual(['+cpu', '+io', '+memory', '+pids']);
    // Nothing is written above the subtree: those files are not the user's.
    expect(await read(join(root, 'cgroup.subtree_control'))).toBe('');
    expect(await read(join(root, `user.slice/user-${UID}.slice`, 'cgroup.subtree_control'))).toBe('');
    expect(await read(join(dir, 'memory.max'))).toBe('67108864');
    expect(await read(join(dir, 'memory.swap.max'))).toBe('67108864');
    expect(await read(join(dir, 'cpu.max'))).toBe('50000 100000');
    expect(await read(join(dir, 'pids.max'))).toBe('20');

    // As `rm` finds it again from the recorded path, kills and removes it; the parent stays.
    const again = await Cgroup.open('c0ffee', { cgroupRoot: root, version: 2, parent: containerParent(d) });
    expect(again.paths).toEqual([dir]);
    await again.kill('SIGKILL');
    await again.remove();
    expect(await present(dir)).toBe(false);
    expect(await present(join(root, SERVICE, 'imgbuild'))).toBe(true);
  });

  it('enables only the delegated controllers a container without limits can use', async () => {
    await writeFile(join(root, SERVICE, 'cgroup.controllers'), 'memory pids\n');
    await writeFile(join(root, SERVICE, 'cgroup.subtree_control'), '');
    const d = delegated(await find(`/${SERVICE}/app.slice/term.scope`));
    const cg = await createDelegatedCgroup('plain', {}, d);
    expect((await read(join(root, SERVICE, 'cgroup.subtree_control'))).split(' ').sort()).toEqual(['+memory', '+pids']);
    expect(await present(join(cg.paths[0]!, 'memory.max'))).toBe(false);
  });

  it('refuses a limit whose controller is not delegated in one line, and makes nothing', async () => {
    await writeFile(join(root, SERVICE, 'cgroup.controllers'), 'memory pids\n');
    const d = delegated(await find(`/${SERVICE}/app.slice/term.scope`));
    await expect(createDelegatedCgroup('shares', { cpuShares: 512 }, d)).rejects.toThrow(/^the cpu controller is not delegated to this user/);
    await expect(createDelegatedCgroup('nocpu', { cpus: 1, pidsLimit: 5 }, d)).rejects.toThrow(
      `the cpu controller is not delegated to this user (${join(root, SERVICE)}/cgroup.controllers has: memory pids): add them with Delegate=cpu cpuset io memory pids in a drop-in for user@.service (/etc/systemd/system/user@.service.d/delegate.conf) and log in again`,
    );
    await writeFile(join(root, SERVICE, 'cgroup.controllers'), '\n');
    const none = delegated(await find(`/${SERVICE}/app.slice/term.scope`));
    await expect(createDelegatedCgroup('nomem', { memory: 64 * 1024 * 1024, cpus: 1 }, none)).rejects.toThrow(/^the memory and cpu controllers are not delegated to this user \(\S+ has: none\)/);
    await expect(createDelegatedCgroup('dev', { devices: ['c 1:3 rwm'] }, d)).rejects.toThrow(/^device rules cannot be applied to a rootless container/);
    expect(await present(join(root, SERVICE, 'imgbuild'))).toBe(false);
  });

  it('moves the processes of a busy namespace root into init/ before enabling controllers for a limit', async () => {
    await group('', { uid: UID, controllers: 'cpu memory pids', procs: '1\n' });
    const d = delegated(await find('/'));
    const cg = await createDelegatedCgroup('lim', { pidsLimit: 10 }, d);
    expect(await read(join(root, 'init', 'cgroup.procs'))).toBe('1');
    expect((await read(join(root, 'cgroup.subtree_control'))).split(' ').sort()).toEqual(['+cpu', '+memory', '+pids']);
    expect(await read(join(cg.paths[0]!, 'pids.max'))).toBe('10');
  });

  it('leaves a busy root\'s processes where they are when no limit needs a controller', async () => {
    await group('', { uid: UID, controllers: 'cpu memory pids', procs: '1\n' });
    const d = delegated(await find('/'));
    const cg = await createDelegatedCgroup('free', {}, d);
    expect(await present(join(root, 'init'))).toBe(false);
    expect(cg.paths).toEqual([join(root, 'imgbuild', 'free')]);
  });
});
