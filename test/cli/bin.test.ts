import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { CLI_EXE, CLI_MAIN, REPO_ROOT, runCli } from '../helpers/cli.js';
import { RegistrySession } from '../../src/registry/transport.js';
import { httpRequest } from '../../src/registry/http.js';

const { commandName, ownBundle, restoreDeferredCaEnv, sizeThreadPool, COMMANDS } = createRequire(import.meta.url)(CLI_MAIN) as {
  commandName: (a: string[]) => string;
  ownBundle: (a: string[]) => string | undefined;
  restoreDeferredCaEnv: (env: NodeJS.ProcessEnv) => void;
  sizeThreadPool: (command: string, env: NodeJS.ProcessEnv, cores: () => number, queueTask: () => void) => void;
  COMMANDS: ReadonlySet<string>;
};

/**
 * A private copy of the executable's entry and bundle (so its code-cache directory is its own,
 * untouched by other tests), and the cache file a command of it uses.
 */
async function privateCopy(dir: string): Promise<{ main: string; cacheOf: (command: string) => string; cacheDir: string }> {
  const cli = join(dir, 'dist', 'cli');
  await mkdir(cli, { recursive: true });
  const files = readdirSync(join(REPO_ROOT, 'dist', 'cli')).filter((f) => f === 'bin.cjs' || /^bundle(-[a-z]+)?\.cjs$/.test(f));
  for (const f of files) await copyFile(join(REPO_ROOT, 'dist', 'cli', f), join(cli, f));
  // Packages left outside the bundle resolve from its location.
  await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  const cacheDir = join(cli, 'code-cache');
  return {
    main: join(cli, 'bin.cjs'),
    cacheDir,
    // The cache of a command run from its own bundle (or from the whole one: `none`, `other`).
    cacheOf: (command) => {
      const own = join(cli, `bundle-${command}.cjs`);
      const st = statSync(existsSync(own) ? own : join(cli, 'bundle.cjs'));
      return join(cacheDir, `${command}-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}.bin`);
    },
  };
}

function node(main: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const { status, stdout, stderr } = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  return { status, stdout, stderr };
}

/** node() without blocking this process's event loop (for a server of the test's own). */
function nodeAsync(main: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject).on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

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

