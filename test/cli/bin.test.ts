import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { CLI_EXE, CLI_MAIN, REPO_ROOT, runCli } from '../helpers/cli.js';
import { RegistrySession } from '../../src/layers/remote/transport.js';
import { httpRequest } from '../../src/layers/remote/http.js';

const CACHE_DIR = join(REPO_ROOT, 'dist', 'cli', 'code-cache');
const BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'bundle.cjs');
const { commandName, restoreDeferredCaEnv } = createRequire(import.meta.url)(CLI_MAIN) as {
  commandName: (a: string[]) => string;
  restoreDeferredCaEnv: (env: NodeJS.ProcessEnv) => void;
};

/** A self-signed certificate for 127.0.0.1 (openssl), and an https server using it. */
async function tlsServer(dir: string, body: Buffer): Promise<{ port: number; cert: string; close: () => Promise<void> }> {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    if (req.url === '/files/tool.sh') res.writeHead(200).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as { port: number }).port,
    cert,
    close: () => new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    }),
  };
}

/** The cache file the executable uses for `command` with the current bundle and Node. */
function cacheFileOf(command: string): string {
  const st = statSync(BUNDLE);
  return join(CACHE_DIR, `${command}-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}.bin`);
}

describe('the imgbuild executable (dist/cli/bin.cjs)', () => {
  it('names the command past the global options', () => {
    expect(commandName(['--root', '/x', 'run', '--rm', 'busybox'])).toBe('run');
    expect(commandName(['--root=/x', 'pull', 'a'])).toBe('pull');
    expect(commandName(['images'])).toBe('images');
    expect(commandName(['--version'])).toBe('none');
    expect(commandName([])).toBe('none');
    // Never a path component: anything but a plain word shares one file.
    expect(commandName(['../../etc/x'])).toBe('other');
    expect(commandName(['RUN'])).toBe('other');
  });

  it('writes a code cache per command at exit, and runs correctly from it', async () => {
    const tmp = await makeTmp();
    try {
      // A command name of its own, so no other test touches this cache file.
      const file = cacheFileOf('cachecheck');
      const first = await runCli(['cachecheck'], { root: tmp.dir });
      expect(first.code).toBe(2);
      expect(first.stderr).toMatch(/unknown command 'cachecheck'/);
      expect(existsSync(file)).toBe(true);
      const size = statSync(file).size;
      expect(size).toBeGreaterThan(1000);
      // The second run reads it (V8 accepts it: it is not rewritten) and behaves the same.
      const mtime = statSync(file).mtimeMs;
      const second = await runCli(['cachecheck'], { root: tmp.dir });
      expect(second).toEqual(first);
      expect(statSync(file).mtimeMs).toBe(mtime);
      // No temporary files are left beside the caches.
      expect(readdirSync(CACHE_DIR).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });

  it('ignores a damaged cache and replaces it', async () => {
    const tmp = await makeTmp();
    try {
      const file = cacheFileOf('damagedcache');
      await runCli(['damagedcache'], { root: tmp.dir });
      const good = readFileSync(file);
      // Garbage of the same length: V8 refuses it, the CLI still works, and the file is rewritten.
      writeFileSync(file, Buffer.alloc(good.length, 0x5a));
      const r = await runCli(['damagedcache'], { root: tmp.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/unknown command 'damagedcache'/);
      expect(readFileSync(file).equals(Buffer.alloc(good.length, 0x5a))).toBe(false);
      const v = await runCli(['--version'], { root: tmp.dir });
      expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('defers NODE_EXTRA_CA_CERTS past Node\'s start, and puts it back for child processes', async () => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/extra-ca.pem' };
    // Node itself reads the file while it starts (and warns that it cannot)...
    const direct = spawnSync(process.execPath, [CLI_MAIN, '--version'], { env, encoding: 'utf8' });
    expect(direct.stderr).toMatch(/Ignoring extra certs from `\/nonexistent\/extra-ca\.pem`/);
    // ...which the executable moves past: the command runs and Node never looked at the file.
    const viaExe = spawnSync(CLI_EXE, ['--version'], { env, encoding: 'utf8' });
    expect(viaExe.status).toBe(0);
    expect(viaExe.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(viaExe.stderr).toBe('');
    const e: NodeJS.ProcessEnv = { IMGBUILD_DEFERRED_CA_CERTS: '/x.pem' };
    restoreDeferredCaEnv(e);
    expect(e).toEqual({ IMGBUILD_DEFERRED_CA_CERTS: '/x.pem', NODE_EXTRA_CA_CERTS: '/x.pem' });
    const none: NodeJS.ProcessEnv = {};
    restoreDeferredCaEnv(none);
    expect(none).toEqual({});
  });

  it('the registry client and ADD trust deferred certificates in verified TLS', async () => {
    const tmp = await makeTmp();
    const body = Buffer.from('over tls\n');
    const srv = await tlsServer(tmp.dir, body);
    try {
      // The registry session's verifying agent: refused without the certificate, accepted with it.
      const url = new URL(`https://127.0.0.1:${srv.port}/files/tool.sh`);
      const plain = new RegistrySession({ env: {} });
      const refused = await httpRequest(url, { dispatcher: plain.agent(false), method: 'GET' }).catch((e: unknown) => e);
      expect(String((refused as Error & { code?: string }).code ?? refused)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
      const trusting = new RegistrySession({ env: { IMGBUILD_DEFERRED_CA_CERTS: srv.cert } });
      const ok = await httpRequest(url, { dispatcher: trusting.agent(false), method: 'GET' });
      expect(ok.statusCode).toBe(200);
      expect(await ok.body.text()).toBe(body.toString());
      await Promise.all([plain.close(), trusting.close()]);

      // ADD of an https URL through the executable, the certificate given as NODE_EXTRA_CA_CERTS.
      const ctx = join(tmp.dir, 'ctx');
      await mkdir(ctx);
      await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${url.href} /opt/tool.sh\n`);
      const root = join(tmp.dir, 'root');
      const built = await runCli(['build', '-q', ctx], { root, env: { NODE_EXTRA_CA_CERTS: srv.cert } });
      expect(built.code, built.stderr).toBe(0);
      expect(built.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
      const untrusted = await runCli(['build', '-q', '--no-cache', ctx], { root, env: { NODE_EXTRA_CA_CERTS: '' } });
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.stderr).toMatch(/UNAVAILABLE: .*ADD https:\/\/127\.0\.0\.1:\d+\/files\/tool\.sh: self[- ]signed certificate/);
    } finally {
      await srv.close();
      await tmp.cleanup();
    }
  });
});
