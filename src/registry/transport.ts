/**
 * HTTP transport to one registry (ggcr remote/transport): ping `/v2/` once to learn how it wants to
 * be authenticated, answer `WWW-Authenticate` challenges (Basic, or Bearer tokens fetched per
 * repository scope and cached for this session), retry what the session's policy calls temporary
 * (retry.ts), and follow redirects without ever sending our Authorization header to a
 * different origin (blob downloads are commonly redirected to object storage).
 *
 * Plain http is used only for loopback registries (asked first: see pingOnce) or, when `insecure` is
 * set, after https failed.
 */
import type { Dispatcher } from 'undici';
import { Agent, discardBody, httpRequest, type ResponseBody } from './http.js';
import { Readable } from 'node:stream';
import { isLoopbackRegistry, registryHost } from '../image/reference.js';
import { deferredTrust } from './trust.js';
import { AbortedError } from '../errors.js';
import { anonymous, type Authenticator, type Credential } from './auth.js';
import { AuthError, ProtocolError, RegistryError, TransportError, describeNetworkError, parseDiagnostics } from './errors.js';
import { RetryPolicy, isRetryable, retryAfterMs, sleep, type RetryOptions } from './retry.js';

/**
 * How long a loopback registry's plain-http ping may go unanswered before the https one starts
 * beside it (see pingOnce): a local registry answers in a few milliseconds.
 */
const PLAIN_FIRST_WAIT = 250;

export interface Challenge {
  scheme: string; // lower-case: 'bearer' | 'basic' | ...
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header value (RFC 7235; several challenges may share one header). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const v of values) {
    let i = 0;
    const s = v;
    let current: Challenge | undefined;
    while (i < s.length) {
      while (i < s.length && (s[i] === ' ' || s[i] === ',')) i++;
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)/.exec(s.slice(i));
      if (!m) break;
      const token = m[1]!;
      let j = i + token.length;
      while (j < s.length && s[j] === ' ') j++;
      if (s[j] === '=') {
        // a parameter of the current challenge
        j++;
        while (j < s.length && s[j] === ' ') j++;
        let value = '';
        if (s[j] === '"') {
          j++;
          while (j < s.length && s[j] !== '"') {
            if (s[j] === '\\' && j + 1 < s.length) j++;
            value += s[j];
            j++;
          }
          j++;
        } else {
          const vm = /^[^,\s]*/.exec(s.slice(j));
          value = vm ? vm[0] : '';
          j += value.length;
        }
        if (current) current.params[token.toLowerCase()] = value;
        i = j;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
        i = j;
      }
    }
  }
  return out;
}

export type Action = 'pull' | 'push';

/** `repository:<name>:<actions>` */
export function repositoryScope(repo: string, actions: readonly Action[]): string {
  return `repository:${repo}:${[...actions].sort().join(',')}`;
}

export interface SessionOptions {
  auth?: Authenticator;
  /** Allow plain http and skip TLS verification for every registry. */
  insecure?: boolean;
  retry?: Partial<RetryOptions>;
  userAgent?: string;
  /** Where IMGBUILD_DEFERRED_CA_CERTS is looked up (see trust.ts); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
  url: URL;
}

export interface RequestSpec {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the registry origin (`/v2/...`) or an absolute URL (upload Locations). */
  path: string;
  /** Token scopes this request needs (`repository:x:pull`). */
  scopes: string[];
  headers?: Record<string, string>;
  /** A buffer, or a factory so the request can be replayed on retry. */
  body?: Uint8Array | string | (() => Readable);
  /** Statuses that count as success; anything else becomes a RegistryError. */
  expect: number[];
  /** Names the operation in errors (`GET manifest busybox:latest`). */
  what: string;
  signal?: AbortSignal;
  /** Retry temporary failures (default true); false: one attempt, the caller retries. */
  retry?: boolean;
}

interface Base {
  origin: string; // https://host:port or http://host:port
  challenge?: Challenge;
}

/** What the attempts of one request() share. */
interface AttemptState {
  /** A fresh token was fetched after a 401 (only once per request). */
  reauthed: boolean;
  /** The failure of a token fetch, which retried on its own. */
  authFailure?: unknown;
}

interface Token {
  value: string;
  expires: number;
}

