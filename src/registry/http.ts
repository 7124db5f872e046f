/**
 * The HTTP layer of the registry client: undici's connection-pooling Agent, loaded from its own
 * module instead of undici's index, and requests made through undici's `dispatch` with a handler
 * of ours rather than its promise `request` API.
 *
 * The index requires every dispatcher, the mock agents, fetch, websocket and the cache stores,
 * more than twice the agent's loading time, paid by every pull and push before the first byte
 * moves (docs/architecture.md, "Measurements"). undici has no `exports` map, so
 * the deep paths are public in practice; they are pinned by the undici@7 dependency, and the types
 * come from undici's own declarations.
 *
 * Why a handler of our own: `request` hands the body over as a Readable stream, and a download
 * then passes every chunk through the stream's push/flow/emit machinery and a pipeline into a
 * WriteStream. On a 2-core machine a pull is CPU-bound while its layers arrive, and that machinery
 * was a good part of its JavaScript. `ResponseBody` takes the chunks straight from undici's
 * `onData`: a download gives it a sink function (and pauses the connection by returning false);
 * everything else reads it with `for await`.
 */
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
// Static imports, so that the CLI bundle (scripts/build.mjs) carries these modules in its code
// cache rather than every pull and push loading them from node_modules.
import AgentImpl from 'undici/lib/dispatcher/agent.js';
import undiciUtil from 'undici/lib/core/util.js';
import type { Readable } from 'node:stream';
import { AbortedError } from '../errors.js';

export const Agent = AgentImpl as unknown as typeof UndiciAgent;
export type Agent = UndiciAgent;

const parseHeaders = (undiciUtil as unknown as {
  parseHeaders: (raw: Buffer[]) => Record<string, string | string[] | undefined>;
}).parseHeaders;

/** Bytes a body holds for a reader that is not keeping up before the connection is paused. */
const BODY_BUFFER = 1024 * 1024;

/** Receives a body's chunks in order; returns false to pause until the body's resume(). */
export type BodySink = (chunk: Buffer) => boolean;

/** What a body destroyed without a reason of its own reports to a later reader. */
export class BodyDestroyedError extends AbortedError {
  constructor() {
    super('response body destroyed');
    this.name = 'BodyDestroyedError';
  }
}

/**
 * A response body, fed by the request's handler. Read it once: with pipeTo (a download), or with
 * `for await` (everything else). Leaving a `for await` early destroys it, which closes its
 * connection; an unread body holds up to BODY_BUFFER bytes and then pauses its connection.
 */
export class ResponseBody implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private state: 'open' | 'ended' | 'failed' = 'open';
  private failure: Error | undefined;
  /** The connection is paused (undici holds further data until resumeNetwork). */
  private networkPaused = false;
  private sink: BodySink | undefined;
  private sinkPaused = false;
  private settle: ((e?: Error) => void) | undefined;
  private wake: (() => void) | undefined;

  /** @internal undici's resume for the paused connection, and its abort until the body ends. */
  constructor(
    private readonly resumeNetwork: () => void,
    private abortRequest: ((e: Error) => void) | undefined,
  ) {}

  /** @internal From the handler's onData; false pauses the connection. */
  feed(chunk: Buffer): boolean {
    if (this.state !== 'open') return false;
    if (this.sink && !this.sinkPaused && this.chunks.length === 0) {
      if (this.sink(chunk)) return true;
      this.sinkPaused = true;
    } else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.notify();
      if (!this.sink && this.buffered < BODY_BUFFER) return true;
    }
    this.networkPaused = true;
    return false;
  }

  /** @internal The response is complete. */
  end(): void {
    if (this.state !== 'open') return;
    this.state = 'ended';
    this.abortRequest = undefined;
    this.notify();
  }

  /** @internal The response failed (connection lost, aborted, timed out). */
  fail(e: Error): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.failure = e;
    this.abortRequest = undefined;
    this.notify();
  }

  /**
   * Hands every chunk to `sink` as it arrives; a sink that returns false gets no more until
   * resume(). Resolves when the body has ended and every chunk was handed over; rejects with the
   * body's error (chunks that arrived before it are handed over first).
   */
  pipeTo(sink: BodySink): Promise<void> {
    if (this.sink) return Promise.reject(new Error('response body is already being read'));
    this.sink = sink;
    return new Promise<void>((resolve, reject) => {
      this.settle = (e) => (e ? reject(e) : resolve());
      this.drain();
    });
  }

  /** The sink of pipeTo is ready for more. */
  resume(): void {
    if (!this.sinkPaused) return;
    this.sinkPaused = false;
    this.drain();
  }

  /** Stops the body: an unfinished response is aborted (its connection closed). */
  destroy(e: Error = new BodyDestroyedError()): void {
    if (this.state !== 'open') return;
    const abort = this.abortRequest;
    this.fail(e);
    abort?.(e);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    try {
      for (;;) {
        const c = this.chunks.shift();
        if (c) {
          this.buffered -= c.length;
          if (this.networkPaused && this.state === 'open' && this.buffered < BODY_BUFFER / 2) {
            this.networkPaused = false;
            this.resumeNetwork();
          }
          yield c;
          continue;
        }
        if (this.state === 'failed') throw this.failure!;
        if (this.state === 'ended') return;
        await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      this.destroy(); // left early: nobody will read the rest
    }
  }

  /** The whole body as UTF-8 text. */
  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of this) parts.push(c);
    return Buffer.concat(parts).toString('utf8');
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
    if (this.sink) this.drain();
  }

  /** pipeTo's delivery: buffered chunks first, then the connection resumed, then the end. */
  private drain(): void {
    const sink = this.sink;
    if (!sink) return;
    while (!this.sinkPaused && this.chunks.length > 0) {
      const c = this.chunks.shift()!;
      this.buffered -= c.length;
      if (!sink(c)) this.sinkPaused = true;
    }
    if (this.sinkPaused || this.chunks.length > 0) return;
    if (this.state === 'open') {
      if (this.networkPaused) {
        this.networkPaused = false;
        this.resumeNetwork();
      }
      return;
    }
    const settle = this.settle;
    this.settle = undefined;
    settle?.(this.state === 'failed' ? this.failure : undefined);
  }
}

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

