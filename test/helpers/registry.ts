/**
 * Starts the real CNCF distribution registry (Debian `docker-registry`, `/usr/bin/docker-registry
 * serve <config>`) on 127.0.0.1 with a free port and its own storage dir, in one of three modes:
 * no auth, htpasswd Basic (bcrypt entries from `htpasswd -Bbn`), or token auth backed by
 * test/helpers/token-server.ts. `stop()` kills the registry by pid and removes its files.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { makeTmp } from './tmp.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from './token-server.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export type RegistryMode = 'none' | 'basic' | 'token';

export interface TestRegistry {
  mode: RegistryMode;
  /** `127.0.0.1:<port>`, usable as the registry part of a reference. */
  host: string;
  port: number;
  url: string;
  storage: string;
  users: Record<string, string>;
  token?: TokenServer;
  pid: number;
  /** Output of the registry process (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  mode?: RegistryMode;
  users?: Record<string, string>;
  tokenPolicy?: TokenServerOptions['policy'];
  refreshTokens?: Record<string, string>;
  /** Serve https with a self-signed certificate for 127.0.0.1 (made with openssl). */
  tls?: boolean;
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, out: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${out()}`);
      try {
        const res = await request(`${url}/v2/`, { dispatcher });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${out()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await dispatcher.close();
  }
}

export async function startRegistry(o: RegistryOptions = {}): Promise<TestRegistry> {
  const mode = o.mode ?? 'none';
  const users = o.users ?? (mode === 'none' ? {} : { alice: 'wonderland', bob: 'builder' });
  const tmp = await makeTmp('imgbuild-registry-');
  const storage = join(tmp.dir, 'storage');
  await mkdir(storage);
  let token: TokenServer | undefined;
  let auth: Record<string, unknown> | undefined;
  if (mode === 'basic') {
    const lines: string[] = [];
    for (const [u, p] of Object.entries(users)) {
      const r = spawnSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
      lines.push(r.stdout.trim());
    }
    const file = join(tmp.dir, 'htpasswd');
    await writeFile(file, `${lines.join('\n')}\n`);
    auth = { htpasswd: { realm: 'imgbuild-test-realm', path: file } };
  } else if (mode === 'token') {
    token = await startTokenServer({
      dir: tmp.dir,
      users,
      ...(o.tokenPolicy ? { policy: o.tokenPolicy } : {}),
      ...(o.refreshTokens ? { refreshTokens: o.refreshTokens } : {}),
    });
    auth = { token: { realm: token.realm, service: token.service, issuer: token.issuer, rootcertbundle: token.certBundle } };
  }
  const port = await freePort();
  let tls: Record<string, string> | undefined;
  if (o.tls) {
    const key = join(tmp.dir, 'tls.key');
    const certificate = join(tmp.dir, 'tls.crt');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', certificate, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    tls = { certificate, key };
  }
  const config = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `127.0.0.1:${port}`, secret: 'imgbuild-test-secret', ...(tls ? { tls } : {}) },
    ...(auth ? { auth } : {}),
  };
  // JSON is YAML, so the config needs no YAML writer.
  const configPath = join(tmp.dir, 'config.yml');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const child = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-8000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-8000)));
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  // never outlive the test process, even when a test forgets stop() or the worker dies
  const onExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);
  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    await token?.stop();
    await tmp.cleanup();
  };
  try {
    await waitReady(url, child, () => output);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    mode,
    host: `127.0.0.1:${port}`,
    port,
    url,
    storage,
    users,
    ...(token ? { token } : {}),
    pid: child.pid!,
    output: () => output,
    stop,
  };
}
