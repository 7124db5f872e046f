/**
 * The registry client's HTTP exchange (src/registry/http.ts) against a real node:http server
 * on 127.0.0.1: bodies read through a pausing sink or `for await` arrive whole and in order, an
 * unread body holds its connection back, and leaving early, a dropped connection or an abort
 * end the exchange with the right error and without hanging.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, discardBody, httpRequest, type ResponseBody } from '../../src/registry/http.js';
import { RegistrySession } from '../../src/registry/transport.js';
import { countedBody } from '../../src/registry/push.js';
import { createReadStream } from 'node:fs';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError } from '../../src/errors.js';

const BIG = Buffer.alloc(8 * 1024 * 1024);
for (let i = 0; i < BIG.length; i += 4) BIG.writeUInt32LE((i * 2654435761) >>> 0, i);
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

let server: Server;
let base: string;
const agent = new Agent({ keepAliveTimeout: 10_000 });
/** What the server saw of the last /hold request: set when its writes were held back. */
let held: { blocked: boolean; res?: ServerResponse } = { blocked: false };
const closedSockets: Socket[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.socket.once('close', () => closedSockets.push(req.socket));
    if (req.url === '/big') {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      // many writes, so the client sees many chunks
      for (let i = 0; i < BIG.length; i += 64 * 1024) res.write(BIG.subarray(i, i + 64 * 1024));
      res.end();
    } else if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.write(BIG.subarray(0, 300_000), () => setTimeout(() => req.socket.destroy(), 20));
    } else if (req.url === '/hold') {
      res.writeHead(200, { 'content-length': String(64 * 1024 * 1024) });
      held = { blocked: false, res };
      const chunk = Buffer.alloc(256 * 1024);
      let sent = 0;
      const more = (): void => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            held.blocked = true;
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    } else if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else if (req.url === '/sink') {
      // Takes the first bytes of an upload, then stops reading: the body stays in flight.
      req.once('data', () => req.pause());
    } else if (req.url === '/small') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await agent.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const get = (path: string, signal?: AbortSignal): Promise<{ statusCode: number; body: ResponseBody }> =>
  httpRequest(new URL(path, base), { dispatcher: agent, method: 'GET', ...(signal ? { signal } : {}) });

describe('response bodies', () => {
  it('a sink that pauses on every chunk gets the whole body, in order', async () => {
    const res = await get('/big');
    expect(res.statusCode).toBe(200);
    const h = createHash('sha256');
    let n = 0;
    let chunks = 0;
    await res.body.pipeTo((c) => {
      h.update(c);
      n += c.length;
      chunks++;
      setImmediate(() => res.body.resume());
      return false;
    });
    expect(n).toBe(BIG.length);
    expect(chunks).toBeGreaterThan(10);
    expect(h.digest('hex')).toBe(BIG_SHA);
  });

  it('chunks that arrive before the sink is attached are kept', async () => {
    const res = await get('/big');
    await new Promise((r) => setTimeout(r, 50)); // let some of it arrive unread
    const h = createHash('sha256');
    await res.body.pipeTo((c) => (h.update(c), true));
    expect(h.digest('hex')).toBe(BIG_SHA);
  });

  it('for await reads it too, and text() the small ones', async () => {
    const h = createHash('sha256');
    for await (const c of (await get('/big')).body) h.update(c);
    expect(h.digest('hex')).toBe(BIG_SHA);
    expect(await (await get('/small')).body.text()).toBe('hello');
  });

  it('an unread body holds the server back instead of filling memory', async () => {
    const res = await get('/hold');
    await new Promise((r) => setTimeout(r, 300));
    expect(held.blocked).toBe(true);
    expect(held.res!.writableEnded).toBe(false);
    res.body.destroy();
  });

  it('leaving a for await early, or discarding a long body, closes the connection', async () => {
    const before = closedSockets.length;
    const res = await get('/hold');
    for await (const c of res.body) {
      expect(c.length).toBeGreaterThan(0);
      break;
    }
    await expect(res.body.pipeTo(() => true)).rejects.toThrow(/already being read|destroyed/);
    const again = await get('/hold');
    await discardBody(again.body); // more than it reads: destroyed
    await new Promise((r) => setTimeout(r, 100));
    expect(closedSockets.length).toBeGreaterThanOrEqual(before + 2);
  });

  it('a connection cut mid-body rejects after handing over what arrived', async () => {
    const res = await get('/cut');
    let n = 0;
    const err = await res.body.pipeTo((c) => ((n += c.length), true)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
    expect(n).toBe(300_000);
  });

  it('an abort signal stops a request before and during its body', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(get('/big', ac.signal)).rejects.toThrow('stop now');
    const ac2 = new AbortController();
    const res = await get('/hold', ac2.signal);
    const reading = res.body.pipeTo(() => true);
    setTimeout(() => ac2.abort(new Error('stopped mid-body')), 30);
    await expect(reading).rejects.toThrow('stopped mid-body');
  });
});

describe('a registry session', () => {
  it('closing it ends its connections and stops a body still arriving with ABORTED', async () => {
    const session = new RegistrySession();
    const client = session.client(new URL(base).host);
    const before = closedSockets.length;
    const res = await client.request({ method: 'GET', path: '/hold', scopes: [], expect: [200], what: 'GET /hold' });
    let n = 0;
    const reading = res.body.pipeTo((c) => ((n += c.length), true));
    await new Promise((r) => setTimeout(r, 30));
    await session.close();
    const err = await reading.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).message).toMatch(/registry session closed/);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(64 * 1024 * 1024);
    await new Promise((r) => setTimeout(r, 100));
    // the ping's connection, which the request reused
    expect(closedSockets.length).toBeGreaterThan(before);
  });

  it('closing it while an upload body is in flight fails that upload, with no stray error from the body', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgbuild-upload-'));
    try {
      const file = join(dir, 'blob');
      await writeFile(file, Buffer.alloc(64 * 1024 * 1024, 7));
      const session = new RegistrySession();
      const client = session.client(new URL(base).host);
      let sent = 0;
      // More uploads than the session has connections: some are in flight, the rest queued.
      const uploads = Array.from({ length: 20 }, () =>
        client
          .request({
            method: 'PUT',
            path: '/sink',
            scopes: [],
            headers: { 'content-length': String(64 * 1024 * 1024) },
            body: () => countedBody(createReadStream(file, { highWaterMark: 1 << 20 }), (n) => (sent = Math.max(sent, n))),
            expect: [201],
            what: 'upload',
            retry: false,
          })
          .catch((e: unknown) => e),
      );
      while (sent === 0) await new Promise((r) => setTimeout(r, 5));
      await session.close();
      for (const err of await Promise.all(uploads)) expect(String(err)).toMatch(/upload: ABORTED: registry session closed$/);
      expect(sent).toBeLessThan(64 * 1024 * 1024);
      // An 'error' on the body with no listener would surface here as an uncaught exception.
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an upload body whose file cannot be read fails the request with that error', async () => {
    const session = new RegistrySession();
    const client = session.client(new URL(base).host);
    try {
      const err = await client
        .request({
          method: 'PUT',
          path: '/sink',
          scopes: [],
          headers: { 'content-length': '10' },
          body: () => countedBody(createReadStream('/nonexistent/imgbuild-blob'), () => {}),
          expect: [201],
          what: 'upload',
          retry: false,
        })
        .catch((e: unknown) => e);
      expect(String(err)).toMatch(/upload: .*ENOENT/);
    } finally {
      await session.close();
    }
  });
});