function header(h: RegistryResponse['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readText(body: ResponseBody, limit = 64 * 1024): Promise<string> {
  let out = '';
  try {
    for await (const chunk of body) {
      if (out.length < limit) out += chunk.toString('utf8');
    }
  } catch {
    /* a broken error body still leaves the status to report */
  }
  return out.slice(0, limit);
}

/**
 * Caches shared by every registry contacted in one process run: ping results, tokens, connection
 * pools. Pass one session to several pulls/pushes to reuse them.
 */
export class RegistrySession {
  readonly auth: Authenticator;
  /** The retry policy of every request made through this session. */
  readonly retry: RetryPolicy;
  readonly userAgent: string;
  private readonly clients = new Map<string, RegistryClient>();
  private secureAgent: Agent | undefined;
  private insecureAgent: Agent | undefined;

  constructor(readonly opts: SessionOptions = {}) {
    this.auth = opts.auth ?? anonymous;
    this.retry = new RetryPolicy(opts.retry);
    this.userAgent = opts.userAgent ?? 'imgbuild/0.1';
  }

  agent(insecure: boolean): Agent {
    const common = { keepAliveTimeout: 10_000, connections: 16, headersTimeout: 120_000, bodyTimeout: 120_000 };
    // Nothing is verified here, so no CA store either: without `ca`, Node's first TLS connection
    // parses its ~140 bundled root certificates, synchronously; with an empty list it loads none.
    if (insecure) return (this.insecureAgent ??= new Agent({ ...common, connect: { rejectUnauthorized: false, ca: [] } }));
    if (!this.secureAgent) {
      const ca = deferredTrust(this.opts.env ?? process.env);
      this.secureAgent = new Agent(ca ? { ...common, connect: { ca } } : common);
    }
    return this.secureAgent;
  }

  client(registry: string, o: { insecure?: boolean } = {}): RegistryClient {
    const insecure = Boolean(o.insecure ?? this.opts.insecure);
    const key = `${registry}|${insecure}`;
    let c = this.clients.get(key);
    if (!c) {
      c = new RegistryClient(this, registry, insecure);
      this.clients.set(key, c);
    }
    return c;
  }

  /**
   * Ends every connection, and any request still under way (a session is closed when the
   * operations that used it are over, succeeded or failed).
   *
   * Not undici's graceful Agent.close(): it ends each connection with a ClientDestroyedError of
   * its own, and Node's stream code formats the stack of an error it destroys a socket with, on
   * the spot (streams/destroy.js, checkError), which against the CLI's whole bundle is slow. One
   * error whose stack is already set serves every connection (docs/architecture.md, "Measurements").
   */
  async close(): Promise<void> {
    const closed = new AbortedError('registry session closed');
    closed.stack = `${closed.name}: ${closed.message}`;
    await Promise.all([this.secureAgent?.destroy(closed), this.insecureAgent?.destroy(closed)]);
  }
}

export class RegistryClient {
  private base: Promise<Base> | undefined;
  private readonly tokens = new Map<string, Promise<Token>>();
  private credential: Promise<Credential | undefined> | undefined;

  constructor(
    private readonly session: RegistrySession,
    readonly registry: string,
    readonly insecure: boolean,
  ) {}

  /** Whether plain http may be used for this registry. */
  get allowHttp(): boolean {
    return this.insecure || isLoopbackRegistry(this.registry);
  }

  private get host(): string {
    return registryHost(this.registry);
  }

  private cred(): Promise<Credential | undefined> {
    return (this.credential ??= this.session.auth.credential(this.registry));
  }

  /** The registry's origin and auth challenge, from one `GET /v2/` per session. */
  ping(signal?: AbortSignal): Promise<Base> {
    this.base ??= this.doPing(signal).catch((e: unknown) => {
      this.base = undefined;
      throw e;
    });
    return this.base;
  }

  private doPing(signal?: AbortSignal): Promise<Base> {
    return this.session.retry.run(() => this.pingOnce(signal), { signal });
  }

  /**
   * `GET /v2/`, to learn the registry's scheme and auth challenge.
   *
   * A loopback registry is asked over plain http first: its traffic never leaves the machine, so
   * TLS protects nothing there (Docker allows plain http for 127.0.0.0/8 for the same reason), and
   * the common local registry speaks plain http. An answer a registry gives to `/v2/` (200, or 401
   * with its challenge) settles it; anything else (a TLS server's 400 to a plain request, a
   * refused or reset connection, no answer within PLAIN_FIRST_WAIT) sends the ping to https,
   * which then wins if it answers at all.
   * This spares a local pull the TLS attempt (a TLS context, the handshake, the failure) before
   * the manifest request can leave.
   *
   * An `--insecure` remote registry is asked over https and http at the same time: https wins
   * when it answers at all, http is used when https cannot connect. Asking both at once saves the
   * failed TLS attempt's round trip, and the unauthenticated ping carries no credentials either way.
   */
  private async pingOnce(signal?: AbortSignal): Promise<Base> {
    const attempt = async (scheme: string): Promise<{ base: Base; status: number }> => {
      const origin = `${scheme}://${this.host}`;
      const res = await this.send({ method: 'GET', url: new URL('/v2/', origin), headers: {}, signal });
      await discardBody(res.body);
      if (res.status === 401) {
        const challenges = parseChallenges(res.headers['www-authenticate']);
        const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
        return { base: challenge ? { origin, challenge } : { origin }, status: res.status };
      }
      if (res.status >= 500 || res.status === 429) {
        throw new RegistryError(res.status, [], `GET ${origin}/v2/`, { retryAfter: retryAfterMs(header(res.headers, 'retry-after')) });
      }
      return { base: { origin }, status: res.status };
    };
    let attempts: Promise<{ base: Base; status: number }>[];
    if (isLoopbackRegistry(this.registry)) {
      const plain = attempt('http').then(
        (answer) => ({ answer }),
        (e: unknown) => {
          if (e instanceof RegistryError || e instanceof AbortedError || signal?.aborted) throw e;
          return { failure: e };
        },
      );
      plain.catch(() => {});
      // A server that never answers a plain request (rather than with a 400 or by closing) must
      // not hold the ping until the headers timeout: https starts after PLAIN_FIRST_WAIT anyway.
      const waiting = new AbortController();
      const first = await Promise.race([plain, sleep(PLAIN_FIRST_WAIT, waiting.signal).then(() => undefined, () => undefined)]);
      waiting.abort();
      if (first && 'answer' in first && (first.answer.status === 200 || first.answer.status === 401)) return this.settled(first.answer.base);
      // https, and failing that whatever plain http answers
      attempts = [attempt('https'), plain.then((p) => ('answer' in p ? p.answer : Promise.reject(p.failure)))];
    } else {
      // In order of preference; http is consulted only when https fails.
      attempts = this.allowHttp ? [attempt('https'), attempt('http')] : [attempt('https')];
    }
    for (const a of attempts) a.catch(() => {});
    let lastErr: unknown;
    for (const a of attempts) {
      try {
        return await this.settled((await a).base);
      } catch (e) {
        if (e instanceof AbortedError || signal?.aborted) throw e;
        if (e instanceof RegistryError) throw e;
        lastErr = e;
      }
    }
    throw new TransportError(`https://${this.host}/v2/`, `cannot reach registry ${this.registry}: ${describeNetworkError(lastErr)}`, { cause: lastErr });
  }

  /**
   * The ping's result, one event-loop turn later: undici hands the ping's connection back to its
   * pool in a setImmediate after the response ends (client-h1's onMessageComplete); the request
   * that follows (the manifest), made before that, opened a connection of its own
   * (NODE_DEBUG=undici). An immediate of ours, queued after undici's, lets it be reused.
   */
  private async settled(base: Base): Promise<Base> {
    await new Promise((r) => setImmediate(r));
    return base;
  }

  /** One raw HTTP exchange, no auth, no retry, no redirect handling. */
  private async send(o: {
    method: string;
    url: URL;
    headers: Record<string, string>;
    body?: Uint8Array | string | Readable;
    signal?: AbortSignal | undefined;
    agentInsecure?: boolean;
  }): Promise<RegistryResponse> {
    const res = await httpRequest(o.url, {
      method: o.method as Dispatcher.HttpMethod,
      headers: { 'user-agent': this.session.userAgent, ...o.headers },
      body: o.body ?? null,
      signal: o.signal,
      // undici closes a connection after a HEAD unless told otherwise, for servers that send a
      // body with it; registries answer HEAD properly, and a push sends one per blob, each of
      // which then cost a new connection for the upload that followed.
      ...(o.method === 'HEAD' ? { reset: false } : {}),
      // TLS is verified except with --insecure or on loopback (as Docker treats 127.0.0.0/8)
      dispatcher: this.session.agent(Boolean(o.agentInsecure ?? (this.insecure || isLoopbackRegistry(o.url.host)))),
    });
    return { status: res.statusCode, headers: res.headers, body: res.body, url: o.url };
  }

  /** The Authorization header value for these scopes, fetching a token when the registry asks for one. */
  async authorization(scopes: string[], signal?: AbortSignal, force = false): Promise<string | undefined> {
    const base = await this.ping(signal);
    const ch = base.challenge;
    if (!ch) return undefined;
    const cred = await this.cred();
    if (ch.scheme === 'basic') {
      if (cred?.username === undefined) return undefined;
      return `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
    }
    if (ch.scheme !== 'bearer') return undefined;
    if (cred?.registryToken) return `Bearer ${cred.registryToken}`;
    const key = [...scopes].sort().join(' ');
    const cached = this.tokens.get(key);
    if (!force && cached) {
      // concurrent requests share one token fetch per scope
      const t = await cached.catch(() => undefined);
      if (t && t.expires > Date.now()) return `Bearer ${t.value}`;
      if (this.tokens.get(key) !== cached) return this.authorization(scopes, signal);
    }
    const p = this.fetchToken(ch, scopes, cred, signal);
    this.tokens.set(key, p);
    p.catch(() => {
      if (this.tokens.get(key) === p) this.tokens.delete(key);
    });
    return `Bearer ${(await p).value}`;
  }

  private async fetchToken(ch: Challenge, scopes: string[], cred: Credential | undefined, signal?: AbortSignal): Promise<Token> {
    const realm = ch.params.realm;
    if (!realm) throw new ProtocolError(`registry ${this.registry} asked for a bearer token without a realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch (e) {
      throw new ProtocolError(`registry ${this.registry} gave an invalid token realm ${JSON.stringify(realm)}`, { cause: e });
    }
    if (realmUrl.protocol === 'http:' && !this.allowHttp && !isLoopbackRegistry(realmUrl.host)) {
      throw new ProtocolError(`refusing to send credentials to plain-http token realm ${realm} (use --insecure)`);
    }
    const service = ch.params.service;
    const allScopes = [...new Set([...scopes, ...(ch.params.scope ? ch.params.scope.split(' ') : [])])];
    const what = `token request to ${realmUrl.origin}${realmUrl.pathname} for ${allScopes.join(' ') || 'no scope'}`;
    const once = async (): Promise<Token> => {
      let res: RegistryResponse;
      try {
        if (cred?.identityToken) {
          // OAuth2 refresh-token grant, as docker does for identity tokens
          const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'imgbuild' });
          if (service) form.set('service', service);
          if (allScopes.length) form.set('scope', allScopes.join(' '));
          res = await this.send({
            method: 'POST',
            url: realmUrl,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: form.toString(),
            signal,
          });
        } else {
          const u = new URL(realmUrl);
          if (service) u.searchParams.set('service', service);
          for (const s of allScopes) u.searchParams.append('scope', s);
          const headers: Record<string, string> = {};
          if (cred?.username !== undefined) {
            headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
            u.searchParams.set('account', cred.username);
          }
          res = await this.send({ method: 'GET', url: u, headers, signal });
        }
      } catch (e) {
        if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
        throw new TransportError(realm, `${what}: ${describeNetworkError(e)}`, { cause: e });
      }
      if (res.status === 200) {
        const text = await readText(res.body, 1024 * 1024);
        let doc: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
        try {
          doc = JSON.parse(text) as typeof doc;
        } catch (e) {
          throw new ProtocolError(`${what}: response is not JSON`, { cause: e });
        }
        const value = doc.access_token || doc.token;
        if (!value) throw new ProtocolError(`${what}: response carries no token`);
        const life = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
        // refresh a little early so a token never expires mid-request
        return { value, expires: Date.now() + Math.max(1, life - 10) * 1000 };
      }
      const body = await readText(res.body);
      const diags = parseDiagnostics(body);
      if (res.status === 401 || res.status === 403) {
        throw new AuthError(res.status, diags.length ? diags : [{ code: res.status === 401 ? 'UNAUTHORIZED' : 'DENIED', message: body.trim().slice(0, 200) }], what, realm, { body });
      }
      throw new RegistryError(res.status, diags, what, { body, retryAfter: retryAfterMs(header(res.headers, 'retry-after')) });
    };
    return this.session.retry.run(once, { signal });
  }

  /**
   * Checks this session's credentials against the registry (for `login`): Basic registries must
   * answer `/v2/` with 200, token registries must issue a token for them and accept it.
   * Returns the auth scheme in use ('none' when the registry asks for no credentials).
   */
  async verifyCredentials(signal?: AbortSignal): Promise<'none' | 'basic' | 'bearer'> {
    const base = await this.ping(signal);
    const scheme = base.challenge?.scheme;
    if (scheme !== 'basic' && scheme !== 'bearer') return 'none';
    const cred = await this.cred();
    if (!cred || (cred.username === undefined && !cred.identityToken && !cred.registryToken)) {
      throw new AuthError(401, [{ code: 'UNAUTHORIZED', message: 'no credentials given' }], `login to ${this.registry}`, base.challenge?.params.realm);
    }
    const res = await this.request({ method: 'GET', path: '/v2/', scopes: [], expect: [200], what: `login to ${this.registry}`, ...(signal ? { signal } : {}) });
    await discardBody(res.body);
    return scheme;
  }

  /** Resolves a path or absolute Location against the registry origin, enforcing the http policy. */
  async resolveUrl(path: string, signal?: AbortSignal): Promise<URL> {
    const base = await this.ping(signal);
    const u = new URL(path, base.origin);
    this.checkScheme(u);
    return u;
  }

  private checkScheme(u: URL): void {
    if (u.protocol === 'https:') return;
    if (u.protocol !== 'http:') throw new ProtocolError(`unsupported URL scheme in ${u.href}`);
    if (!this.allowHttp && !isLoopbackRegistry(u.host)) {
      throw new ProtocolError(`refusing plain-http URL ${u.href} for registry ${this.registry} (use --insecure)`);
    }
  }

  /**
   * Sends a request with auth, retries and redirects. Returns the response when its status is in
   * `expect` (the caller consumes or dumps the body); throws RegistryError/AuthError otherwise.
   */
  async request(spec: RequestSpec): Promise<RegistryResponse> {
    const base = await this.ping(spec.signal);
    const state: AttemptState = { reauthed: false };
    return this.session.retry.run(() => this.requestOnce(spec, base, state), {
      signal: spec.signal,
      // a token fetch has retried on its own already
      retryable: (e) => e !== state.authFailure && isRetryable(e),
      ...(spec.retry === false ? { attempts: 1 } : {}),
    });
  }

  /** One attempt of request(): auth, redirects, and one fresh token when a 401 asks for it. */
  private async requestOnce(spec: RequestSpec, base: Base, state: AttemptState): Promise<RegistryResponse> {
    const origin = new URL(base.origin).origin;
    for (;;) {
      let url = new URL(spec.path, base.origin);
      this.checkScheme(url);
      const auth = await this.authorization(spec.scopes, spec.signal).catch((e: unknown) => {
        state.authFailure = e;
        throw e;
      });
      let res: RegistryResponse;
      let redirects = 0;
      let method = spec.method;
      let body: Uint8Array | string | Readable | undefined = typeof spec.body === 'function' ? spec.body() : spec.body;
      try {
        for (;;) {
          const headers: Record<string, string> = { ...(spec.headers ?? {}) };
          // Never hand our credentials to another origin (object storage behind a redirect).
          if (auth && url.origin === origin) headers.authorization = auth;
          res = await this.send({ method, url, headers, body, signal: spec.signal });
          if (res.status >= 300 && res.status < 400 && res.status !== 304 && header(res.headers, 'location')) {
            await discardBody(res.body);
            if (++redirects > 10) throw new ProtocolError(`${spec.what}: too many redirects`);
            url = new URL(header(res.headers, 'location')!, url);
            this.checkScheme(url);
            if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
              method = 'GET';
              body = undefined;
            } else if (typeof spec.body === 'function') {
              body = spec.body();
            }
            continue;
          }
          break;
        }
      } catch (e) {
        if (body instanceof Readable) body.destroy();
        if (spec.signal?.aborted) throw new AbortedError('operation aborted', { cause: spec.signal.reason });
        if (e instanceof ProtocolError) throw e;
        throw new TransportError(url.href, `${spec.what}: ${describeNetworkError(e)}`, { cause: e });
      }
      if (spec.expect.includes(res.status)) return res;
      if (body instanceof Readable) body.destroy();
      const text = spec.method === 'HEAD' ? '' : await readText(res.body);
      if (spec.method === 'HEAD') await discardBody(res.body);
      const diags = parseDiagnostics(text);
      if (res.status === 401 && base.challenge && !state.reauthed) {
        // the token may have expired or lack a scope the registry now names; fetch a fresh one once
        const challenges = parseChallenges(res.headers['www-authenticate']);
        const bearer = challenges.find((c) => c.scheme === 'bearer');
        if (bearer && base.challenge.scheme === 'bearer') base.challenge = { scheme: 'bearer', params: { ...base.challenge.params, ...bearer.params } };
        state.reauthed = true;
        await this.authorization(spec.scopes, spec.signal, true).catch((e: unknown) => {
          state.authFailure = e;
          throw e;
        });
        continue;
      }
      if (res.status === 401) {
        throw new AuthError(401, diags, spec.what, base.challenge?.params.realm, { body: text });
      }
      throw new RegistryError(res.status, diags, spec.what, { body: text, retryAfter: retryAfterMs(header(res.headers, 'retry-after')) });
    }
  }
}

export { header as responseHeader, readText as readResponseText };
