/**
 * The port proxy program: `port-proxy <containerIp> <bindings> <netnsPath>`, where bindings are
 * `proto/hostIp/hostPort/hostPortEnd/containerPort` joined by commas (hostIp empty: 0.0.0.0 and
 * `::`; hostPort 0: a free port). It binds every address first, prints where it listens as one
 * JSON line on stdout, then relays TCP connections and UDP datagrams to the container, and stops
 * when the container's network namespace file disappears (rm) or on SIGTERM.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';

interface Binding {
  proto: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  hostPortEnd: number;
  ctrPort: number;
}
interface Listening {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** How long a UDP "connection" (a client address) is kept without traffic (docker-proxy: 90 s). */
const UDP_IDLE_MS = 90_000;

const [containerIp, specArg, netnsPath] = process.argv.slice(2);
const closers: (() => void)[] = [];
let timer: NodeJS.Timeout | undefined;

function shutdown(code: number): void {
  process.exitCode = code;
  if (timer) clearInterval(timer);
  for (const c of closers.splice(0)) c();
  process.removeAllListeners('SIGTERM');
}

function parse(spec: string): Binding[] {
  return spec.split(',').map((item) => {
    const [proto, hostIp = '', port = '0', end = '', ctr = '0'] = item.split('/');
    const hostPort = Number(port);
    return { proto: proto === 'udp' ? 'udp' : 'tcp', hostIp, hostPort, hostPortEnd: end === '' ? hostPort : Number(end), ctrPort: Number(ctr) };
  });
}

function listenTcp(host: string, port: number, ctrPort: number): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: containerIp!, port: ctrPort });
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':'), exclusive: true }, () => {
      server.off('error', reject);
      closers.push(() => {
        server.close();
        for (const s of sockets) s.destroy();
      });
      resolve(server);
    });
  });
}

function listenUdp(host: string, port: number, ctrPort: number): Promise<UdpSocket> {
  const v6 = host.includes(':');
  const sock = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
  // One upstream socket per client address, so that the container's replies find their way back.
  const flows = new Map<string, { up: UdpSocket; idle: NodeJS.Timeout }>();
  const drop = (key: string): void => {
    const f = flows.get(key);
    if (!f) return;
    flows.delete(key);
    clearTimeout(f.idle);
    f.up.close();
  };
  sock.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}|${rinfo.port}`;
    let f = flows.get(key);
    if (!f) {
      const up = createSocket('udp4');
      up.on('message', (reply) => {
        sock.send(reply, rinfo.port, rinfo.address);
        const cur = flows.get(key);
        if (cur) cur.idle.refresh();
      });
      up.on('error', () => drop(key));
      f = { up, idle: setTimeout(() => drop(key), UDP_IDLE_MS) };
      flows.set(key, f);
    }
    f.idle.refresh();
    f.up.send(msg, ctrPort, containerIp!);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: host, port, exclusive: true }, () => {
      sock.off('error', reject);
      sock.on('error', () => {});
      closers.push(() => {
        for (const k of [...flows.keys()]) drop(k);
        sock.close();
      });
      resolve(sock);
    });
  });
}

async function listen(proto: 'tcp' | 'udp', host: string, port: number, ctrPort: number): Promise<{ port: number; close: () => void }> {
  if (proto === 'tcp') {
    const s = await listenTcp(host, port, ctrPort);
    return { port: (s.address() as { port: number }).port, close: () => s.close() };
  }
  const s = await listenUdp(host, port, ctrPort);
  return { port: s.address().port, close: () => s.close() };
}

/** Whether `::` can be bound here (a host without IPv6 gets its ports on 0.0.0.0 only). */
async function hasIpv6(): Promise<boolean> {
  try {
    const s = await listenTcp('::', 0, 1);
    s.close();
    closers.pop();
    return true;
  } catch {
    return false;
  }
}

/** Binds one binding on each of its addresses with one port, trying the next one of a range. */
async function bind(b: Binding, ipv6: boolean): Promise<Listening[]> {
  const hosts = b.hostIp !== '' ? [b.hostIp] : ipv6 ? ['0.0.0.0', '::'] : ['0.0.0.0'];
  const random = b.hostPort === 0;
  let lastError: unknown;
  for (let port = b.hostPort, tries = 0; random ? tries < 20 : port <= b.hostPortEnd; port++, tries++) {
    const held: { port: number; close: () => void }[] = [];
    try {
      for (const h of hosts) held.push(await listen(b.proto, h, random ? (held[0]?.port ?? 0) : port, b.ctrPort));
      return hosts.map((h, i) => ({ hostIp: h, hostPort: held[i]!.port, containerPort: b.ctrPort, protocol: b.proto }));
    } catch (e) {
      lastError = e;
      for (const x of held) x.close();
      // A port given alone is that port or an error; a random one is tried again (its IPv6
      // twin may be taken), a range is tried to its end.
      if (!random && b.hostPortEnd === b.hostPort) break;
    }
  }
  const where = `${b.hostIp || '0.0.0.0'}:${b.hostPortEnd !== b.hostPort ? `${b.hostPort}-${b.hostPortEnd}` : b.hostPort}`;
  // Docker's words for a port taken by another process or container.
  if ((lastError as NodeJS.ErrnoException)?.code === 'EADDRINUSE') throw new Error(`Bind for ${where} failed: port is already allocated`);
  throw new Error(`${where}/${b.proto}: ${(lastError as Error)?.message ?? 'no free port'}`);
}

async function main(): Promise<void> {
  if (!containerIp || !specArg || !netnsPath) {
    process.stderr.write('usage: port-proxy <containerIp> <proto/hostIp/hostPort/hostPortEnd/ctrPort,...> <netnsPath>\n');
    process.exitCode = 2;
    return;
  }
  const bindings = parse(specArg);
  const ipv6 = bindings.some((b) => b.hostIp === '') ? await hasIpv6() : false;
  const out: Listening[] = [];
  try {
    for (const b of bindings) out.push(...(await bind(b, ipv6)));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    shutdown(1);
    return;
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  timer = setInterval(() => {
    if (!existsSync(netnsPath)) shutdown(0);
  }, 1000);
  process.on('SIGTERM', () => shutdown(0));
}

void main();
