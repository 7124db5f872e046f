/**
 * A small Docker-style token server for registry tests (distribution's `auth.token` scheme):
 * `GET /token?service=&scope=...` with optional Basic credentials, and the OAuth2 `POST /token`
 * refresh-token grant, answering `{token, access_token, expires_in}` with an ES256 JWT whose
 * header carries the signing certificate (`x5c`), which the registry checks against the
 * `rootcertbundle` this helper writes. A key pair and self-signed certificate are made per server
 * with openssl.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface TokenRequestLog {
  method: string;
  user?: string;
  scopes: string[];
  status: number;
  grant?: string;
}

export interface TokenServerOptions {
  /** Directory for the key, certificate and bundle. */
  dir: string;
  /** user → password. */
  users: Record<string, string>;
  /** refresh token → user (for identity-token logins). */
  refreshTokens?: Record<string, string>;
  /** Actions a user gets on a repository; default: everything asked for by a known user, nothing for anonymous. */
  policy?: (user: string | undefined, repo: string, asked: string[]) => string[];
  service?: string;
  issuer?: string;
  expiresIn?: number;
}

export interface TokenServer {
  url: string;
  realm: string;
  service: string;
  issuer: string;
  /** PEM bundle for the registry's `auth.token.rootcertbundle`. */
  certBundle: string;
  log: TokenRequestLog[];
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function makeJwt(key: KeyObject, certDer: Buffer, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

function parseBasic(req: IncomingMessage): { user: string; pass: string } | undefined {
  const h = req.headers.authorization;
  if (!h?.startsWith('Basic ')) return undefined;
  const plain = Buffer.from(h.slice(6), 'base64').toString('utf8');
  const i = plain.indexOf(':');
  return i < 0 ? undefined : { user: plain.slice(0, i), pass: plain.slice(i + 1) };
}

function parseScope(s: string): { type: string; name: string; actions: string[] } | undefined {
  // repository:name:actions — the name may itself hold a port-less path, never a colon
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

export async function startTokenServer(o: TokenServerOptions): Promise<TokenServer> {
  const keyPath = join(o.dir, 'token.key');
  const certPath = join(o.dir, 'token.crt');
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=imgbuild-test-token-issuer',
  ], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const key = createPrivateKey(readFileSync(keyPath));
  const cert = new X509Certificate(readFileSync(certPath));
  const certDer = cert.raw;
  const service = o.service ?? 'imgbuild-test-registry';
  const issuer = o.issuer ?? 'imgbuild-test-issuer';
  const log: TokenRequestLog[] = [];
  const policy = o.policy ?? ((user, _repo, asked) => (user ? asked : []));

  const issue = (res: ServerResponse, user: string | undefined, scopes: string[], entry: TokenRequestLog): void => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes
      .map(parseScope)
      .filter((s): s is NonNullable<typeof s> => s !== undefined && s.type === 'repository')
      .map((s) => ({ type: s.type, name: s.name, actions: policy(user, s.name, s.actions) }));
    const token = makeJwt(key, certDer, {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + (o.expiresIn ?? 300),
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    });
    entry.status = 200;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: o.expiresIn ?? 300, issued_at: new Date().toISOString() }));
  };

  const deny = (res: ServerResponse, status: number, entry: TokenRequestLog, msg: string): void => {
    entry.status = status;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: status === 401 ? 'UNAUTHORIZED' : 'DENIED', message: msg }] }));
  };

  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'GET') {
      const scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const basic = parseBasic(req);
      const entry: TokenRequestLog = { method: 'GET', scopes, status: 0, ...(basic ? { user: basic.user } : {}) };
      log.push(entry);
      if (basic && o.users[basic.user] !== basic.pass) return deny(res, 401, entry, 'invalid username or password');
      return issue(res, basic?.user, scopes, entry);
    }
    if (req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const grant = form.get('grant_type') ?? '';
        const entry: TokenRequestLog = { method: 'POST', scopes, status: 0, grant };
        log.push(entry);
        if (grant === 'refresh_token') {
          const user = o.refreshTokens?.[form.get('refresh_token') ?? ''];
          if (!user) return deny(res, 401, entry, 'invalid refresh token');
          entry.user = user;
          return issue(res, user, scopes, entry);
        }
        if (grant === 'password') {
          const user = form.get('username') ?? '';
          if (o.users[user] !== form.get('password')) return deny(res, 401, entry, 'invalid username or password');
          entry.user = user;
          return issue(res, user, scopes, entry);
        }
        deny(res, 400, entry, `unsupported grant_type ${grant}`);
      });
      return;
    }
    res.writeHead(405).end();
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certBundle: certPath,
    log,
    stop: () =>
      new Promise<void>((res) => {
        server.closeAllConnections();
        server.close(() => res());
      }),
  };
}
