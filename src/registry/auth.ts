/**
 * Credentials for registries, read the way the docker CLI reads them (ggcr authn.DefaultKeychain):
 * `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`) with
 *  - `credHelpers: { "<host>": "<x>" }` → run `docker-credential-<x> get` for that host,
 *  - `credsStore: "<x>"` → the same helper for every host,
 *  - `auths: { "<key>": { auth: base64(user:pass), identitytoken } }` otherwise.
 * Keys are matched by host name, whatever scheme or path they carry (`https://index.docker.io/v1/`
 * is docker.io's historical key).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { writeFileAtomic, withLock } from '../atomic.js';
import { DEFAULT_REGISTRY } from '../image/reference.js';
import { CredentialHelperError } from './errors.js';
import { ImgbuildError } from '../errors.js';
import { mkdirp } from '../fs.js';

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint with a POST. */
  identityToken?: string;
  /** A bearer token to use as is (`registrytoken`). */
  registryToken?: string;
}

/** Supplies credentials for a registry (as spelled in references: `docker.io`, `127.0.0.1:5000`). */
export interface Authenticator {
  credential(registry: string): Promise<Credential | undefined>;
}

/** The key docker uses in config.json for a registry. */
export function configKey(registry: string): string {
  return registry === DEFAULT_REGISTRY ? 'https://index.docker.io/v1/' : registry;
}

