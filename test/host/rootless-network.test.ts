/**
 * The rootless network's choices that need no container: which helper a host gets, `--network`
 * read rootless, the ports a user may publish, pasta's port options and the resolver inside.
 * The helpers themselves run in test/e2e/rootless-network.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseNetworkFlag } from '../../src/containers/network-options.js';
import { checkUnprivilegedPorts, pastaPorts, probeRootlessNetwork } from '../../src/host/rootless-network.js';
import { containerResolvConf, sandboxResolvConf } from '../../src/host/resolv-conf.js';
import { makeTmp } from '../helpers/tmp.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-rlnet-');
});
afterEach(async () => {
  await tmp.cleanup();
});

/** A PATH of one directory holding executables named `names`. */
async function pathWith(...names: string[]): Promise<string> {
  const dir = join(tmp.dir, `bin-${names.join('-') || 'none'}`);
  await mkdir(dir, { recursive: true });
  for (const n of names) {
    await writeFile(join(dir, n), '#!/bin/sh\n');
    await chmod(join(dir, n), 0o755);
  }
  return dir;
}

describe('rootless network', () => {
  it('prefers slirp4netns, takes pasta alone, and IMGBUILD_ROOTLESS_NETWORK over both', async () => {
    expect(probeRootlessNetwork({ PATH: await pathWith('slirp4netns', 'pasta') })).toBe('slirp4netns');
    expect(probeRootlessNetwork({ PATH: await pathWith('pasta') })).toBe('pasta');
    expect(probeRootlessNetwork({ PATH: await pathWith() })).toBeUndefined();
    expect(probeRootlessNetwork({ PATH: await pathWith('slirp4netns', 'pasta'), IMGBUILD_ROOTLESS_NETWORK: 'pasta' })).toBe('pasta');
    // A file that is not executable is not a helper.
    const dir = await pathWith();
    await writeFile(join(dir, 'slirp4netns'), '');
    expect(probeRootlessNetwork({ PATH: dir })).toBeUndefined();
  });

  it('reads --network rootless: the default and bridge are the helper\'s, bridge with a note; none and host as root has them', async () => {
    const env = { IMGBUILD_ROOTLESS: '1000:1000', PATH: await pathWith('slirp4netns', 'pasta') };
    expect(parseNetworkFlag(undefined, env)).toEqual({ mode: 'slirp4netns', name: 'slirp4netns' });
    expect(parseNetworkFlag('default', env).mode).toBe('slirp4netns');
    const b = parseNetworkFlag('bridge', env);
    expect(b.mode).toBe('slirp4netns');
    expect(b.note).toBe('warning: a rootless container cannot have a bridge: --network bridge is served by slirp4netns (a network namespace of its own with outbound access)');
    expect(parseNetworkFlag('pasta', env)).toEqual({ mode: 'pasta', name: 'pasta' });
    expect(parseNetworkFlag('none', env)).toEqual({ mode: 'none', name: 'none' });
    expect(parseNetworkFlag('host', env)).toEqual({ mode: 'host', name: 'host' });
    expect(() => parseNetworkFlag(undefined, { IMGBUILD_ROOTLESS: '1000:1000', PATH: '/nonexistent' })).toThrow(
      "a rootless container's network needs slirp4netns or pasta, which is not installed: install the slirp4netns (or passt) package, or use --network none or host",
    );
    // As root the helpers' names are refused: the bridge is there.
    expect(() => parseNetworkFlag('slirp4netns', { PATH: env.PATH })).toThrow(/^network slirp4netns is a rootless container's/);
    expect(parseNetworkFlag(undefined, { PATH: env.PATH })).toEqual({ mode: 'bridge', name: 'default' });
  });

  it('refuses a host port below net.ipv4.ip_unprivileged_port_start, and 0 (any port) never', async () => {
    const sysctl = join(tmp.dir, 'ip_unprivileged_port_start');
    await writeFile(sysctl, '1024\n');
    const p = (hostPort: number) => ({ hostIp: '', hostPort, containerPort: 80, protocol: 'tcp' as const });
    expect(() => checkUnprivilegedPorts([p(8080), p(0), p(1024)], sysctl)).not.toThrow();
    expect(() => checkUnprivilegedPorts([p(8080), p(80)], sysctl)).toThrow(
      'a rootless container cannot publish host port 80/tcp: ports below 1024 (net.ipv4.ip_unprivileged_port_start) need root; publish a port >= 1024, or lower the sysctl',
    );
    await writeFile(sysctl, '80\n');
    expect(() => checkUnprivilegedPorts([p(80)], sysctl)).not.toThrow();
  });

  it('gives pasta its ports as -t/-u options, an address only when one is asked for', () => {
    const ports = [
      { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' as const },
      { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, protocol: 'udp' as const },
      { hostIp: '127.0.0.1', hostPort: 8443, containerPort: 443, protocol: 'tcp' as const },
    ];
    expect(pastaPorts(ports, 'tcp')).toBe('8080:80,127.0.0.1/8443:443');
    expect(pastaPorts(ports, 'udp')).toBe('127.0.0.1/5353:53');
    expect(pastaPorts([], 'udp')).toBe('none');
  });

  it('names the helper\'s resolver alone in resolv.conf (the host\'s may be loopback), keeping search and options; --dns still wins', async () => {
    const host = join(tmp.dir, 'resolv.conf');
    await writeFile(host, 'nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n');
    expect(await sandboxResolvConf('private', { resolvConf: host }, '10.0.2.3')).toBe('nameserver 10.0.2.3\nsearch corp.example\noptions edns0\n');
    expect(await containerResolvConf('private', {}, { resolvConf: host }, '169.254.1.1')).toBe('nameserver 169.254.1.1\nsearch corp.example\noptions edns0\n');
    expect(await containerResolvConf('private', { nameservers: ['192.0.2.53'] }, { resolvConf: host }, '10.0.2.3')).toBe('nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n');
  });
});