describe('the imgbuild executable (dist/cli/bin.cjs)', () => {
  it('names the command past the global options; the list matches the command table', async () => {
    expect(commandName(['--root', '/x', 'run', '--rm', 'busybox'])).toBe('run');
    expect(commandName(['--root=/x', 'pull', 'a'])).toBe('pull');
    expect(commandName(['images'])).toBe('images');
    expect(commandName(['--version'])).toBe('none');
    expect(commandName([])).toBe('none');
    // Mistyped or unknown commands share one cache, and nothing reaches a file name unchecked.
    expect(commandName(['imagse'])).toBe('other');
    expect(commandName(['../../etc/x'])).toBe('other');
    const { commandModules } = await import('../../src/cli/commands/table.js');
    const { commandGroups } = await import('../../src/cli/groups.js');
    expect([...COMMANDS].sort()).toEqual([...new Set([...commandModules.keys(), ...commandGroups.keys(), 'help'])].sort());
  });

  it('a command line that loads one command\'s module runs from that command\'s own bundle; others from the whole one', async () => {
    const { commandsFor } = await import('../../src/cli/index.js');
    const { commandModules } = await import('../../src/cli/commands/table.js');
    const { commandGroups, groupFor } = await import('../../src/cli/groups.js');
    const lines = [
      ['run', '--rm', 'busybox', 'true'], ['--root', '/r', 'ps', '-a'], ['--root=/r', 'images'], ['exec', '-h'],
      ['-h', 'run'], ['--help'], ['help', 'run'], ['--', 'run'], ['--version'], ['-V', 'ps'], [], ['imagse'],
      ['--root'], ['--root', 'run'], ...[...commandGroups.keys()].map((g) => [g, 'ls']), ...[...commandModules.keys()].map((c) => [c]),
    ];
    for (const args of lines) {
      const own = ownBundle(args);
      // The own bundle holds that command's module alone: chosen only where index.ts loads no other.
      if (own !== undefined) {
        expect(commandsFor(args), args.join(' ')).toEqual([own]);
        expect(groupFor(args), args.join(' ')).toBeUndefined();
      }
    }
    expect(lines.filter((a) => ownBundle(a) !== undefined).map((a) => ownBundle(a))).toEqual(['run', 'ps', 'images', 'exec', ...commandModules.keys()]);
    // Each table command has its bundle, holding its own module and not another command's.
    const dist = join(REPO_ROOT, 'dist', 'cli');
    const whole = statSync(join(dist, 'bundle.cjs')).size;
    for (const c of commandModules.keys()) {
      const file = join(dist, `bundle-${c}.cjs`);
      expect(statSync(file).size, c).toBeLessThan(whole);
    }
    const ps = readFileSync(join(dist, 'bundle-ps.cjs'), 'latin1');
    expect(ps).toContain('// src/cli/commands/ps.ts');
    expect(ps).not.toContain('// src/cli/commands/build.ts');
    expect(ps).not.toContain('// node_modules/undici/');
    // analyze's code (its own bundle) stays off run's path.
    const analyze = readFileSync(join(dist, 'bundle-analyze.cjs'), 'latin1');
    expect(analyze).toContain('// src/analyze/dive.ts');
    expect(analyze).not.toContain('// src/cli/commands/run.ts');
    expect(readFileSync(join(dist, 'bundle-run.cjs'), 'latin1')).not.toContain('// src/analyze/');
  });

  it('runs every command from its own bundle or the whole one alike', async () => {
    const tmp = await makeTmp();
    try {
      const cli = await privateCopy(tmp.dir);
      const root = join(tmp.dir, 'root');
      const ps = node(cli.main, ['--root', root, 'ps', '-a']);
      expect(ps.status, ps.stderr).toBe(0);
      expect(existsSync(cli.cacheOf('ps'))).toBe(true);
      // The group form runs the same module from the whole bundle and prints the same.
      expect(node(cli.main, ['--root', root, 'container', 'ls', '-a'])).toEqual(ps);
      const help = node(cli.main, ['run', '--help']);
      expect(help.status).toBe(0);
      expect(help.stdout).toContain('--rm');
      // Whole-bundle help still lists every command.
      expect(node(cli.main, ['--help']).stdout).toMatch(/\bbuild\b[\s\S]*\bversion\b/);
      // A usage error from an own bundle is one line, exit 125.
      const bad = node(cli.main, ['ps', '--no-such-flag']);
      expect([bad.status, bad.stderr.trim().split('\n').length]).toEqual([125, 1]);
    } finally {
      await tmp.cleanup();
    }
  });

  it('writes a code cache per command at exit, and runs correctly from it', async () => {
    const tmp = await makeTmp();
    try {
      const cli = await privateCopy(tmp.dir);
      const root = join(tmp.dir, 'root');
      const first = node(cli.main, ['--root', root, 'images', '-q']);
      expect(first.status, first.stderr).toBe(0);
      const file = cli.cacheOf('images');
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).size).toBeGreaterThan(1000);
      // The second run reads it (V8 accepts it: it is not rewritten) and behaves the same.
      const mtime = statSync(file).mtimeMs;
      const second = node(cli.main, ['--root', root, 'images', '-q']);
      expect(second).toEqual(first);
      expect(statSync(file).mtimeMs).toBe(mtime);
      // An unknown command goes to the shared `other` cache, and no temporary files are left.
      expect(node(cli.main, ['imagse']).status).toBe(125);
      expect(readdirSync(cli.cacheDir).sort()).toEqual([file, cli.cacheOf('other')].map((f) => f.slice(cli.cacheDir.length + 1)).sort());
    } finally {
      await tmp.cleanup();
    }
  });

  it('loads the packages left outside the bundle only when a command uses them', async () => {
    const tmp = await makeTmp();
    try {
      const cli = await privateCopy(tmp.dir);
      // Names every package the process requires (not Node's own modules, not files), at exit.
      const hook = join(tmp.dir, 'packages-hook.cjs');
      await writeFile(hook, `
const Module = require('node:module');
const load = Module._load;
const builtin = new Set(Module.builtinModules);
const seen = new Set();
Module._load = function (request, ...rest) {
  if (!request.startsWith('node:') && !builtin.has(request) && !/^[./]/.test(request)) seen.add(request);
  // A package's file required by its path (a binding the build located) counts as that package.
  const inPackage = /[/]node_modules[/]((?:@[^/]+[/])?[^/]+)[/]/.exec(request);
  if (request.startsWith('/') && inPackage) seen.add(inPackage[1]);
  return load.call(this, request, ...rest);
};
process.on('exit', () => process.stderr.write('packages: ' + [...seen].sort().join(' ') + '\\n'));
`);
      const packagesOf = (args: string[]): string[] => {
        const r = spawnSync(process.execPath, ['--require', hook, cli.main, ...args], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        const line = r.stderr.split('\n').find((l) => l.startsWith('packages: '));
        expect(line, r.stderr).toBeDefined();
        // A napi-rs package's platform binding, loaded straight on glibc Linux, stands for the package.
        return line!.slice('packages: '.length).split(' ').filter(Boolean).map((p) => p.replace(/^(@napi-rs\/blake-hash)-linux-\w+-gnu$/, '$1'));
      };
      const outside = ['@mongodb-js/zstd', '@napi-rs/blake-hash', 'fs-xattr', 'fzstd'];
      const root = join(tmp.dir, 'root');
      // --help initialises every command's modules, importers of all four among them.
      for (const args of [['--help'], ['--root', root, 'images']]) {
        expect(packagesOf(args).filter((p) => outside.includes(p)), args.join(' ')).toEqual([]);
      }
      // Packing a directory reads its xattrs; a build hashes its context with blake3.
      const ctx = join(tmp.dir, 'ctx');
      await mkdir(ctx);
      await writeFile(join(ctx, 'f'), 'hello\n');
      await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY f /f\n');
      expect(packagesOf(['--root', root, 'import', ctx, 'packed:1'])).toContain('fs-xattr');
      expect(packagesOf(['--root', root, 'build', '-q', '-t', 'built:1', ctx])).toContain('@napi-rs/blake-hash');
      const images = node(cli.main, ['--root', root, 'images', '--format', 'json']);
      const repositories = images.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { Repository: string }).Repository);
      expect(repositories.sort()).toEqual(['built', 'packed']);
    } finally {
      await tmp.cleanup();
    }
  });

  it('an HTTP command also lists the Node modules it loaded, and its next run loads them first', async () => {
    const tmp = await makeTmp();
    const servers: Server[] = [];
    try {
      const cli = await privateCopy(tmp.dir);
      const root = join(tmp.dir, 'root');
      // A registry that knows no image: the pull fails after its ping and manifest request.
      const reg = createHttpServer((req, res) => {
        if (req.url === '/v2/') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      });
      await new Promise<void>((res) => reg.listen(0, '127.0.0.1', res));
      servers.push(reg);
      const args = ['--root', root, 'pull', '-q', `127.0.0.1:${(reg.address() as { port: number }).port}/none/image:1`];
      const first = await nodeAsync(cli.main, args);
      expect(first.status).not.toBe(0);
      expect(first.stderr).toMatch(/MANIFEST_UNKNOWN/);
      const list = cli.cacheOf('pull').replace(/\.bin$/, '.builtins');
      const mods = readFileSync(list, 'utf8').trim().split('\n');
      // undici's transport and the digests; never a legacy `_name` module. No tls: the registry is
      // on loopback and speaks plain http, so nothing made a TLS connection.
      expect(mods).toEqual(expect.arrayContaining(['net', 'crypto']));
      expect(mods).not.toContain('tls');
      expect(mods.filter((m) => m.startsWith('_') || m.startsWith('internal/'))).toEqual([]);
      // The next run (modules preloaded, flags set, cache accepted) fails the same way.
      expect(await nodeAsync(cli.main, args)).toEqual(first);
      // A command that makes no HTTP request writes no list.
      expect(node(cli.main, ['--root', root, 'images', '-q']).status).toBe(0);
      expect(existsSync(cli.cacheOf('images').replace(/\.bin$/, '.builtins'))).toBe(false);
      // A stale list naming a module this Node lacks is skipped.
      writeFileSync(list, 'net\nno_such_module\n');
      expect(await nodeAsync(cli.main, args)).toEqual(first);
    } finally {
      for (const s of servers) s.close();
      await tmp.cleanup();
    }
  });

  it('a build sets its HTTP flags at its first request: a cached build never loads node:v8, and the code cache a pulling build writes is accepted', async () => {
    const tmp = await makeTmp();
    const servers: Server[] = [];
    try {
      const cli = await privateCopy(tmp.dir);
      const root = join(tmp.dir, 'root');
      await ensureBusybox(root);
      // The Node modules a run loaded, written at its exit by a module required before the CLI.
      const probe = join(tmp.dir, 'probe.cjs');
      const loaded = join(tmp.dir, 'loaded.txt');
      writeFileSync(probe, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(loaded)}, process.moduleLoadList.join('\\n')));`);
      const probed = async (args: string[]): Promise<{ status: number | null; stderr: string; modules: string[] }> => {
        const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
          const p = spawn(process.execPath, ['-r', probe, cli.main, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          p.on('close', (status) => res({ status, stderr }));
        });
        return { ...r, modules: readFileSync(loaded, 'utf8').split('\n').map((l) => l.replace(/^NativeModule /, '')) };
      };
      const cached = join(tmp.dir, 'cached');
      await mkdir(cached);
      writeFileSync(join(cached, 'Dockerfile'), 'FROM busybox\n');
      for (let i = 0; i < 2; i++) {
        const r = await probed(['--root', root, 'build', '-q', cached]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.modules).not.toContain('v8');
      }
      // A registry that knows no image: the build's pull fails after its ping and manifest request.
      const reg = createHttpServer((req, res) => {
        if (req.url === '/v2/') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      });
      await new Promise<void>((res) => reg.listen(0, '127.0.0.1', res));
      servers.push(reg);
      const pulling = join(tmp.dir, 'pulling');
      await mkdir(pulling);
      writeFileSync(join(pulling, 'Dockerfile'), `FROM 127.0.0.1:${(reg.address() as { port: number }).port}/none/image:1\n`);
      // A cache written by a build that pulled, made before its flags changed: the next run takes it.
      const file = cli.cacheOf('build');
      unlinkSync(file);
      const first = await probed(['--root', root, 'build', '-q', pulling]);
      expect(first.stderr).toMatch(/MANIFEST_UNKNOWN/);
      expect(first.modules).toContain('v8');
      const mtime = statSync(file).mtimeMs;
      const second = await probed(['--root', root, 'build', '-q', pulling]);
      expect(second.stderr).toBe(first.stderr);
      expect(statSync(file).mtimeMs).toBe(mtime);
      expect((await probed(['--root', root, 'build', '-q', cached])).modules).not.toContain('v8');
      expect(statSync(file).mtimeMs).toBe(mtime);
    } finally {
      for (const s of servers) s.close();
      await tmp.cleanup();
    }
  });

  it('a pull runs libuv\'s thread pool with one thread per core, 2 to 4, unless the user sized it', async () => {
    const sizes = (command: string, env: NodeJS.ProcessEnv, cores: number): (string | undefined)[] => {
      const seen: (string | undefined)[] = [];
      sizeThreadPool(command, env, () => cores, () => seen.push(env.UV_THREADPOOL_SIZE));
      // set only while the pool starts: nothing started later inherits it
      expect(env.UV_THREADPOOL_SIZE).toBeUndefined();
      return seen;
    };
    expect(sizes('pull', {}, 2)).toEqual(['2']);
    expect(sizes('pull', {}, 1)).toEqual(['2']);
    expect(sizes('pull', {}, 3)).toEqual(['3']);
    expect(sizes('pull', {}, 64)).toEqual(['4']);
    // the user's setting wins and stays; other commands are left alone
    const own = { UV_THREADPOOL_SIZE: '9' };
    sizeThreadPool('pull', own, () => 2, () => {});
    expect(own).toEqual({ UV_THREADPOOL_SIZE: '9' });
    expect(sizes('build', {}, 2)).toEqual([]);
    expect(sizes('push', {}, 2)).toEqual([]);

    // The real process: a pull waiting on a registry that never answers has that many pool
    // threads fewer than one told to use libuv's default of 4.
    const tmp = await makeTmp();
    const held: import('node:net').Socket[] = [];
    const silent = (await import('node:net')).createServer((s) => held.push(s));
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
    const args = [CLI_MAIN, '--root', join(tmp.dir, 'root'), 'pull', '-q', `127.0.0.1:${(silent.address() as { port: number }).port}/x:1`];
    const threadsOf = async (env: NodeJS.ProcessEnv): Promise<number> => {
      const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
      try {
        const deadline = Date.now() + 10_000;
        while (held.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(held.length).toBeGreaterThan(0);
        await new Promise((r) => setTimeout(r, 100)); // the pool has started by now either way
        return readdirSync(`/proc/${child.pid}/task`).length;
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        for (const s of held.splice(0)) s.destroy();
      }
    };
    try {
      const env = { ...process.env };
      delete env.UV_THREADPOOL_SIZE;
      const ours = await threadsOf(env);
      const four = await threadsOf({ ...env, UV_THREADPOOL_SIZE: '4' });
      expect(four - ours).toBe(4 - Math.min(4, Math.max(2, availableParallelism())));
    } finally {
      silent.close();
      await tmp.cleanup();
    }
  });

  it('ignores a damaged cache and replaces it', async () => {
    const tmp = await makeTmp();
    try {
      const cli = await privateCopy(tmp.dir);
      expect(node(cli.main, ['--version']).status).toBe(0);
      const file = cli.cacheOf('none');
      const good = readFileSync(file);
      // Garbage of the same length: V8 refuses it, the CLI still works, and the file is rewritten.
      writeFileSync(file, Buffer.alloc(good.length, 0x5a));
      const v = node(cli.main, ['--version']);
      expect(v.status).toBe(0);
      expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
      expect(readFileSync(file).equals(Buffer.alloc(good.length, 0x5a))).toBe(false);
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

  it('the executable finds its program when started through a symlink to it or to its directory', async () => {
    const tmp = await makeTmp();
    try {
      await symlink(CLI_EXE, join(tmp.dir, 'imgbuild'));
      await symlink(join(REPO_ROOT, 'bin'), join(tmp.dir, 'bin'));
      await mkdir(join(tmp.dir, 'linked'));
      await symlink(REPO_ROOT, join(tmp.dir, 'linked', 'pkg'));
      const starts: [string, string[], string | undefined][] = [
        [CLI_EXE, [], undefined],
        [join(tmp.dir, 'imgbuild'), [], undefined],
        [join(tmp.dir, 'bin', 'imgbuild'), [], undefined],
        [join(tmp.dir, 'linked', 'pkg', 'bin', 'imgbuild'), [], undefined],
        // `sh imgbuild` in its own directory: $0 has no slash
        ['sh', ['imgbuild'], join(REPO_ROOT, 'bin')],
      ];
      for (const [cmd, pre, cwd] of starts) {
        const r = spawnSync(cmd, [...pre, '--version'], { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
        expect({ cmd, pre, status: r.status, stderr: r.stderr }).toEqual({ cmd, pre, status: 0, stderr: '' });
        expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
      }
    } finally {
      await tmp.cleanup();
    }
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
