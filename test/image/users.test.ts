import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePasswd, parseGroup, resolveExecUser, resolveChownIds, UnknownUserError, type UserDbReader } from '../../src/image/users.js';
import { resolveProcessUser } from '../../src/builder/dispatch/fs-root.js';
import { readRootfsFile } from '../../src/containers/rootfs.js';
import type { Mount } from '../../src/sandbox/spec.js';
import { makeTmp } from '../helpers/tmp.js';

type Tmp = Awaited<ReturnType<typeof makeTmp>>;

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'app:x:1000:1001::/home/app:/bin/sh',
  'nohome:x:1002:1002:::/bin/sh',
  'broken:x:abc:1:x:/x:/bin/sh',
  '',
].join('\n');
const GROUP = ['root:x:0:', 'apps:x:1001:', 'extra:x:1500:app,other', 'wheel:x:10:root', 'bad:x:zz:app', ''].join('\n');

const reader = (files: Partial<Record<'/etc/passwd' | '/etc/group', string>>): UserDbReader => async (f) => files[f];
const full = reader({ '/etc/passwd': PASSWD, '/etc/group': GROUP });

describe('image/users', () => {
  it('parses passwd and group, skipping malformed lines', () => {
    expect(parsePasswd(PASSWD).map((p) => p.name)).toEqual(['root', 'app', 'nohome']);
    expect(parsePasswd(PASSWD).find((p) => p.name === 'nohome')?.home).toBe('/');
    expect(parseGroup(GROUP).find((g) => g.name === 'extra')).toEqual({ name: 'extra', gid: 1500, members: ['app', 'other'] });
    expect(parseGroup(GROUP).map((g) => g.name)).not.toContain('bad');
    expect(parsePasswd(undefined)).toEqual([]);
  });

  it('resolves users like runc GetExecUser', async () => {
    expect(await resolveExecUser('', full)).toEqual({ uid: 0, gid: 0, additionalGids: [10], home: '/root' });
    expect(await resolveExecUser('app', full)).toEqual({ uid: 1000, gid: 1001, additionalGids: [1500], home: '/home/app' });
    // An explicit group replaces the supplementary ones.
    expect(await resolveExecUser('app:root', full)).toEqual({ uid: 1000, gid: 0, additionalGids: [], home: '/home/app' });
    expect(await resolveExecUser('1000:5', full)).toEqual({ uid: 1000, gid: 5, additionalGids: [], home: '/home/app' });
    expect(await resolveExecUser('4242', full)).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
    expect(await resolveExecUser('4242:apps', full)).toMatchObject({ uid: 4242, gid: 1001 });
    await expect(resolveExecUser('ghost', full)).rejects.toBeInstanceOf(UnknownUserError);
    await expect(resolveExecUser('app:ghosts', full)).rejects.toThrow(/group "ghosts"/);
  });

  it('runs as root in an image without /etc/passwd, but refuses unknown names there', async () => {
    const none = reader({});
    expect(await resolveExecUser('', none)).toEqual({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
    expect(await resolveExecUser('root', none)).toMatchObject({ uid: 0, gid: 0 });
    expect(await resolveExecUser('7:8', none)).toEqual({ uid: 7, gid: 8, additionalGids: [], home: '/' });
    await expect(resolveExecUser('app', none)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('resolves --chown ids', async () => {
    expect(await resolveChownIds('app', full)).toEqual({ uid: 1000, gid: 1000 });
    expect(await resolveChownIds('app:extra', full)).toEqual({ uid: 1000, gid: 1500 });
    expect(await resolveChownIds('5:6', reader({}))).toEqual({ uid: 5, gid: 6 });
    await expect(resolveChownIds('app:nope', full)).rejects.toThrow(/group "nope"/);
  });

  describe('read from a rootfs dir and from layer mounts give the same answer', () => {
    let tmp: Tmp;
    beforeAll(async () => {
      tmp = await makeTmp('imgbuild-users-');
      // Lower layer with the files, upper layer overriding /etc/group.
      await mkdir(join(tmp.dir, 'lower', 'etc'), { recursive: true });
      await writeFile(join(tmp.dir, 'lower', 'etc', 'passwd'), PASSWD);
      await writeFile(join(tmp.dir, 'lower', 'etc', 'group'), 'apps:x:1001:\n');
      await mkdir(join(tmp.dir, 'upper', 'etc'), { recursive: true });
      await writeFile(join(tmp.dir, 'upper', 'etc', 'group'), GROUP);
      await mkdir(join(tmp.dir, 'flat', 'etc'), { recursive: true });
      await writeFile(join(tmp.dir, 'flat', 'etc', 'passwd'), PASSWD);
      await writeFile(join(tmp.dir, 'flat', 'etc', 'group'), GROUP);
    });
    afterAll(() => tmp.cleanup());

    it('app', async () => {
      const rootfs: Mount[] = [{
        type: 'overlay', source: 'overlay',
        options: [`lowerdir=${join(tmp.dir, 'lower')}`, `upperdir=${join(tmp.dir, 'upper')}`, `workdir=${join(tmp.dir, 'work')}`],
      }];
      // The reader a container run uses (src/containers/users.ts reads through readRootfsFile).
      const fromMounts = await resolveExecUser('app', (f) => readRootfsFile(rootfs, f.slice(1)).catch(() => undefined));
      const fromDir = await resolveProcessUser(join(tmp.dir, 'flat'), 'app');
      expect(fromMounts).toEqual({ uid: 1000, gid: 1001, additionalGids: [1500], home: '/home/app' });
      expect(fromDir).toEqual(fromMounts);
    });
  });
});
