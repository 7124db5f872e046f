/**
 * The pieces of RUN's sandbox environment that need no sandbox: `--allow`, `--add-host`,
 * `--shm-size` and the hostname build arg as read, the entitlement check, /etc/hosts as BuildKit
 * writes it, the proxy variables, what enters the cache key, and which output lines are a failed
 * name lookup.
 */
import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../src/builder/frontend/parse.js';
import type { Run } from '../../src/builder/frontend/instructions.js';
import {
  checkEntitlements,
  DEFAULT_RUN_SANDBOX,
  hostsFile,
  isResolutionFailure,
  noNetworkHint,
  parseAddHost,
  parseEntitlements,
  proxyEnv,
  runSandboxOptions,
  sandboxKey,
} from '../../src/builder/dispatch/run-network.js';
import { parseShmSize } from '../../src/host/limits.js';

function runOf(line: string): Run {
  const df = parseDockerfile(`FROM busybox\n${line}\n`, { file: 'Dockerfile' });
  return df.stages[0]!.instructions[0] as Run;
}

describe('build flags of the RUN sandbox', () => {
  it('--allow takes BuildKit entitlement names', () => {
    expect([...parseEntitlements(['network.host', 'security.insecure'])]).toEqual(['network.host', 'security.insecure']);
    expect([...parseEntitlements(['network.host,security.insecure'])].sort()).toEqual(['network.host', 'security.insecure']);
    expect(() => parseEntitlements(['network.bridge'])).toThrow(/unknown entitlement network.bridge/);
    expect(() => parseEntitlements(['device'])).toThrow(expect.objectContaining({ code: 'NOT_IMPLEMENTED' }));
  });

  it('--add-host reads as the Docker CLI reads it', () => {
    expect(parseAddHost('db:10.0.0.5')).toEqual({ host: 'db', ip: '10.0.0.5' });
    expect(parseAddHost('db=10.0.0.5')).toEqual({ host: 'db', ip: '10.0.0.5' });
    expect(parseAddHost('v6:[2001:db8::1]')).toEqual({ host: 'v6', ip: '2001:db8::1' });
    expect(parseAddHost('v6=::1')).toEqual({ host: 'v6', ip: '::1' });
    expect(parseAddHost('v6:2001:db8::1')).toEqual({ host: 'v6', ip: '2001:db8::1' });
    expect(parseAddHost('host.docker.internal:host-gateway')).toEqual({ host: 'host.docker.internal', ip: 'host-gateway' });
    expect(() => parseAddHost('db')).toThrow('bad format for add-host: "db"');
    expect(() => parseAddHost(':1.2.3.4')).toThrow(/bad format/);
    expect(() => parseAddHost('db:1.2.3')).toThrow('invalid IP address in add-host: "1.2.3"');
    expect(() => parseAddHost('db:')).toThrow(/invalid IP address/);
  });

  it('--shm-size is a size with binary units, with no minimum', () => {
    expect(parseShmSize('128m')).toBe(128 * 1024 * 1024);
    expect(parseShmSize('1g')).toBe(1024 ** 3);
    expect(parseShmSize('4096')).toBe(4096);
    expect(parseShmSize('1.5k')).toBe(1536);
    expect(parseShmSize('0')).toBeUndefined();
    expect(() => parseShmSize('-1m')).toThrow(/invalid --shm-size/);
    expect(() => parseShmSize('99999999999999999999g')).toThrow(/8 PiB/);
  });

  it('the hostname comes from BUILDKIT_SANDBOX_HOSTNAME, else is BuildKit\'s', () => {
    expect(runSandboxOptions({ buildArgs: new Map() }).hostname).toBe('buildkitsandbox');
    expect(runSandboxOptions({ buildArgs: new Map([['BUILDKIT_SANDBOX_HOSTNAME', 'builder-1']]) }).hostname).toBe('builder-1');
    expect(() => runSandboxOptions({ buildArgs: new Map([['BUILDKIT_SANDBOX_HOSTNAME', 'a b']]) })).toThrow(/not a host name/);
    const o = runSandboxOptions({ buildArgs: new Map(), ulimits: ['nofile=10:20'], shmSize: '1m', addHosts: ['a:1.2.3.4'] });
    expect(o).toMatchObject({ ulimits: [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }], shmSize: 1048576, extraHosts: [{ host: 'a', ip: '1.2.3.4' }] });
    expect(() => runSandboxOptions({ buildArgs: new Map(), ulimits: ['nofile=20:10'] })).toThrow(/soft limit above hard limit/);
  });
});

