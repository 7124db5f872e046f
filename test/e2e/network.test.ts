/**
 * Networking modes for real: none (lo only), host, bridge (addresses, routes, container to
 * container over the bridge), published ports on 127.0.0.1, and teardown that leaves nothing.
 * Traffic only ever goes to 127.0.0.1 or to the namespaces these tests create.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { setupEnv, freePort, leftovers, NOTHING, waitFor, type Env } from './containers-env.js';
import { listNetworkObjects, removeIdleBridge, setupNetwork, teardownNetwork } from '../../src/host/network.js';
import { makeTmp } from '../helpers/tmp.js';
import { okOut } from '../helpers/cli.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

interface Inspected { Id: string; NetworkSettings: { IPAddress: string; Gateway: string; SandboxKey: string } }
const inspect = async (name: string): Promise<Inspected> => (JSON.parse(okOut(await env.cli(['inspect', name]))) as Inspected[])[0]!;

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('network', () => {
  it('none: a namespace of its own with only loopback, up', async () => {
    const r = await env.cli(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/operstate; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo-ok']);
    expect(r.stdout).toBe('lo\nunknown\nlo-ok\n');
  });

  it('host: the host\'s interfaces, no network namespace', async () => {
    // Other test files add and remove veths and bridges meanwhile: compare only the interfaces
    // that exist both before and after the run (lo and the host's own devices at least).
    const { readdirSync } = await import('node:fs');
    const before = readdirSync('/sys/class/net');
    const r = await env.cli(['run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net']);
    const after = new Set(readdirSync('/sys/class/net'));
    const stable = before.filter((i) => after.has(i));
    expect(stable).toContain('lo');
    expect(stable.length).toBeGreaterThan(1);
    const seen = r.stdout.trim().split('\n');
    for (const i of stable) expect(seen).toContain(i);
    expect((await env.cli(['run', '--rm', '--network', 'host', 'busybox', 'readlink', '/proc/self/ns/net'])).stdout.trim()).toBe(
      (await import('node:fs')).readlinkSync('/proc/self/ns/net'),
    );
  });

  it('bridge: eth0 with an address, a default route, and containers reach each other', async () => {
    await env.cli(['run', '-d', '--name', 'n1', '--network', 'bridge', 'busybox', 'sleep', '300']);
    await env.cli(['run', '-d', '--name', 'n2', '--network', 'bridge', 'busybox', 'sleep', '300']);
    const a = await inspect('n1');
    const b = await inspect('n2');
    expect(a.NetworkSettings.IPAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(a.NetworkSettings.IPAddress).not.toBe(b.NetworkSettings.IPAddress);
    expect(existsSync(a.NetworkSettings.SandboxKey)).toBe(true);
    const addr = await env.cli(['exec', 'n1', 'sh', '-c', 'ip -4 -o addr show eth0; ip route']);
    expect(addr.stdout).toContain(`inet ${a.NetworkSettings.IPAddress}/`);
    expect(addr.stdout).toContain(`default via ${a.NetworkSettings.Gateway} dev eth0`);
    expect((await env.cli(['exec', 'n1', 'ping', '-c1', '-W2', b.NetworkSettings.IPAddress])).code).toBe(0);
    // Outbound NAT exists only where the host itself has a default route (checked, never used).
    const { execFileSync } = await import('node:child_process');
    const hasDefault = execFileSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }).trim() !== '';
    const nat = execFileSync('iptables', ['-w', '5', '-t', 'nat', '-S', 'POSTROUTING'], { encoding: 'utf8' });
    expect(/--comment imgbuild -j MASQUERADE/.test(nat)).toBe(hasDefault);
    expect((await env.cli(['exec', 'n1', 'cat', '/etc/hosts'])).stdout).toMatch(new RegExp(`${a.NetworkSettings.IPAddress.replace(/\./g, '\\.')}\\s`));
    await env.cli(['rm', '-f', 'n1', 'n2']);
    expect(leftovers(a.Id)).toEqual(NOTHING);
    expect(leftovers(b.Id)).toEqual(NOTHING);
  });

  it('concurrent bridge containers get distinct addresses from the shared lease table', async () => {
    const names = ['c1', 'c2', 'c3', 'c4'];
    const started = await Promise.all(names.map((n) => env.cli(['run', '-d', '--name', n, '--network', 'bridge', 'busybox', 'sleep', '300'])));
    expect(started.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    const ips = await Promise.all(names.map(async (n) => (await inspect(n)).NetworkSettings.IPAddress));
    expect(new Set(ips).size).toBe(4);
    const ids = started.map((r) => r.stdout.trim());
    expect((await env.cli(['rm', '-f', ...names])).code).toBe(0);
    for (const id of ids) expect(leftovers(id)).toEqual(NOTHING);
  });

  it('-p 127.0.0.1:H:C publishes a container port on 127.0.0.1 and rm takes it down', async () => {
    const port = await freePort();
    await env.cli(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:8080`, 'busybox', 'sh', '-c',
      'mkdir /www && echo served-from-container > /www/index.html && exec httpd -f -p 8080 -h /www']);
    const c = await inspect('web');
    const body = await waitFor(async () => httpGet(port).catch(() => undefined), 10_000);
    expect(body).toBe('served-from-container\n');
    expect((await env.cli(['ps'])).stdout).toContain(`127.0.0.1:${port}->8080/tcp`);
    await env.cli(['rm', '-f', 'web']);
    await expect(waitFor(async () => httpGet(port).then(() => undefined, () => true), 5_000)).resolves.toBe(true);
    expect(leftovers(c.Id)).toEqual(NOTHING);
  });

  it('refuses -p without a network and a malformed -p', async () => {
    expect((await env.cli(['run', '--rm', '--network', 'none', '-p', '1234:80', 'busybox', 'true'])).code).toBe(125);
    expect((await env.cli(['run', '--rm', '-p', '1234:http', 'busybox', 'true'])).stderr).toBe('imgbuild: INVALID_ARGUMENT: invalid containerPort: http\n');
  });

  it('setupNetwork/teardownNetwork leave no netns, veth, lease or rule behind', async () => {
    const tmp = await makeTmp();
    try {
      const id = 'f0'.repeat(32);
      const before = await listNetworkObjects();
      // A bridge and subnet of its own: the shared imgbuild0 belongs to the global lease table.
      const o = { stateDir: tmp.dir, bridge: `ibt${process.pid}`.slice(0, 15), subnets: ['10.211.7.0/24'] };
      const s = await setupNetwork(id, 'bridge', o);
      expect(s.ip).toBe('10.211.7.2');
      expect(existsSync(`/sys/class/net/${o.bridge}`)).toBe(true);
      expect(existsSync(s.netnsPath!)).toBe(true);
      expect(existsSync(`/sys/class/net/${s.hostVeth}`)).toBe(true);
      expect(JSON.parse(readFileSync(`${tmp.dir}/leases.json`, 'utf8')).leases[id]).toBe(s.ip);
      await teardownNetwork(id, s, o);
      await teardownNetwork(id, s, o); // idempotent
      // The bridge stays, as docker0 does, until prune finds it idle.
      expect(existsSync(`/sys/class/net/${o.bridge}`)).toBe(true);
      expect(await removeIdleBridge(o)).toBe(true);
      expect(existsSync(`/sys/class/net/${o.bridge}`)).toBe(false);
      expect(existsSync(s.netnsPath!)).toBe(false);
      expect(existsSync(`/sys/class/net/${s.hostVeth}`)).toBe(false);
      const after = await listNetworkObjects();
      expect(after.netns.filter((n) => n.includes(id))).toEqual([]);
      // Only its own links: builds in other test files make and remove veths meanwhile.
      expect(after.links.filter((l) => !before.links.includes(l) && (l === o.bridge || l === s.hostVeth))).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });
});
