/** `-p`, `-P`, `--expose` as Docker reads them, and the ports as `ps` and `inspect` show them. */
import { describe, expect, it } from 'vitest';
import { formatPorts, parseExpose, parsePublish, portBindings, publishedPortsDocument, requestedPortsDocument } from '../../src/containers/publish.js';
import type { PublishedPort } from '../../src/containers/record.js';

const all = (hostPort: number, containerPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PublishedPort[] => [
  { hostIp: '0.0.0.0', hostPort, containerPort, protocol },
  { hostIp: '::', hostPort, containerPort, protocol },
];

describe('-p', () => {
  it('reads every form of go-connections ParsePortSpec', () => {
    expect(parsePublish('8080:80')).toEqual([{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('80')).toEqual([{ hostIp: '', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('127.0.0.1:8080:80/udp')).toEqual([{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'udp' }]);
    expect(parsePublish('127.0.0.1::80')).toEqual([{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('[::1]:8080:80')).toEqual([{ hostIp: '::1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('[::1]::80')[0]!.hostPort).toBe(0);
    expect(parsePublish('0.0.0.0:53:53/UDP')[0]!.protocol).toBe('udp');
  });

  it('expands ranges, and a host range for one container port is where a free port is looked for', () => {
    expect(parsePublish('8000-8002:80-82').map((b) => [b.hostPort, b.containerPort])).toEqual([[8000, 80], [8001, 81], [8002, 82]]);
    expect(parsePublish('80-81').map((b) => [b.hostPort, b.containerPort])).toEqual([[0, 80], [0, 81]]);
    expect(parsePublish('8000-8010:80')).toEqual([{ hostIp: '', hostPort: 8000, hostPortEnd: 8010, containerPort: 80, protocol: 'tcp' }]);
    expect(() => parsePublish('8000-8001:80-82')).toThrow('invalid ranges specified for container and host Ports: 80-82 and 8000-8001');
  });

  it('refuses what Docker refuses, naming the part', () => {
    expect(() => parsePublish('8080:abc')).toThrow('invalid containerPort: abc');
    expect(() => parsePublish('x:80')).toThrow('invalid hostPort: x');
    expect(() => parsePublish('70000:80')).toThrow('invalid hostPort: 70000');
    expect(() => parsePublish('0')).toThrow('invalid containerPort: 0');
    expect(() => parsePublish('80/icmp')).toThrow('invalid proto: icmp');
    expect(() => parsePublish('80/sctp')).toThrow(/sctp/);
    expect(() => parsePublish('1.2.3:80:80')).toThrow('invalid IP address: 1.2.3');
    expect(() => parsePublish('1:2:3:4')).toThrow(/invalid port specification/);
    expect(() => parsePublish('8080:')).toThrow(/invalid port specification/);
  });

  it('-P adds a random port on every address for each exposed port no -p names', () => {
    const b = portBindings(['8080:80'], true, ['80/tcp', '53/udp', '443/tcp']);
    expect(b.map((x) => `${x.hostIp}|${x.hostPort}|${x.containerPort}/${x.protocol}`)).toEqual(['|8080|80/tcp', '|0|53/udp', '|0|443/tcp']);
    expect(portBindings([], false, ['80/tcp'])).toEqual([]);
    expect(parseExpose('7000-7002/udp')).toEqual(['7000/udp', '7001/udp', '7002/udp']);
  });
});

describe('ports as ps and inspect show them', () => {
  it('prints the PORTS column as docker 20.10', () => {
    expect(formatPorts(all(8080, 80), [])).toBe('0.0.0.0:8080->80/tcp, :::8080->80/tcp');
    // Same numbers fold into ranges; exposed-only ports are listed bare.
    expect(formatPorts([8000, 8001, 8002].flatMap((p) => all(p, p)), ['9000/tcp'])).toBe('0.0.0.0:8000-8002->8000-8002/tcp, :::8000-8002->8000-8002/tcp, 9000/tcp');
    expect(formatPorts([{ hostIp: '127.0.0.1', hostPort: 5000, containerPort: 53, protocol: 'udp' }], ['53/udp', '80/tcp'])).toBe('80/tcp, 127.0.0.1:5000->53/udp');
    expect(formatPorts([], [])).toBe('');
  });

  it('HostConfig.PortBindings keeps the request, NetworkSettings.Ports where it listens', () => {
    const req = [...parsePublish('8080:80'), ...parsePublish('127.0.0.1::81')];
    expect(requestedPortsDocument(req)).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '8080' }], '81/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    expect(publishedPortsDocument(all(8080, 80), ['80/tcp', '443/tcp'])).toEqual({
      '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '::', HostPort: '8080' }],
      '443/tcp': null,
    });
  });
});
