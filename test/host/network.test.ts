/** Address arithmetic and subnet choice of the bridge network (pure). */
import { describe, expect, it } from 'vitest';
import { cidrsOverlap, hostVethName, netnsName, parseCidr, pickSubnet } from '../../src/host/network.js';

describe('network helpers', () => {
  it('parses CIDRs and detects overlaps', () => {
    expect(parseCidr('10.88.3.4/16')).toEqual({ base: (10 << 24 | 88 << 16) >>> 0, prefix: 16 });
    expect(cidrsOverlap('10.88.0.0/16', '10.88.5.0/24')).toBe(true);
    expect(cidrsOverlap('10.88.0.0/16', '10.0.0.0/8')).toBe(true);
    expect(cidrsOverlap('10.88.0.0/16', '10.89.0.0/16')).toBe(false);
    expect(cidrsOverlap('192.168.1.0/24', '192.168.1.77/32')).toBe(true);
    expect(() => parseCidr('10.0.0.300/8')).toThrow(/invalid IPv4/);
  });

  it('picks the first subnet that no host route overlaps, ignoring the default route and its own bridge', () => {
    const cands = ['10.88.0.0/16', '10.89.0.0/16', '172.29.0.0/16'];
    expect(pickSubnet([{ dst: 'default', dev: 'eth0' }, { dst: '192.0.2.0/24', dev: 'eth0' }], cands, 'imgbuild0')).toBe('10.88.0.0/16');
    expect(pickSubnet([{ dst: '10.88.0.0/20', dev: 'wg0' }], cands, 'imgbuild0')).toBe('10.89.0.0/16');
    expect(pickSubnet([{ dst: '10.0.0.0/8', dev: 'vpn' }], cands, 'imgbuild0')).toBe('172.29.0.0/16');
    expect(pickSubnet([{ dst: '10.88.0.0/16', dev: 'imgbuild0' }], cands, 'imgbuild0')).toBe('10.88.0.0/16');
    expect(() => pickSubnet([{ dst: '0.0.0.0/1', dev: 'x' }, { dst: '128.0.0.0/1', dev: 'x' }], cands, 'imgbuild0')).toThrow(/overlaps a host route/);
  });

  it('names fit the kernel limits', () => {
    const id = 'a'.repeat(64);
    expect(hostVethName(id).length).toBeLessThanOrEqual(15);
    expect(netnsName(id)).toBe(`imgbuild-${id}`);
  });
});
