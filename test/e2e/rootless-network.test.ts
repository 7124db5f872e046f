/**
 * Rootless networking as the unprivileged `imgbuild-ci` user: a container (and a build's RUN step)
 * gets a network namespace of its own served by slirp4netns or pasta, reaches a server this test
 * starts on the host's 127.0.0.1 through the helper's address for the host's loopback, publishes
 * ports with `-p` and `-P`, and its helper process ends with it whatever ends it. Every test checks
 * that no process of its own (found by the HOME only its commands have) is left.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { get } from 'node:http';
import { join } from 'node:path';
import { CLI_EXE, expectOneLineError, okOut } from '../helpers/cli.js';
import { useUserEnv, processesOf, type TestUser, type UserEnv } from '../helpers/rootless.js';

type Helper = 'slirp4netns' | 'pasta';
const installed = (name: string): boolean => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
const HELPERS = (['slirp4netns', 'pasta'] as const).filter(installed);
/** The host's loopback as each helper shows it inside: slirp4netns's 10.0.2.2, pasta's gateway (the host's default gateway). */
function hostLoopback(h: Helper): string {
  if (h === 'slirp4netns') return '10.0.2.2';
  return spawnSync('sh', ['-c', "ip -4 route show default | awk '{print $3; exit}'"], { encoding: 'utf8' }).stdout.trim();
}

let user: TestUser;
let env: UserEnv;
useUserEnv((u, e) => {
  user = u;
  env = e;
});

