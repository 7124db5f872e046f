/** Keychain lookups in docker's config.json and credential helpers; WWW-Authenticate parsing. */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { Keychain, configKey, keyHost } from '../../src/registry/auth.js';
import { parseChallenges, repositoryScope } from '../../src/registry/transport.js';
import { CredentialHelperError } from '../../src/registry/errors.js';

const tmp = await makeTmp('imgbuild-remote-auth-');
afterAll(() => tmp.cleanup());
let n = 0;

async function configDir(doc: unknown): Promise<NodeJS.ProcessEnv> {
  const dir = join(tmp.dir, `cfg-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(doc));
  return { ...process.env, DOCKER_CONFIG: dir };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('config.json keys', () => {
  it('maps docker.io to its historical key and back', () => {
    expect(configKey('docker.io')).toBe('https://index.docker.io/v1/');
    expect(keyHost('https://index.docker.io/v1/')).toBe('docker.io');
    expect(keyHost('registry-1.docker.io')).toBe('docker.io');
    expect(keyHost('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    expect(keyHost('ghcr.io')).toBe('ghcr.io');
  });

  it('reads base64 auth under any spelling of the host', async () => {
    const env = await configDir({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') }, 'http://r.example:5000/v1/': { auth: b64('u:p:with:colons') } } });
    const kc = new Keychain({ env });
    expect(await kc.credential('docker.io')).toEqual({ username: 'hub', password: 'pw' });
    expect(await kc.credential('r.example:5000')).toEqual({ username: 'u', password: 'p:with:colons' });
    expect(await kc.credential('other.example')).toBeUndefined();
  });

  it('reads identity tokens', async () => {
    const env = await configDir({ auths: { 'ghcr.io': { identitytoken: 'refresh-1' } } });
    expect(await new Keychain({ env }).credential('ghcr.io')).toEqual({ identityToken: 'refresh-1' });
  });

  it('a missing config means anonymous', async () => {
    const env = { ...process.env, DOCKER_CONFIG: join(tmp.dir, 'does-not-exist') };
    expect(await new Keychain({ env }).credential('docker.io')).toBeUndefined();
  });

  it('store writes base64 with mode 0600 and keeps other settings; erase removes it', async () => {
    const env = await configDir({ auths: { 'https://x.example': { auth: b64('old:old') } }, psFormat: 'table' });
    const kc = new Keychain({ env });
    await kc.store('x.example', { username: 'new', password: 'secret' });
    const doc = JSON.parse(await readFile(kc.path, 'utf8')) as { auths: Record<string, { auth: string }>; psFormat: string };
    expect(doc.psFormat).toBe('table');
    expect(Object.keys(doc.auths)).toEqual(['x.example']);
    expect(await kc.credential('x.example')).toEqual({ username: 'new', password: 'secret' });
    const { stat } = await import('node:fs/promises');
    expect((await stat(kc.path)).mode & 0o777).toBe(0o600);
    expect(await kc.erase('x.example')).toBe(true);
    expect(await kc.credential('x.example')).toBeUndefined();
    expect(await kc.erase('x.example')).toBe(false);
  });
});

describe('credential helpers', () => {
  async function helper(name: string, body: string): Promise<string> {
    const bin = join(tmp.dir, `bin-${++n}`);
    await mkdir(bin, { recursive: true });
    const p = join(bin, `docker-credential-${name}`);
    await writeFile(p, `#!/bin/sh\n${body}\n`);
    await chmod(p, 0o755);
    return bin;
  }

  it('credHelpers wins over credsStore for its host; <token> user means identity token', async () => {
    const a = await helper('aaa', 'read url; echo "{\\"ServerURL\\":\\"$url\\",\\"Username\\":\\"from-aaa\\",\\"Secret\\":\\"s1\\"}"');
    const b = await helper('bbb', 'read url; echo "{\\"ServerURL\\":\\"$url\\",\\"Username\\":\\"<token>\\",\\"Secret\\":\\"tok\\"}"');
    const env = { ...(await configDir({ credsStore: 'aaa', credHelpers: { 'special.example': 'bbb' } })), PATH: `${a}:${b}:${process.env.PATH}` };
    const kc = new Keychain({ env });
    expect(await kc.credential('plain.example')).toEqual({ username: 'from-aaa', password: 's1' });
    expect(await kc.credential('special.example')).toEqual({ identityToken: 'tok' });
  });

  it('"credentials not found" falls back to auths; other failures are errors', async () => {
    const nf = await helper('nf', 'echo "credentials not found in native keychain"; exit 1');
    const env = { ...(await configDir({ credsStore: 'nf', auths: { 'r.example': { auth: b64('a:b') } } })), PATH: `${nf}:${process.env.PATH}` };
    expect(await new Keychain({ env }).credential('r.example')).toEqual({ username: 'a', password: 'b' });
    const bad = await helper('bad', 'echo "keyring locked" >&2; exit 3');
    const env2 = { ...(await configDir({ credsStore: 'bad' })), PATH: `${bad}:${process.env.PATH}` };
    const err = await new Keychain({ env: env2 }).credential('r.example').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialHelperError);
    expect((err as Error).message).toMatch(/keyring locked/);
  });
});

describe('WWW-Authenticate', () => {
  it('parses bearer parameters with quoted commas', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull,push' } },
    ]);
  });

  it('parses several challenges and unquoted values', () => {
    expect(parseChallenges(['Basic realm="Registry Realm"', 'Bearer realm=https://t/token, error=insufficient_scope'])).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', error: 'insufficient_scope' } },
    ]);
    expect(parseChallenges('Basic realm="a", Bearer realm="b"').map((c) => c.scheme)).toEqual(['basic', 'bearer']);
  });

  it('scopes name sorted actions', () => {
    expect(repositoryScope('a/b', ['push', 'pull'])).toBe('repository:a/b:pull,push');
  });
});
