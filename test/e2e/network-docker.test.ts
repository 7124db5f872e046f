/**
 * Networking as Docker users expect it, on real containers: the bridge by default, published
 * ports on every host address (TCP and UDP, ranges, random ports, -P), DNS from the host's
 * configuration or --dns, --add-host, --hostname/--domainname, container:NAME, --pid/--ipc host,
 * and nothing left after rm -f.
 *
 * Traffic goes only to 127.0.0.1/::1, to the containers on the bridge, and to a namespace and veth
 * pair this file makes (10.214.N.0/30): its host end carries the test's DNS server and is the
 * "other address" published ports must answer on; the client there runs with `ip netns exec`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { setupEnv, leftovers, NOTHING, waitFor, type Env } from './containers-env.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { REPO_ROOT, okOut } from '../helpers/cli.js';
import { OciStore } from '../../src/store/store.js';
import { runContainer } from '../../src/containers/run.js';
import { findPortProxies } from '../../src/containers/ports.js';

let env: Env;
let dns: DnsServer;
const n = 100 + (process.pid % 150);
const NS = `ibt-net-${process.pid}`;
const VETH = `ibtn${process.pid}`.slice(0, 15);
const HOST_SIDE = `10.214.${n}.1`;
const NS_SIDE = `10.214.${n}.2`;
const TEST_INIT_DIR = join(REPO_ROOT, 'native', 'build');

const ip = (args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

beforeAll(async () => {
  env = await setupEnv();
  ip(['netns', 'add', NS]);
  ip(['link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS]);
  ip(['addr', 'add', `${HOST_SIDE}/30`, 'dev', VETH]);
  ip(['link', 'set', VETH, 'up']);
  ip(['-n', NS, 'addr', 'add', `${NS_SIDE}/30`, 'dev', 'eth0']);
  ip(['-n', NS, 'link', 'set', 'eth0', 'up']);
  ip(['-n', NS, 'link', 'set', 'lo', 'up']);
  dns = await startDnsServer(HOST_SIDE, { 'web.net.test': '10.214.0.99', 'db.corp.test': '10.214.0.98' });
}, 60_000);

afterAll(async () => {
  await dns?.close();
  try {
    ip(['netns', 'del', NS]);
  } catch {
    // not made
  }
  await env?.cleanup();
});

interface Inspected {
  Id: string;
  HostConfig: { NetworkMode: string; PortBindings: Record<string, { HostIp: string; HostPort: string }[]>; PublishAllPorts: boolean };
  NetworkSettings: { IPAddress: string; Gateway: string; MacAddress: string; Ports: Record<string, { HostIp: string; HostPort: string }[] | null> };
}
const inspect = async (name: string): Promise<Inspected> => (JSON.parse(okOut(await env.cli(['inspect', name]))) as Inspected[])[0]!;

/** One line from a TCP server at host:port (busybox's httpd answers a GET). */
function httpGet(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let data = '';
    s.setTimeout(3000, () => s.destroy());
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (b: Buffer) => (data += b.toString()));
    s.on('close', () => resolve(data ? data.split('\r\n\r\n')[1] : undefined));
    s.on('error', () => resolve(undefined));
  });
}

/** The same GET from inside the test's namespace, to the host's address on its veth. */
function httpGetFromNetns(port: number): string {
  const script = `const s=require('net').connect(${port},'${HOST_SIDE}');let d='';s.on('connect',()=>s.write('GET / HTTP/1.0\\r\\n\\r\\n'));s.on('data',b=>d+=b);s.on('close',()=>process.stdout.write(d.split('\\r\\n\\r\\n')[1]||''));s.on('error',e=>{process.stdout.write('ERR '+e.code);});`;
  return execFileSync('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 });
}

/** A datagram to host:port, resent until the echo answers (UDP may drop the first ones). */
function udpEcho(host: string, port: number, ms = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const iv = setInterval(() => s.send('ping', port, host), 100);
    const done = (v: string | undefined): void => {
      clearInterval(iv);
      clearTimeout(t);
      s.close();
      resolve(v);
    };
    const t = setTimeout(() => done(undefined), ms);
    s.on('message', (m) => done(m.toString()));
    s.send('ping', port, host);
  });
}

/** Whether a TCP (or UDP) port can be bound on every address right now. */
function canBind(port: number, udp = false): Promise<boolean> {
  return new Promise((resolve) => {
    if (udp) {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, () => u.close(() => resolve(true)));
      return;
    }
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, () => srv.close(() => resolve(true)));
  });
}

