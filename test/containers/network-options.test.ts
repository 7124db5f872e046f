/** `--network`, the conflicts moby refuses, `--pid`/`--ipc`, `--mac-address` and /etc/hosts. */
import { describe, expect, it } from 'vitest';
import { checkNetworkConflicts, hostsFile, parseMacAddress, parseNamespaceMode, parseNetworkFlag } from '../../src/containers/network-options.js';
import { macOf } from '../../src/host/network.js';

const none = { dns: [], addHosts: [], publish: false, expose: false };

describe('run network options', () => {
  it('defaults to the bridge, as Docker, and knows its other modes', () => {
    expect(parseNetworkFlag(undefined)).toEqual({ mode: 'bridge', name: 'default' });
    expect(parseNetworkFlag('bridge').mode).toBe('bridge');
    expect(parseNetworkFlag('host').mode).toBe('host');
    expect(parseNetworkFlag('container:web')).toEqual({ mode: 'container', container: 'web', name: 'container:web' });
    expect(() => parseNetworkFlag('container:')).toThrow('invalid network mode: invalid container format container:<name|id>');
    expect(() => parseNetworkFlag('mynet')).toThrow(/^network mynet not found/);
  });

  it('refuses what moby refuses with another container\'s network', () => {
    const c = parseNetworkFlag('container:web');
    expect(() => checkNetworkConflicts(c, { ...none, hostname: 'h' })).toThrow('conflicting options: hostname and the network mode');
    expect(() => checkNetworkConflicts(c, { ...none, dns: ['1.1.1.1'] })).toThrow('conflicting options: dns and the network mode');
    expect(() => checkNetworkConflicts(c, { ...none, addHosts: ['a:1.2.3.4'] })).toThrow('conflicting options: custom host-to-IP mapping and the network mode');
    expect(() => checkNetworkConflicts(c, { ...none, publish: true })).toThrow('conflicting options: port publishing and the container type network mode');
    expect(() => checkNetworkConflicts(parseNetworkFlag('host'), { ...none, macAddress: '02:00:00:00:00:01' })).toThrow('conflicting options: mac-address and the network mode');
    expect(() => checkNetworkConflicts(parseNetworkFlag(undefined), { ...none, hostname: 'h', dns: ['1.1.1.1'], publish: true })).not.toThrow();
  });

  it('reads --pid/--ipc and --mac-address', () => {
    expect(parseNamespaceMode('--pid', 'host')).toBe('host');
    expect(parseNamespaceMode('--ipc', undefined)).toBe('');
    expect(() => parseNamespaceMode('--pid', 'bogus')).toThrow('--pid: invalid PID mode');
    expect(parseNamespaceMode('--ipc', 'container:db')).toBe('container:db');
    expect(() => parseNamespaceMode('--ipc', 'container:')).toThrow('--ipc: invalid IPC mode');
    expect(parseMacAddress('02:AA:bb:00:11:22')).toBe('02:aa:bb:00:11:22');
    expect(() => parseMacAddress('01:00:00:00:00:00')).toThrow(/multicast/);
    expect(() => parseMacAddress('zz')).toThrow(/not a valid mac address/);
    expect(macOf('172.17.0.2')).toBe('02:42:ac:11:00:02');
  });

  it('writes /etc/hosts as Docker: defaults, --add-host lines, then the container itself', () => {
    const text = hostsFile('web', { ip: '10.89.0.5', domainname: 'example.org', extraHosts: ['db:10.0.0.9', 'gw:host-gateway'], gateway: '10.89.0.1' });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('127.0.0.1\tlocalhost');
    expect(lines.slice(-3)).toEqual(['10.0.0.9\tdb', '10.89.0.1\tgw', '10.89.0.5\tweb.example.org web']);
    expect(hostsFile('h', { hostHosts: '127.0.0.1 localhost\n', extraHosts: ['x:1.2.3.4'] })).toBe('127.0.0.1 localhost\n1.2.3.4\tx\n');
  });
});
