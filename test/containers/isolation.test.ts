/**
 * How `info` and `inspect` name a store's and a container's isolation, snapshotter, cgroups and
 * network, from the facts each part records (the real CLI's output is checked in
 * test/e2e/system.test.ts for root and test/e2e/rootless.test.ts for a user).
 */
import { describe, expect, it } from 'vitest';
import { containerIsolation, hostIsolation, securityOptionLines } from '../../src/containers/isolation.js';

describe('isolation as info reports it', () => {
  it('root on cgroup v1 with overlayfs: namespaces, overlay, cgroupfs, the bridge', () => {
    expect(hostIsolation({ rootless: false, snapshotter: 'overlayfs', cgroupVersion: 1 })).toMatchObject({
      Isolation: 'namespaces',
      Driver: 'overlay',
      Snapshotter: 'overlayfs',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: '1',
      SecurityOptions: ['name=seccomp,profile=default'],
      RootlessNetworkCmd: '',
      DefaultNetwork: 'bridge',
    });
  });

  it('rootless without a delegated cgroup: no cgroup driver, no controllers, rootless in the security options', () => {
    const h = hostIsolation({ rootless: true, snapshotter: 'vfs', cgroupVersion: 1 });
    expect(h).toMatchObject({ Isolation: 'rootless', Driver: 'vfs', CgroupDriver: 'none', CgroupControllers: [], DefaultNetwork: 'none', RootlessNetworkCmd: '' });
    expect(h.SecurityOptions).toEqual(['name=seccomp,profile=default', 'name=rootless']);
  });

  it('rootless with a delegated v2 subtree, fuse-overlayfs and a user-mode network', () => {
    const h = hostIsolation({
      rootless: true,
      snapshotter: 'fuse-overlayfs',
      cgroupVersion: 2,
      cgroupDelegation: { path: '/sys/fs/cgroup/user.slice/user-1001.slice/user@1001.service', controllers: ['memory', 'pids'] },
      rootlessNetworkCmd: 'pasta',
    });
    expect(h).toMatchObject({ Driver: 'fuse-overlayfs', CgroupDriver: 'cgroupfs', CgroupVersion: '2', CgroupControllers: ['memory', 'pids'], RootlessNetworkCmd: 'pasta', DefaultNetwork: 'pasta' });
  });

  it('chroot isolation is named, and in the security options', () => {
    const h = hostIsolation({ rootless: true, snapshotter: 'vfs', isolation: 'chroot' });
    expect(h.Isolation).toBe('chroot');
    expect(h.SecurityOptions).toContain('name=chroot');
    expect(h.CgroupVersion).toBe('unknown');
  });

  it('security options print as Docker prints them', () => {
    expect(securityOptionLines(['name=seccomp,profile=default', 'name=rootless'])).toEqual(['seccomp', ' Profile: default', 'rootless']);
  });
});

describe('isolation as inspect reports it', () => {
  const overlay = { rootfs: [{ type: 'overlay' as const, source: 'overlay', options: [] }] };
  it('reads the snapshotter from the rootfs mount when the record does not say', () => {
    expect(containerIsolation({}, overlay).GraphDriver).toBe('overlay');
    expect(containerIsolation({}, { rootfs: [{ type: 'bind', source: '/x', options: [] }] }).GraphDriver).toBe('vfs');
    expect(containerIsolation({}, { rootfs: [{ type: 'fuse.fuse-overlayfs' as 'overlay', source: 'x', options: [] }] }).GraphDriver).toBe('fuse-overlayfs');
    expect(containerIsolation({}).GraphDriver).toBe('overlay');
  });

  it('takes what the record says: isolation, --userns, snapshotter', () => {
    expect(containerIsolation({ isolation: { isolation: 'rootless', userns: 'auto', snapshotter: 'vfs' } }, overlay)).toEqual({ GraphDriver: 'vfs', Isolation: 'rootless', UsernsMode: 'auto' });
    expect(containerIsolation({ isolation: { isolation: 'namespaces' } }, overlay)).toEqual({ GraphDriver: 'overlay', Isolation: 'namespaces', UsernsMode: '' });
  });
});
