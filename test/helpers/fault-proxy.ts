/**
 * A node:http proxy in front of the real registry for faults the real one cannot produce: a
 * connection closed mid-blob, a 500 or 429 (with Retry-After) before success, a corrupted body, a
 * redirect to another host, a refused upload style. Every request passes through `rule(req, n)`,
 * which may return a fault; otherwise the request is forwarded unchanged (Host header included, so
 * the registry's upload Locations point back at the proxy). Requests are recorded for assertions.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  authorization?: string;
  range?: string;
  status?: number;
}

export type Fault =
  /** Answer directly with this status/headers/body. */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string | Buffer }
  /** Forward, but cut the connection after this many body bytes. */
  | { kind: 'close-after'; bytes: number }
  /** Forward, but flip one byte of the response body. */
  | { kind: 'corrupt' }
  /** Drop the connection without answering. */
  | { kind: 'reset' }
  /** Answer with a redirect. */
  | { kind: 'redirect'; location: string; status?: number };

export interface FaultProxy {
  host: string;
  url: string;
  seen: SeenRequest[];
  /** TCP connections accepted (a TLS attempt on this plain port included). */
  connections: number;
  rule: (req: SeenRequest, count: number) => Fault | undefined;
  /** Forgets recorded requests and per-path counts, and clears the rule. */
  reset(): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string, listenHost = '127.0.0.1'): Promise<FaultProxy> {
  const t = new URL(target);
  const counts = new Map<string, number>();
  const proxy: FaultProxy = {
    host: '',
    url: '',
    seen: [],
    connections: 0,
    rule: () => undefined,
    reset: () => {
      proxy.seen.length = 0;
      proxy.connections = 0;
      counts.clear();
      proxy.rule = () => undefined;
    },
    stop: async () => {},
  };
  const forward = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest, fault?: Fault): void => {
    const up = httpRequest(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        seen.status = ur.statusCode;
        if (fault?.kind === 'close-after') {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          let sent = 0;
          if (fault.bytes <= 0) {
            res.flushHeaders();
            ur.destroy();
            setTimeout(() => res.socket?.destroy(), 20);
            return;
          }
          ur.on('data', (c: Buffer) => {
            if (sent >= fault.bytes) return;
            const part = c.subarray(0, Math.max(0, fault.bytes - sent));
            sent += part.length;
            res.write(part);
            if (sent >= fault.bytes) {
              ur.destroy();
              // flush what was written, then cut the connection without finishing the response
              setTimeout(() => res.socket?.destroy(), 20);
            }
          });
          return;
        }
        if (fault?.kind === 'corrupt') {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          let first = true;
          ur.on('data', (c: Buffer) => {
            if (first && c.length > 0) {
              const copy = Buffer.from(c);
              copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 0xff;
              res.write(copy);
              first = false;
            } else res.write(c);
          });
          ur.on('end', () => res.end());
          return;
        }
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const server: Server = createServer((req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers.range ? { range: req.headers.range } : {}),
    };
    proxy.seen.push(seen);
    const key = `${seen.method} ${seen.url.split('?')[0]}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    const fault = proxy.rule(seen, n);
    if (fault?.kind === 'respond') {
      seen.status = fault.status;
      req.resume();
      res.writeHead(fault.status, fault.headers ?? {});
      res.end(fault.body ?? '');
      return;
    }
    if (fault?.kind === 'reset') {
      seen.status = 0;
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'redirect') {
      seen.status = fault.status ?? 307;
      req.resume();
      res.writeHead(fault.status ?? 307, { location: fault.location });
      res.end();
      return;
    }
    forward(req, res, seen, fault);
  });
  server.on('connection', () => proxy.connections++);
  await new Promise<void>((r) => server.listen(0, listenHost, () => r()));
  const port = (server.address() as AddressInfo).port;
  proxy.host = `${listenHost}:${port}`;
  proxy.url = `http://${proxy.host}`;
  proxy.stop = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return proxy;
}

/**
 * A plain server on another loopback address that records what it is sent and serves blobs by
 * fetching them from the registry itself with its own credentials: the "object storage" that a
 * registry redirects blob downloads to.
 */
export async function startBlobHost(registryUrl: string, basicAuth: string | undefined, listenHost = '127.0.0.2'): Promise<{ url: string; seen: SeenRequest[]; stop(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const t = new URL(registryUrl);
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? 'GET', url: req.url ?? '/', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const headers: Record<string, string> = basicAuth ? { authorization: `Basic ${Buffer.from(basicAuth).toString('base64')}` } : {};
    if (req.headers.range) headers.range = req.headers.range;
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.end();
  });
  await new Promise<void>((r) => server.listen(0, listenHost, () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${listenHost}:${port}`,
    seen,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
