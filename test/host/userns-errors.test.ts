/**
 * The one line a rootless CLI prints when it cannot make its user namespace: the decision from
 * unshare's words, the setuid helpers and the kernel's settings (the cases this machine can
 * reach are run for real as the test user in test/e2e/rootless.test.ts; the sysctl ones, which
 * would need the host reconfigured, are decided here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeTmp } from '../helpers/tmp.js';
import { findMapHelper, inPath, preflightMessage, readUsernsSysctls, usernsFailureMessage, type MapHelper } from '../../src/host/userns-errors.js';

const ok: MapHelper[] = [
  { name: 'newuidmap', path: '/usr/bin/newuidmap', setuidRoot: true },
  { name: 'newgidmap', path: '/usr/bin/newgidmap', setuidRoot: true },
];
const decide = (stderr: string, sysctls: Parameters<typeof usernsFailureMessage>[1]['sysctls'], helpers = ok): string => usernsFailureMessage(stderr, { user: 'ci', helpers, sysctls });

describe('why a user namespace could not be made', () => {
  it('user.max_user_namespaces = 0', () => {
    expect(decide('unshare: unshare failed: No space left on device\n', { maxUserNamespaces: 0 })).toBe(
      'the kernel allows no user namespaces (user.max_user_namespaces = 0): raise the limit, as root: sysctl -w user.max_user_namespaces=28633',
    );
  });

  it('kernel.unprivileged_userns_clone = 0 (Debian and Ubuntu kernels)', () => {
    expect(decide('unshare: unshare failed: Operation not permitted\n', { maxUserNamespaces: 96367, unprivilegedUsernsClone: 0 })).toBe(
      'the kernel refuses user namespaces to users other than root (kernel.unprivileged_userns_clone = 0): allow them, as root: sysctl -w kernel.unprivileged_userns_clone=1',
    );
  });

  it('kernel.apparmor_restrict_unprivileged_userns = 1: the namespace is made but its maps cannot be written', () => {
    expect(decide('newuidmap: write to uid_map failed: Operation not permitted\nunshare: newuidmap failed\n', { maxUserNamespaces: 96367, unprivilegedUsernsClone: 1, apparmorRestrict: 1 })).toMatch(
      /^AppArmor restricts unprivileged user namespaces \(kernel\.apparmor_restrict_unprivileged_userns = 1\): give imgbuild an AppArmor profile with the userns rule, or, as root: sysctl -w kernel\.apparmor_restrict_unprivileged_userns=0$/,
    );
  });

  it('a kernel refusal comes before a missing helper when unshare(2) itself failed', () => {
    const missing: MapHelper[] = [{ name: 'newuidmap' }, ok[1]!];
    expect(decide('unshare: unshare failed: Operation not permitted\n', { unprivilegedUsernsClone: 0 }, missing)).toMatch(/unprivileged_userns_clone = 0/);
    // Otherwise the helper unshare could not run is the reason.
    expect(decide('unshare: failed to execute newuidmap: No such file or directory\n', { unprivilegedUsernsClone: 1 }, missing)).toBe(
      "newuidmap is not installed (not found in PATH): install the uidmap package, which maps user ci's subordinate uids from /etc/subuid into imgbuild's user namespace",
    );
  });

  it('a helper that is not setuid root', () => {
    expect(decide('newgidmap: write to gid_map failed: Operation not permitted\n', {}, [ok[0]!, { name: 'newgidmap', path: '/opt/bin/newgidmap', setuidRoot: false }])).toBe(
      "/opt/bin/newgidmap is not setuid root, so it cannot map user ci's subordinate gids: reinstall the uidmap package (or, as root: chmod u+s /opt/bin/newgidmap)",
    );
  });

  it('anything else: unshare\'s last words', () => {
    expect(decide('unshare: something new\nunshare: cannot open /proc/self/uid_map: Permission denied\n', { maxUserNamespaces: 10 })).toBe('cannot make a user namespace: unshare: cannot open /proc/self/uid_map: Permission denied');
    expect(decide('', {})).toBe('cannot make a user namespace: unshare failed without saying why');
  });

  it('before running unshare: only what certainly fails (AppArmor may allow a profiled imgbuild)', () => {
    const pre = (o: Partial<Parameters<typeof preflightMessage>[0]>): string | undefined => preflightMessage({ user: 'ci', unshare: true, helpers: ok, sysctls: {}, ...o });
    expect(pre({})).toBeUndefined();
    expect(pre({ sysctls: { apparmorRestrict: 1 } })).toBeUndefined();
    expect(pre({ sysctls: { maxUserNamespaces: 0 } })).toMatch(/^the kernel allows no user namespaces/);
    expect(pre({ sysctls: { unprivilegedUsernsClone: 0 } })).toMatch(/^the kernel refuses user namespaces to users other than root/);
    expect(pre({ helpers: [{ name: 'newuidmap' }] })).toMatch(/^newuidmap is not installed/);
    expect(pre({ unshare: false })).toBe("unshare is not installed (not found in PATH): install the util-linux package; a user other than root needs it to make imgbuild's user namespace");
  });
});

describe('reading the settings and finding the helpers', () => {
  let tmp: Awaited<ReturnType<typeof makeTmp>>;
  beforeAll(async () => {
    tmp = await makeTmp();
  });
  afterAll(() => tmp.cleanup());

  it('reads the three sysctls from a /proc/sys tree, leaving out those the kernel lacks', async () => {
    const sys = join(tmp.dir, 'sys');
    await mkdir(join(sys, 'user'), { recursive: true });
    await mkdir(join(sys, 'kernel'), { recursive: true });
    await writeFile(join(sys, 'user', 'max_user_namespaces'), '0\n');
    await writeFile(join(sys, 'kernel', 'apparmor_restrict_unprivileged_userns'), '1\n');
    expect(readUsernsSysctls(sys)).toEqual({ maxUserNamespaces: 0, apparmorRestrict: 1 });
    // This machine's.
    expect(readUsernsSysctls().maxUserNamespaces).toBeGreaterThan(0);
  });

  it('finds a helper in PATH and tells whether it is setuid root', async () => {
    const bin = join(tmp.dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'newuidmap'), '');
    await chmod(join(bin, 'newuidmap'), 0o755);
    expect(findMapHelper('newuidmap', `/nonexistent:${bin}`)).toEqual({ name: 'newuidmap', path: join(bin, 'newuidmap'), setuidRoot: false, fileCaps: false });
    // File capabilities (Fedora's shadow-utils, podman's in-container image) do as well as setuid.
    spawnSync('setcap', ['cap_setuid+ep', join(bin, 'newuidmap')]);
    expect(findMapHelper('newuidmap', bin)).toEqual({ name: 'newuidmap', path: join(bin, 'newuidmap'), setuidRoot: false, fileCaps: true });
    await chmod(join(bin, 'newuidmap'), 0o4755);
    expect(findMapHelper('newuidmap', bin).setuidRoot).toBe(true);
    expect(findMapHelper('newgidmap', bin)).toEqual({ name: 'newgidmap' });
    expect(inPath('unshare', '/usr/bin:/bin')).toMatch(/\/unshare$/);
    // A PATH entry that cannot be searched is passed over, not an error (a root-only dir in a user's PATH).
    await writeFile(join(tmp.dir, 'file'), '');
    expect(inPath('unshare', `${join(tmp.dir, 'file')}:/usr/bin`)).toBe('/usr/bin/unshare');
  });
});