/** The host part of a config.json key (`https://index.docker.io/v1/` → `docker.io`). */
export function keyHost(key: string): string {
  let h = key.replace(/^[a-z]+:\/\//i, '');
  h = h.split('/')[0] ?? h;
  if (h === 'index.docker.io' || h === 'registry-1.docker.io' || h === 'docker.io') return DEFAULT_REGISTRY;
  return h;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  return join(dir, 'config.json');
}

async function readConfig(path: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  if (text.trim() === '') return {};
  try {
    const doc = JSON.parse(text) as unknown;
    return typeof doc === 'object' && doc !== null ? (doc as DockerConfigFile) : {};
  } catch (e) {
    throw new ImgbuildError('FAILED_PRECONDITION', `${path}: not valid JSON`, { cause: e });
  }
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  // Loaded when a helper is configured: `login` and `logout` load node:child_process for nothing
  // else. (Not an import(): the CLI bundle runs in vm.Script, which has no loader for one.)
  const { spawn } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new CredentialHelperError(helper, `cannot run: ${(e as Error).message}`, { cause: e })));
    child.on('close', (code) => resolve({ code: code ?? 1, out, err }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

function decodeAuth(entry: AuthEntry, key: string): Credential | undefined {
  const cred: Credential = {};
  if (entry.auth) {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i < 0) throw new ImgbuildError('FAILED_PRECONDITION', `docker config: "auth" for ${key} is not base64(user:password)`);
    cred.username = plain.slice(0, i);
    cred.password = plain.slice(i + 1);
  } else if (entry.username !== undefined) {
    cred.username = entry.username;
    cred.password = entry.password ?? '';
  }
  if (entry.identitytoken) cred.identityToken = entry.identitytoken;
  if (entry.registrytoken) cred.registryToken = entry.registrytoken;
  return Object.keys(cred).length ? cred : undefined;
}

/** The docker CLI's credential store: config.json plus credential helper programs. */
export class Keychain implements Authenticator {
  readonly path: string;

  constructor(private readonly opts: { env?: NodeJS.ProcessEnv; path?: string } = {}) {
    this.path = opts.path ?? dockerConfigPath(opts.env);
  }

  private get env(): NodeJS.ProcessEnv {
    return this.opts.env ?? process.env;
  }

  /** The helper in charge of a registry, if any. */
  private helperFor(cfg: DockerConfigFile, registry: string): string | undefined {
    for (const [k, v] of Object.entries(cfg.credHelpers ?? {})) if (keyHost(k) === registry && v) return v;
    return cfg.credsStore || undefined;
  }

  async credential(registry: string): Promise<Credential | undefined> {
    const cfg = await readConfig(this.path);
    const helper = this.helperFor(cfg, registry);
    if (helper) {
      const fromHelper = await this.fromHelper(helper, registry);
      if (fromHelper) return fromHelper;
    }
    const entries = Object.entries(cfg.auths ?? {});
    // exact key first (as written by login), then any key naming the same host
    const exact = cfg.auths?.[configKey(registry)];
    if (exact) {
      const c = decodeAuth(exact, configKey(registry));
      if (c) return c;
    }
    for (const [k, v] of entries) {
      if (keyHost(k) !== registry) continue;
      const c = decodeAuth(v, k);
      if (c) return c;
    }
    return undefined;
  }

  private async fromHelper(helper: string, registry: string): Promise<Credential | undefined> {
    // Helpers store under the server URL the docker CLI used; docker.io is its historical URL.
    const serverUrls = registry === DEFAULT_REGISTRY ? [configKey(registry)] : [registry, `https://${registry}`];
    for (const url of serverUrls) {
      const r = await runHelper(helper, 'get', url, this.env);
      if (r.code !== 0) {
        if (/credentials not found/i.test(r.out + r.err)) continue;
        throw new CredentialHelperError(helper, `get ${url} exited ${r.code}: ${(r.err || r.out).trim()}`);
      }
      let doc: { Username?: string; Secret?: string };
      try {
        doc = JSON.parse(r.out) as { Username?: string; Secret?: string };
      } catch (e) {
        throw new CredentialHelperError(helper, `get ${url} printed invalid JSON`, { cause: e });
      }
      if (!doc.Secret) continue;
      // docker's convention: the user name "<token>" marks an identity (refresh) token
      if (doc.Username === '<token>') return { identityToken: doc.Secret };
      return { username: doc.Username ?? '', password: doc.Secret };
    }
    return undefined;
  }

  /** Saves credentials after a successful login: in the configured helper, else base64 in `auths`. */
  async store(registry: string, cred: { username: string; password: string }): Promise<{ where: string }> {
    return withLock(this.path, async () => {
      const cfg = await readConfig(this.path);
      const helper = this.helperFor(cfg, registry);
      const key = configKey(registry);
      if (helper) {
        const r = await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: cred.username, Secret: cred.password }), this.env);
        if (r.code !== 0) throw new CredentialHelperError(helper, `store ${key} exited ${r.code}: ${(r.err || r.out).trim()}`);
        // docker leaves an empty entry in auths so `docker login` listings still show the registry
        cfg.auths = { ...(cfg.auths ?? {}), [key]: {} };
      } else {
        const auths = { ...(cfg.auths ?? {}) };
        for (const k of Object.keys(auths)) if (k !== key && keyHost(k) === registry) delete auths[k];
        auths[key] = { auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') };
        cfg.auths = auths;
      }
      await mkdirp(dirname(this.path), 0o700);
      await writeFileAtomic(this.path, `${JSON.stringify(cfg, null, '\t')}\n`, 0o600);
      return { where: helper ? `docker-credential-${helper}` : this.path };
    });
  }

  /** Forgets a registry's credentials; returns false when there were none. */
  async erase(registry: string): Promise<boolean> {
    return withLock(this.path, async () => {
      const cfg = await readConfig(this.path);
      const helper = this.helperFor(cfg, registry);
      let found = false;
      if (helper) {
        const r = await runHelper(helper, 'erase', configKey(registry), this.env);
        if (r.code === 0) found = true;
        else if (!/credentials not found/i.test(r.out + r.err)) {
          throw new CredentialHelperError(helper, `erase exited ${r.code}: ${(r.err || r.out).trim()}`);
        }
      }
      const auths = { ...(cfg.auths ?? {}) };
      for (const k of Object.keys(auths)) {
        if (keyHost(k) === registry) {
          delete auths[k];
          found = true;
        }
      }
      if (cfg.auths) {
        cfg.auths = auths;
        await writeFileAtomic(this.path, `${JSON.stringify(cfg, null, '\t')}\n`, 0o600);
      }
      return found;
    });
  }
}

/** Fixed credentials (login verification, tests, API callers that hold a token). */
export class StaticAuthenticator implements Authenticator {
  constructor(private readonly creds: Record<string, Credential>) {}
  async credential(registry: string): Promise<Credential | undefined> {
    return this.creds[registry];
  }
}

export const anonymous: Authenticator = { credential: async () => undefined };