export interface HttpRequestOptions {
  dispatcher: Dispatcher;
  method: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: Uint8Array | string | Readable | null;
  signal?: AbortSignal | undefined;
  /** false: keep the connection after a HEAD (undici closes it by default). */
  reset?: boolean;
}

/**
 * One HTTP exchange to an absolute URL: resolves with the status and headers once they arrive
 * (the body follows in `body`), rejects if the request fails before that.
 */
export function httpRequest(url: URL, o: HttpRequestOptions): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    let body: ResponseBody | undefined;
    let abort: ((e: Error) => void) | undefined;
    let early: Error | undefined;
    let settled = false;
    const onAbort = (): void => {
      const reason = o.signal?.reason instanceof Error ? o.signal.reason : new AbortedError('request aborted');
      if (body) body.destroy(reason);
      else if (abort) abort(reason);
      else early = reason;
    };
    const done = (): void => o.signal?.removeEventListener('abort', onAbort);
    if (o.signal?.aborted) {
      reject(o.signal.reason instanceof Error ? o.signal.reason : new AbortedError('request aborted'));
      return;
    }
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      onConnect(a: (e?: Error) => void) {
        abort = a;
        if (early) a(early);
      },
      onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void) {
        if (statusCode < 200) return true; // 1xx: the real response follows
        body = new ResponseBody(resume, abort);
        settled = true;
        resolve({ statusCode, headers: parseHeaders(rawHeaders), body });
        return true;
      },
      onData(chunk: Buffer) {
        return body ? body.feed(chunk) : true;
      },
      onComplete() {
        done();
        body?.end();
      },
      onError(err: Error) {
        done();
        const reqBody = o.body as { destroy?: (e: Error) => void } | null | undefined;
        if (reqBody && typeof reqBody.destroy === 'function') reqBody.destroy(err);
        if (body) body.fail(err);
        else if (!settled) {
          settled = true;
          reject(err);
        }
      },
    } as unknown as Dispatcher.DispatchHandler;
    try {
      o.dispatcher.dispatch(
        {
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: o.method,
          headers: o.headers ?? {},
          body: o.body ?? null,
          ...(o.reset !== undefined ? { reset: o.reset } : {}),
        },
        handler,
      );
    } catch (e) {
      done();
      reject(e as Error);
    }
  });
}

/** How much of a response body nobody reads is consumed to keep its connection (as undici's dump). */
const DISCARD_LIMIT = 128 * 1024;

/**
 * Reads and drops a response body whose content does not matter (a ping, a HEAD, an upload's
 * reply), so its connection goes back to the pool for the next request. A body longer than the
 * limit is destroyed, which closes its connection, as undici's `dump` does.
 */
export async function discardBody(body: ResponseBody): Promise<void> {
  let n = 0;
  try {
    for await (const chunk of body) {
      n += chunk.length;
      if (n > DISCARD_LIMIT) {
        body.destroy();
        return;
      }
    }
  } catch {
    // a broken body of a response we do not read: its status is what counts
  }
}