describe('entitlements', () => {
  it('RUN --network=host and --security=insecure are refused at the instruction without --allow', () => {
    const none = new Set<never>();
    const host = runOf('RUN --network=host true');
    expect(() => checkEntitlements(host, none, 'default')).toThrow(
      expect.objectContaining({ message: 'Dockerfile:2:1: network.host is not allowed', hint: 'grant it with build --allow network.host' }),
    );
    expect(() => checkEntitlements(host, new Set(['network.host'] as const), 'default')).not.toThrow();
    // build --network host grants network.host, as Docker's does.
    expect(() => checkEntitlements(host, none, 'host')).not.toThrow();
    const insecure = runOf('RUN --security=insecure true');
    expect(() => checkEntitlements(insecure, none, 'host')).toThrow(expect.objectContaining({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('security.insecure is not allowed') }));
    expect(() => checkEntitlements(insecure, new Set(['security.insecure'] as const), 'default')).not.toThrow();
    for (const l of ['RUN true', 'RUN --network=none true', 'RUN --network=default true', 'RUN --security=sandbox true']) {
      expect(() => checkEntitlements(runOf(l), none, 'default')).not.toThrow();
    }
  });
});

describe('the step environment', () => {
  it('/etc/hosts as BuildKit writes it, host-gateway resolved for the step', () => {
    expect(hostsFile('buildkitsandbox', [], undefined)).toBe('127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    const extra = [{ host: 'db', ip: '10.0.0.5' }, { host: 'gw', ip: 'host-gateway' }];
    expect(hostsFile('h', extra, '10.88.0.1')).toBe('127.0.0.1\tlocalhost h\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tdb\n10.88.0.1\tgw\n');
    // Without a network nothing is the host's address.
    expect(hostsFile('h', extra, undefined)).toBe('127.0.0.1\tlocalhost h\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tdb\n');
  });

  it('proxy build args of any case, under both spellings, unless the step has the variable', () => {
    const args = new Map([
      ['HTTP_PROXY', 'http://upper:1'],
      ['http_proxy', 'http://lower:2'],
      ['No_Proxy', 'localhost'],
      ['ALL_PROXY', ''],
      ['OTHER', 'x'],
    ]);
    expect(proxyEnv(args, ['PATH=/bin'])).toEqual([
      'HTTP_PROXY=http://lower:2',
      'http_proxy=http://lower:2',
      'NO_PROXY=localhost',
      'no_proxy=localhost',
    ]);
    // An ARG or ENV of the stage keeps its own value.
    expect(proxyEnv(args, ['http_proxy=http://declared:3'])).toEqual(['HTTP_PROXY=http://lower:2', 'NO_PROXY=localhost', 'no_proxy=localhost']);
  });

  it('the cache key gets the hostname, the extra hosts\' names (not addresses), ulimits and the shm size, and nothing by default', () => {
    expect(sandboxKey(DEFAULT_RUN_SANDBOX)).toEqual({});
    const a = runSandboxOptions({ buildArgs: new Map(), addHosts: ['db:10.0.0.5'] });
    const b = runSandboxOptions({ buildArgs: new Map(), addHosts: ['db:10.0.0.6'] });
    const c = runSandboxOptions({ buildArgs: new Map(), addHosts: ['cache:10.0.0.5'] });
    expect(sandboxKey(a)).toEqual(sandboxKey(b));
    expect(sandboxKey(a)).not.toEqual(sandboxKey(c));
    const d = runSandboxOptions({ buildArgs: new Map([['BUILDKIT_SANDBOX_HOSTNAME', 'x']]), ulimits: ['nproc=5'], shmSize: '2m' });
    expect(sandboxKey(d)).toEqual({ hostname: 'x', ulimits: [{ type: 'RLIMIT_NPROC', soft: 5, hard: 5 }], shmSize: 2097152 });
  });

  it('knows failed name lookups in the words of common tools', () => {
    const failures = [
      "wget: bad address 'deb.debian.org'",
      'curl: (6) Could not resolve host: example.com',
      "Err:1 http://deb.debian.org/debian bookworm InRelease\n  Temporary failure resolving 'deb.debian.org'",
      'socket.gaierror: [Errno -3] Temporary failure in name resolution',
      'ping: example.com: Name or service not known',
      'wget: unable to resolve host address: Name does not resolve',
      'npm ERR! request to https://registry.npmjs.org/x failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org',
      'go: downloading x: dial tcp: lookup proxy.golang.org on 10.0.0.2:53: no such host',
      "fatal: unable to access 'https://github.com/x/': Could not resolve host: github.com",
      'ERROR: https://dl-cdn.alpinelinux.org/alpine/v3.19/main: DNS lookup error',
    ];
    for (const f of failures) expect(isResolutionFailure(f), f).toBe(true);
    for (const ok of ['connected to 10.0.0.1', 'Resolving deb.debian.org... 1.2.3.4', 'exit code: 1', 'addresses resolved']) expect(isResolutionFailure(ok), ok).toBe(false);
    expect(noNetworkHint(true)).toContain('RUN --network=none');
    expect(noNetworkHint(false)).toContain('build --network none');
  });
});
