/**
 * The port proxy program: `port-proxy <containerIp> <hostIp:hostPort:ctrPort,...> <netnsPath>`.
 * Forwards each accepted TCP connection to the container and stops when the container's network
 * namespace file disappears (rm) or on SIGTERM, so a proxy never outlives its container for long.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { existsSync } from 'node:fs';

const [containerIp, spec, netnsPath] = process.argv.slice(2);
const servers: Server[] = [];
const sockets = new Set<Socket>();
let timer: NodeJS.Timeout | undefined;

function shutdown(code: number): void {
  process.exitCode = code;
  if (timer) clearInterval(timer);
  for (const s of servers) s.close();
  for (const s of sockets) s.destroy();
  process.removeAllListeners('SIGTERM');
}

if (!containerIp || !spec || !netnsPath) {
  process.stderr.write('usage: port-proxy <containerIp> <hostIp:hostPort:ctrPort,...> <netnsPath>\n');
  process.exitCode = 2;
} else {
  for (const item of spec.split(',')) {
    const [hostIp = '127.0.0.1', hostPort = '0', ctrPort = '0'] = item.split(':');
    const server = createServer((client) => {
      const upstream = connect({ host: containerIp, port: Number(ctrPort) });
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
    server.on('error', (e) => {
      process.stderr.write(`${hostIp}:${hostPort}: ${e.message}\n`);
      shutdown(1);
    });
    server.listen(Number(hostPort), hostIp);
    servers.push(server);
  }
  timer = setInterval(() => {
    if (!existsSync(netnsPath)) shutdown(0);
  }, 1000);
  process.on('SIGTERM', () => shutdown(0));
}