/** The first of three consecutive free ports from `from` on. */
async function freeRun(from: number): Promise<number> {
  for (let p = from; p < 32000; p += 3) if ((await canBind(p)) && (await canBind(p + 1)) && (await canBind(p + 2, true))) return p;
  throw new Error('no free ports');
}

const WEB = ['sh', '-c', 'mkdir -p /www && echo "$0" > /www/index.html && exec httpd -f -p "$1" -h /www'];

describe('run networking as Docker has it', () => {
  it('puts a container on the bridge by default, with eth0, a route, its MAC from its address and the host\'s DNS', async () => {
    const r = await env.cli(['run', '--name', 'plain', 'busybox', 'sh', '-c', 'ls /sys/class/net; ip route | grep ^default; cat /sys/class/net/eth0/address; grep -c nameserver /etc/resolv.conf']);
    expect(r.code).toBe(0);
    const c = await inspect('plain');
    expect(c.HostConfig.NetworkMode).toBe('default');
    const [if1, if2, route, mac, nameservers] = r.stdout.trim().split('\n');
    expect([if1, if2, route?.trim(), mac]).toEqual(['eth0', 'lo', `default via ${c.NetworkSettings.Gateway} dev eth0`, c.NetworkSettings.MacAddress]);
    expect(c.NetworkSettings.MacAddress).toBe(`02:42:${c.NetworkSettings.IPAddress.split('.').map((b) => Number(b).toString(16).padStart(2, '0')).join(':')}`);
    expect(Number(nameservers)).toBeGreaterThan(0);
    await env.cli(['rm', '-f', 'plain']);
    expect(leftovers(c.Id)).toEqual(NOTHING);
    // runc does not set eth0 up as the built-in sandbox does: the namespace's side is made for it.
    const runc = await env.cli(['run', '--rm', '--runtime', 'runc', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; ip route | grep ^default']);
    expect(runc.stdout).toMatch(/inet \d+\.\d+\.\d+\.\d+\/\d+ .*\ndefault via \d+\.\d+\.\d+\.\d+ dev eth0/);
  });

  it('publishes -p on every address, ranges, random ports and -P; ps and inspect show them as docker does', async () => {
    const started = await env.cli([
      'run', '-d', '--name', 'web', '--expose', '7001', '--expose', '7002',
      '-p', '0:8080', '-p', '8080', '-p', '127.0.0.1::8080', '-P',
      'busybox', 'sh', '-c', 'mkdir -p /www && echo from-web > /www/index.html && httpd -p 7001 -h /www && httpd -p 7002 -h /www && exec httpd -f -p 8080 -h /www',
    ]);
    expect(started.stderr).toBe('');
    const c = await inspect('web');
    expect(c.HostConfig.PublishAllPorts).toBe(true);
    expect(c.HostConfig.PortBindings['8080/tcp']).toEqual([{ HostIp: '', HostPort: '' }, { HostIp: '', HostPort: '' }, { HostIp: '127.0.0.1', HostPort: '' }]);
    const ports = c.NetworkSettings.Ports;
    expect(Object.keys(ports).sort()).toEqual(['7001/tcp', '7002/tcp', '8080/tcp']);
    // Each all-address binding listens on 0.0.0.0 and :: on one random port.
    const web = ports['8080/tcp']!;
    expect(web.map((p) => p.HostIp)).toEqual(['0.0.0.0', '::', '0.0.0.0', '::', '127.0.0.1']);
    expect(web[0]!.HostPort).toBe(web[1]!.HostPort);
    const [p1, p2, p3] = [Number(web[0]!.HostPort), Number(web[2]!.HostPort), Number(web[4]!.HostPort)];
    expect(new Set([p1, p2, p3]).size).toBe(3);
    for (const p of [p1, p2, p3]) expect(p).toBeGreaterThan(1023);
    const [e1, e2] = [Number(ports['7001/tcp']![0]!.HostPort), Number(ports['7002/tcp']![0]!.HostPort)];

    expect(await waitFor(() => httpGet('127.0.0.1', p1))).toBe('from-web\n');
    expect(await httpGet('::1', p1)).toBe('from-web\n');
    expect(await httpGet('127.0.0.1', p3)).toBe('from-web\n');
    expect(await httpGet(c.NetworkSettings.Gateway, p2)).toBe('from-web\n');
    // From another namespace, to the host's address on a link the test made: all addresses.
    expect(httpGetFromNetns(p1)).toBe('from-web\n');
    // Bound to 127.0.0.1 only: refused on the other address.
    expect(httpGetFromNetns(p3)).toMatch(/^ERR ECONNREFUSED/);
    // -P: every exposed port.
    expect(await waitFor(() => httpGet('127.0.0.1', e1))).toBe('from-web\n');
    expect(await httpGet('127.0.0.1', e2)).toBe('from-web\n');

    const ps = (await env.cli(['ps'])).stdout;
    expect(ps).toContain(`0.0.0.0:${e1}->7001/tcp`);
    expect(ps).toContain(`:::${p1}->8080/tcp`);
    expect(ps).toContain(`127.0.0.1:${p3}->8080/tcp`);

    expect((await env.cli(['rm', '-f', 'web'])).code).toBe(0);
    expect(leftovers(c.Id)).toEqual(NOTHING);
    expect((await findPortProxies()).filter((p) => p.id === c.Id)).toEqual([]);
    expect(await httpGet('127.0.0.1', p1)).toBeUndefined();
  });

  it('publishes fixed ports and port ranges, and UDP', async () => {
    // Three consecutive ports below the ephemeral range that nothing holds now (TCP, TCP, UDP).
    const base = await freeRun(20000 + (process.pid % 1000) * 10);
    const started = await env.cli([
      'run', '-d', '--name', 'rng', '-v', `${TEST_INIT_DIR}:/opt/t:ro`,
      '-p', `${base}-${base + 1}:7001-7002`, '-p', `${base + 2}:53/udp`,
      'busybox', 'sh', '-c', 'mkdir -p /www && echo ranged > /www/index.html && httpd -p 7001 -h /www && httpd -p 7002 -h /www && exec /opt/t/test-init udp-echo 53',
    ]);
    expect(started.code).toBe(0);
    const c = await inspect('rng');
    expect(c.NetworkSettings.Ports['7002/tcp']).toEqual([{ HostIp: '0.0.0.0', HostPort: String(base + 1) }, { HostIp: '::', HostPort: String(base + 1) }]);
    expect(await waitFor(() => httpGet('127.0.0.1', base))).toBe('ranged\n');
    expect(await httpGet('127.0.0.1', base + 1)).toBe('ranged\n');
    expect(await udpEcho('127.0.0.1', base + 2)).toBe('echo:ping');
    expect(await udpEcho('::1', base + 2)).toBe('echo:ping');
    expect((await env.cli(['ps'])).stdout).toContain(`0.0.0.0:${base + 2}->53/udp`);
    // A host port in use: Docker's words, status 125, and the container stays created.
    const taken = await env.cli(['run', '-d', '--name', 'taken', '-p', `${base}:80`, 'busybox', 'true']);
    expect([taken.code, taken.stderr]).toEqual([125, `imgbuild: UNAVAILABLE: publishing ports: Bind for 0.0.0.0:${base} failed: port is already allocated\n`]);
    const left = await inspect('taken');
    await env.cli(['rm', '-f', 'rng', 'taken']);
    expect(leftovers(c.Id)).toEqual(NOTHING);
    expect(leftovers(left.Id)).toEqual(NOTHING);
    expect(await udpEcho('127.0.0.1', base + 2, 1000)).toBeUndefined();
  });

  it('resolves names through --dns, and through the host\'s upstream when its resolver is a loopback stub', async () => {
    const r = await env.cli(['run', '--rm', '--dns', HOST_SIDE, '--dns-search', 'net.test', '--dns-option', 'ndots:1', 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; nslookup web 2>&1']);
    expect(r.stdout).toContain(`nameserver ${HOST_SIDE}\nsearch net.test\noptions ndots:1\n`);
    expect(r.stdout).toMatch(/Address:\s+10\.214\.0\.99/);
    expect(dns.questions).toContain('web.net.test A');

    // The host's resolv.conf names systemd-resolved's stub only: the upstream list is used, as Docker does.
    const stub = join(env.dir, 'resolv.conf');
    const upstream = join(env.dir, 'upstream.conf');
    await writeFile(stub, 'nameserver 127.0.0.53\nsearch corp.test\n');
    await writeFile(upstream, `nameserver ${HOST_SIDE}\nsearch corp.test\n`);
    const chunks: Buffer[] = [];
    const { Writable } = await import('node:stream');
    const out = new Writable({ write: (c: Buffer, _e, cb) => void (chunks.push(c), cb()) });
    const store = await OciStore.open(env.root);
    const res = await runContainer(store, {
      image: 'busybox',
      cmd: ['sh', '-c', 'cat /etc/resolv.conf; nslookup db 2>&1'],
      autoRemove: true,
      hostDns: { resolvConf: stub, systemdResolvConf: upstream },
      io: { stdout: out, stderr: out },
    });
    const text = Buffer.concat(chunks).toString();
    expect(res.status?.exitCode).toBe(0);
    expect(text).toContain(`nameserver ${HOST_SIDE}\nsearch corp.test\n`);
    expect(text).not.toContain('127.0.0.53');
    expect(text).toMatch(/Address:\s+10\.214\.0\.98/);
  });

  it('writes --add-host (host-gateway too), --hostname and --domainname as Docker does', async () => {
    const r = await env.cli(['run', '--name', 'named', '--hostname', 'box', '--domainname', 'example.org', '--add-host', 'db:10.1.2.3', '--add-host', 'host.docker.internal:host-gateway',
      'busybox', 'sh', '-c', 'hostname; cat /proc/sys/kernel/domainname; tail -3 /etc/hosts']);
    const c = await inspect('named');
    expect(r.stdout).toBe(`box\nexample.org\n10.1.2.3\tdb\n${c.NetworkSettings.Gateway}\thost.docker.internal\n${c.NetworkSettings.IPAddress}\tbox.example.org box\n`);
    await env.cli(['rm', '-f', 'named']);
  });

  it('container:NAME joins that container\'s network (and --pid/--ipc its namespaces); it must be running, as Docker says', async () => {
    await env.cli(['run', '-d', '--name', 'srv', '--hostname', 'srvhost', 'busybox', ...WEB, 'only-on-loopback', '127.0.0.1:8080']);
    const srv = await inspect('srv');
    const r = await waitFor(async () => {
      const x = await env.cli(['run', '--rm', '--network', 'container:srv', 'busybox', 'sh', '-c', 'wget -qO- http://127.0.0.1:8080/ && hostname && ip -4 -o addr show eth0']);
      return x.code === 0 ? x : undefined;
    });
    expect(r.stdout).toContain('only-on-loopback\nsrvhost\n');
    expect(r.stdout).toContain(`inet ${srv.NetworkSettings.IPAddress}/`);
    // --pid and --ipc container:srv: its processes and its ipc namespace.
    const shared = await env.cli(['run', '--rm', '--pid', 'container:srv', '--ipc', 'container:srv', 'busybox', 'sh', '-c', 'ps -o args | grep -c "^httpd -f"; readlink /proc/self/ns/ipc']);
    expect(shared.stdout).toBe(`1\n${(await env.cli(['exec', 'srv', 'readlink', '/proc/self/ns/ipc'])).stdout}`);
    const conflict = await env.cli(['run', '--rm', '--network', 'container:srv', '-p', '80', 'busybox', 'true']);
    expect([conflict.code, conflict.stderr.trim()]).toEqual([125, 'imgbuild: INVALID_ARGUMENT: conflicting options: port publishing and the container type network mode']);
    await env.cli(['kill', 'srv']);
    await waitFor(async () => ((await env.cli(['ps', '-q'])).stdout.includes(srv.Id.slice(0, 12)) ? undefined : true));
    const stopped = await env.cli(['run', '--rm', '--network', 'container:srv', 'busybox', 'true']);
    expect([stopped.code, stopped.stderr.trim()]).toEqual([125, 'imgbuild: FAILED_PRECONDITION: cannot join network of a non running container: srv']);
    expect((await env.cli(['run', '--rm', '--pid', 'container:srv', 'busybox', 'true'])).stderr.trim()).toBe('imgbuild: FAILED_PRECONDITION: cannot join PID of a non running container: srv');
    const missing = await env.cli(['run', '--rm', '--network', 'container:nosuch', 'busybox', 'true']);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('no such container: nosuch');
    await env.cli(['rm', '-f', 'srv']);
    expect(leftovers(srv.Id)).toEqual(NOTHING);
  });

  it('--network host, --pid host and --ipc host share the host\'s namespaces', async () => {
    const r = await env.cli(['run', '--rm', '--network', 'host', '--pid', 'host', '--ipc', 'host', 'busybox', 'sh', '-c', 'hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; readlink /proc/self/ns/net']);
    expect(r.stdout).toBe(`${osHostname()}\n${readlinkSync('/proc/self/ns/pid')}\n${readlinkSync('/proc/self/ns/ipc')}\n${readlinkSync('/proc/self/ns/net')}\n`);
    const own = await env.cli(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ls /sys/class/net; readlink /proc/self/ns/pid']);
    expect(own.stdout).not.toContain(readlinkSync('/proc/self/ns/pid'));
    expect(own.stdout.startsWith('lo\n')).toBe(true);
  });
});