/** The processes of this test's commands (not zombies): the helper's, its containers', the CLI's. */
function ours(): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const pid of processesOf(user, env.dir)) {
    try {
      if (/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) continue;
      out.push({ pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Waits (up to 5 s) until none of our processes is left, and says what was. */
async function nothingLeft(): Promise<string[]> {
  let left = ours();
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = ours();
  }
  return left.map((p) => p.comm);
}

/** A TCP server on the host's 127.0.0.1 that answers `hello <what it got>` and records each peer. */
async function hostServer(): Promise<{ port: number; peers: string[]; close(): Promise<void> }> {
  const peers: string[] = [];
  const srv: Server = createServer((c) => {
    peers.push(c.remoteAddress ?? '');
    c.once('data', (b) => c.end(`hello ${b.toString().trim()}\n`));
    c.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, peers, close: () => new Promise((r) => srv.close(() => r())) };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** GET http://127.0.0.1:port/path, retried while the server in the container is starting. */
async function httpGet(port: number, path: string): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
          let body = '';
          res.on('data', (b: Buffer) => (body += b.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}

/**
 * What a container sends the host's server, its stdin kept open for a second: Debian 12's pasta
 * (2023-03-09) never passes on the server's FIN once the container has half-closed its side.
 */
const send = (what: string): string => `(echo ${what}; sleep 1)`;

const HTTPD = 'mkdir -p /www && echo served-by-$HOSTNAME > /www/i && exec httpd -f -p 8080 -h /www';

describe.each(HELPERS)('rootless network with %s', (helper) => {
  const net = ['--network', helper];

  it('a container reaches a server on the host\'s 127.0.0.1 through the helper (host-gateway names it); resolv.conf names its resolver; create and start; inspect and ps name the mode', async () => {
    await env.importBusybox();
    const srv = await hostServer();
    try {
      const gw = hostLoopback(helper);
      const r = await env.cli(['run', '--rm', ...net, '--add-host', 'hostside:host-gateway', 'busybox', 'sh', '-c', `${send('from-container')} | nc -w 5 hostside ${srv.port}; cat /etc/resolv.conf; ls /sys/class/net; grep hostside /etc/hosts`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const [reply, ...rest] = r.stdout.trim().split('\n');
      expect(reply).toBe('hello from-container');
      // It arrived from the host's own loopback: the helper connected for the container.
      expect(srv.peers).toEqual(['127.0.0.1']);
      // `host-gateway` names the helper's address for the host's loopback.
      expect(rest).toEqual([helper === 'slirp4netns' ? 'nameserver 10.0.2.3' : 'nameserver 169.254.1.1', 'eth0', 'lo', `${gw}\thostside`]);
    } finally {
      await srv.close();
    }
    // create, then start: the helper is started with the container.
    const c = await env.cli(['create', '--name', 'c1', ...net, 'busybox', 'sleep', '60']);
    expect(c.stderr).toBe('');
    expect(ours().map((p) => p.comm).filter((x) => x !== 'node')).toEqual([]);
    const d = await env.cli(['start', 'c1']);
    expect(d.stderr).toBe('');
    const i = await env.cli(['inspect', '--format', '{{.HostConfig.NetworkMode}} {{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}', 'c1']);
    const [mode, ip, gw] = okOut(i).trim().split(' ');
    expect({ mode, gw }).toEqual({ mode: helper, gw: hostLoopback(helper) });
    expect(ip).toMatch(helper === 'slirp4netns' ? /^10\.0\.2\.100$/ : /^\d+\.\d+\.\d+\.\d+$/);
    expect((await env.cli(['ps', '--format', '{{.Names}} {{.Networks}}'])).stdout).toBe(`c1 ${helper}\n`);
    // The helper runs while the container does, and `rm -f` ends both.
    expect(ours().map((p) => p.comm).some((c) => c.startsWith(helper === 'pasta' ? 'pas' : 'slirp4netns'))).toBe(true);
    expect((await env.cli(['rm', '-f', 'c1'])).code).toBe(0);
    expect(await nothingLeft()).toEqual([]);
  });

  it('-p 127.0.0.1:H:8080 and -P with the image\'s EXPOSE reach a server in the container; stop ends the helper', async () => {
    await env.importBusybox();
    expect((await env.cli(['import', '-c', 'EXPOSE 8080', join(env.dir, 'busybox.tar'), 'web:1'])).code).toBe(0);
    const h = await freePort();
    const a = await env.cli(['run', '-d', '--name', 'web-a', '--hostname', 'web-a', ...net, '-p', `127.0.0.1:${h}:8080`, 'busybox', 'sh', '-c', HTTPD]);
    expect(a.stderr).toBe('');
    expect(await httpGet(h, '/i')).toBe('served-by-web-a\n');
    expect((await env.cli(['port', 'web-a'])).stdout).toBe(`8080/tcp -> 127.0.0.1:${h}\n`);
    const b = await env.cli(['run', '-d', '--name', 'web-b', '--hostname', 'web-b', ...net, '-P', 'web:1', 'sh', '-c', HTTPD]);
    expect(b.stderr).toBe('');
    const port = await env.cli(['port', 'web-b', '8080']);
    const m = /^0\.0\.0\.0:(\d+)$/m.exec(port.stdout);
    expect(m, port.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1024);
    expect(await httpGet(Number(m![1]), '/i')).toBe('served-by-web-b\n');
    expect((await env.cli(['stop', '-t', '1', 'web-a', 'web-b'])).code).toBe(0);
    expect(await nothingLeft()).toEqual([]);
    // The ports are free again.
    const again = createServer();
    await new Promise<void>((r, j) => again.once('error', j).listen(h, '127.0.0.1', r));
    await new Promise((r) => again.close(r));
    expect((await env.cli(['rm', 'web-a', 'web-b'])).code).toBe(0);
  });

  it('a build\'s RUN step reaches the host\'s server', async () => {
    await env.importBusybox();
    const srv = await hostServer();
    try {
      await env.file('Dockerfile', `FROM busybox\nRUN ${send('from-build')} | nc -w 5 ${hostLoopback(helper)} ${srv.port} > /got && ls /sys/class/net > /ifaces\n`);
      const b = await env.cli(['build', '-q', '-t', 'got:1', env.dir], { env: { IMGBUILD_ROOTLESS_NETWORK: helper } });
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
      expect(srv.peers).toEqual(['127.0.0.1']);
      const r = await env.cli(['run', '--rm', '--network', 'none', 'got:1', 'cat', '/got', '/ifaces']);
      expect(r.stdout).toBe('hello from-build\neth0\nlo\n');
    } finally {
      await srv.close();
    }
    expect(await nothingLeft()).toEqual([]);
  });

  it('the helper ends with the container: exiting by itself, kill, and the CLI killed during a foreground run', async () => {
    await env.importBusybox();
    const e = await env.cli(['run', '-d', '--name', 'by-itself', ...net, 'busybox', 'sleep', '1']);
    expect(e.stderr).toBe('');
    expect((await env.cli(['wait', 'by-itself'])).stdout).toBe('0\n');
    expect(await nothingLeft()).toEqual([]);
    expect((await env.cli(['run', '-d', '--name', 'killed', ...net, 'busybox', 'sleep', '60'])).code).toBe(0);
    expect((await env.cli(['kill', 'killed'])).code).toBe(0);
    expect(await nothingLeft()).toEqual([]);
    expect((await env.cli(['rm', 'by-itself', 'killed'])).code).toBe(0);
    // A foreground run whose CLI is killed: the helper goes with the container.
    const wrap = ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--reset-env', 'env', `HOME=${env.dir}`, `XDG_DATA_HOME=${join(env.dir, 'data')}`, `XDG_RUNTIME_DIR=${join(env.dir, 'run')}`, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
    const child = spawn(wrap[0]!, [...wrap.slice(1), CLI_EXE, '--root', env.root, 'run', '--name', 'cli-killed', ...net, 'busybox', 'sleep', '60'], { stdio: 'ignore' });
    const closed = new Promise((r) => child.on('close', r));
    for (let i = 0; i < 200 && !ours().some((p) => p.comm === 'sleep'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(ours().map((p) => p.comm)).toContain('sleep');
    for (const p of ours()) if (p.comm === 'node') process.kill(p.pid, 'SIGKILL');
    await closed;
    expect(await nothingLeft()).toEqual([]);
    expect((await env.cli(['rm', '-f', 'cli-killed'])).code).toBe(0);
  });
});

describe('rootless network modes', () => {
  it('the default is a helper\'s network (bridge names it too, said once); none has only lo; host the host\'s; a host port below 1024 or in use is refused', async () => {
    await env.importBusybox();
    const info = await env.cli(['info', '--format', '{{.DefaultNetwork}}']);
    expect(info.stdout.trim()).toBe(HELPERS[0] ?? 'none');
    const d = await env.cli(['run', '--rm', 'busybox', 'ls', '/sys/class/net']);
    expect(d.stderr).toBe('');
    expect(d.stdout).toBe('eth0\nlo\n');
    const b = await env.cli(['run', '--rm', '--network', 'bridge', 'busybox', 'ls', '/sys/class/net']);
    expect(b.stdout).toBe('eth0\nlo\n');
    expect(b.stderr).toBe(`imgbuild: warning: a rootless container cannot have a bridge: --network bridge is served by ${HELPERS[0]} (a network namespace of its own with outbound access)\n`);
    const n = await env.cli(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']);
    expect(n.stdout).toBe('lo\n');
    const h = await env.cli(['run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net']);
    expect(h.stdout.split('\n')).toEqual(expect.arrayContaining(['lo', ...readdirSync('/sys/class/net').filter((x) => x !== 'lo').slice(0, 1)]));
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    if (start > 80) {
      const p = await env.cli(['run', '--rm', '-p', '80:80', 'busybox', 'true']);
      expect(p.code).toBe(125);
      expectOneLineError(p, new RegExp(`^imgbuild: FAILED_PRECONDITION: a rootless container cannot publish host port 80/tcp: ports below ${start} \\(net\\.ipv4\\.ip_unprivileged_port_start\\) need root`));
    }
    // A host port in use: Docker's words, before the helper is asked.
    const taken = await hostServer();
    try {
      const t = await env.cli(['run', '--rm', '-p', `127.0.0.1:${taken.port}:80`, 'busybox', 'true']);
      expect(t.code).toBe(125);
      expectOneLineError(t, new RegExp(`^imgbuild: FAILED_PRECONDITION: Bind for 127\\.0\\.0\\.1:${taken.port} failed: port is already allocated$`));
    } finally {
      await taken.close();
    }
    expect((await env.cli(['ps', '-a', '-q'])).stdout).toBe('');
    expect(await nothingLeft()).toEqual([]);
  });
});
