import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { makeTmp } from '../helpers/tmp.js';
import { newuidmapUnusable, subordinateRange, unshareCommand } from '../../src/host/userns.js';

describe('subordinate id ranges', () => {
  it('finds the first range of the user, by name or by id, and skips malformed lines', () => {
    const text = 'alice:100000:65536\nbob:x:1\n1001:200000:1000\nbob:300000:10\n';
    expect(subordinateRange(text, 'alice', 1000)).toEqual({ start: 100000, size: 65536 });
    expect(subordinateRange(text, 'carol', 1001)).toEqual({ start: 200000, size: 1000 });
    expect(subordinateRange(text, 'bob', 5)).toEqual({ start: 300000, size: 10 });
    expect(subordinateRange(text, 'dave', 7)).toBeUndefined();
    expect(subordinateRange('alice:1:0\n', 'alice', 1)).toBeUndefined();
  });
});

describe('unshareCommand', () => {
  let tmp: Awaited<ReturnType<typeof makeTmp>>;
  beforeAll(async () => {
    tmp = await makeTmp();
  });
  afterAll(() => tmp.cleanup());

  it('maps the subordinate ranges above the caller as root, or warns once and maps the caller alone', async () => {
    const me = userInfo();
    const sub = join(tmp.dir, 'subuid');
    const none = join(tmp.dir, 'empty');
    await writeFile(sub, `${me.username}:100000:65536\n`);
    await writeFile(none, 'someone:1:2\n');
    const full = unshareCommand(['prog', 'a'], { subuid: sub, subgid: sub });
    expect(full.warning).toBeUndefined();
    expect(full.args).toEqual(['unshare', '--map-root-user', '--mount', '--propagation', 'private', '--map-users=100000,1,65536', '--map-groups=100000,1,65536', '--', 'prog', 'a']);
    const single = unshareCommand(['prog'], { subuid: none, subgid: sub });
    expect(single.args).toEqual(['unshare', '--map-root-user', '--mount', '--propagation', 'private', '--', 'prog']);
    // The file it looked in is named (here the test's, by default /etc/subuid).
    expect(single.warning).toBe(
      `imgbuild: warning: no subordinate uid range for user ${me.username} in ${none}: add one with usermod --add-subuids 100000-165535 ${me.username} (meanwhile only ${me.username}'s own id is mapped: files of an image's other users become root's)`,
    );
    expect(unshareCommand(['prog'], { subuid: sub, subgid: none }).warning).toMatch(
      new RegExp(`^imgbuild: warning: no subordinate gid range for user \\S+ in ${none}: add one with usermod --add-subgids 100000-165535 `),
    );
    expect(unshareCommand(['prog'], { subuid: none, subgid: join(tmp.dir, 'missing') }).warning).toBe(
      `imgbuild: warning: no subordinate uid range for user ${me.username} in ${none} and no subordinate gid range for user ${me.username} in ${join(tmp.dir, 'missing')}: add them with usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${me.username} (meanwhile only ${me.username}'s own id is mapped: files of an image's other users become root's)`,
    );
  });
});

describe('newuidmap where it can gain nothing (a pod)', () => {
  it('under no_new_privs maps the caller alone and says why; where it can, the ranges', async () => {
    const me = userInfo();
    const tmp = await makeTmp();
    try {
      const sub = join(tmp.dir, 'subuid');
      await writeFile(sub, `${me.username}:100000:65536\n`);
      const nnp = unshareCommand(['prog'], { subuid: sub, subgid: sub, status: 'Name:\tnode\nNoNewPrivs:\t1\nSeccomp:\t2\n', path: '/usr/bin' });
      expect(nnp.args).toEqual(['unshare', '--map-root-user', '--mount', '--propagation', 'private', '--', 'prog']);
      expect(nnp.warning).toBe(
        `imgbuild: warning: the subordinate ids of user ${me.username} cannot be mapped: no_new_privs is set, so newuidmap gains no privileges (Kubernetes: allowPrivilegeEscalation: false) (meanwhile only ${me.username}'s own id is mapped: files of an image's other users become root's)`,
      );
      const fine = unshareCommand(['prog'], { subuid: sub, subgid: sub, status: 'NoNewPrivs:\t0\nCapBnd:\t000001ffffffffff\n', path: '/usr/bin' });
      expect(fine.args).toContain('--map-users=100000,1,65536');
      expect(fine.warning).toBeUndefined();
    } finally {
      await tmp.cleanup();
    }
  });

  it('names a bounding set without CAP_SETUID/CAP_SETGID, and a setuid newuidmap without CAP_SYS_ADMIN', () => {
    expect(newuidmapUnusable({ status: 'NoNewPrivs:\t0\nCapBnd:\t0000000000000000\n' })).toMatch(/bounding set has no CAP_SETUID or CAP_SETGID/);
    // podman's default set: file capabilities work, setuid does not.
    const pod = 'NoNewPrivs:\t0\nCapBnd:\t00000000800405fb\n';
    expect(newuidmapUnusable({ status: pod })).toBeUndefined();
    expect(newuidmapUnusable({ status: pod, setuidHelper: true })).toMatch(/^a setuid newuidmap needs CAP_SYS_ADMIN/);
    expect(newuidmapUnusable({ status: 'NoNewPrivs:\t0\nCapBnd:\t000001ffffffffff\n', setuidHelper: true })).toBeUndefined();
  });
});
