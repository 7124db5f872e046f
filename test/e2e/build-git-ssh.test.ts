/**
 * Git over ssh with `build --ssh`: a git context and `ADD` of an `ssh://` and an scp-like
 * (`user@host:path`) remote, served by dropbear on 127.0.0.1 (in a mount namespace of its own whose
 * /root is a tmpfs holding only the test key as authorized_keys), the key reaching git only
 * through the agent imgbuild serves for `--ssh default=KEY`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { writeContext } from '../helpers/context.js';
import { makeRepo } from '../helpers/git-server.js';

const haveDropbear = spawnSync('dropbear', ['-V'], { encoding: 'utf8' }).status !== null;

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let repos: string;
let port: number;
let server: ChildProcess | undefined;
let gitSsh: string;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

beforeAll(async () => {
  if (!haveDropbear) return;
  tmp = await makeTmp('imgbuild-e2e-git-ssh-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  repos = join(tmp.dir, 'repos');
  await mkdir(repos);
  makeRepo(repos, 'app', [{ files: { 'Dockerfile': 'FROM busybox\nCOPY . /src\n', 'f.txt': 'over ssh\n' }, tag: 'v1' }]);
  const key = join(tmp.dir, 'client');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const hostKey = join(tmp.dir, 'hostkey');
  const made = spawnSync('dropbearkey', ['-t', 'ed25519', '-f', hostKey], { encoding: 'utf8' });
  const hostPub = /^(ssh-ed25519 \S+)/m.exec(made.stdout)?.[1];
  if (!hostPub) throw new Error(`dropbearkey: ${made.stderr}`);
  port = await freePort();
  await writeFile(join(tmp.dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPub}\n`);
  const authorized = join(tmp.dir, 'authorized_keys');
  await writeFile(authorized, await readFile(`${key}.pub`));
  // /root of the server's own mount namespace is a tmpfs: the host's is never touched.
  server = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
    `mount -t tmpfs -o mode=0700 none /root && mkdir -m 700 /root/.ssh && cp ${authorized} /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && exec dropbear -F -E -s -p 127.0.0.1:${port} -r ${hostKey} -P ${join(tmp.dir, 'dropbear.pid')}`,
  ], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  gitSsh = `ssh -F /dev/null -o UserKnownHostsFile=${join(tmp.dir, 'known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentityFile=/nonexistent`;
}, 120_000);
afterAll(async () => {
  if (server?.pid && server.exitCode === null) server.kill();
  await tmp?.cleanup();
});

async function imgbuild(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { root, env: { SSH_AUTH_SOCK: '', ...env } });
}

describe.skipIf(!haveDropbear)('git over ssh (dropbear on 127.0.0.1; skipped without dropbear-bin)', () => {
  it('builds an ssh:// git context with the key given to --ssh default', async () => {
    const url = `ssh://root@127.0.0.1:${port}${repos}/app.git#v1`;
    const r = await imgbuild(['build', '-q', '-t', 'ssh-ctx', '--ssh', `default=${join(tmp.dir, 'client')}`, url], { GIT_SSH_COMMAND: gitSsh });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = await runCli(['run', '--rm', 'ssh-ctx', 'cat', '/src/f.txt'], { root });
    expect(out.stdout).toBe('over ssh\n');
  });

  it('adds an scp-like remote (user@host:path) with ADD', async () => {
    const ctx = await writeContext(tmp.dir, 'scp', { 'Dockerfile': `FROM busybox\nADD root@127.0.0.1:${repos}/app.git#v1 /a\n` });
    const r = await imgbuild(['build', '-q', '-t', 'ssh-add', '--ssh', `default=${join(tmp.dir, 'client')}`, ctx], { GIT_SSH_COMMAND: `${gitSsh} -p ${port}` });
    expect(r.stderr).toBe('');
    const out = await runCli(['run', '--rm', 'ssh-add', 'cat', '/a/f.txt'], { root });
    expect(out.stdout).toBe('over ssh\n');
  });

  it('fails in one line without the key', async () => {
    const url = `ssh://root@127.0.0.1:${port}${repos}/app.git#v1`;
    expectOneLineError(await imgbuild(['build', '-q', url], { GIT_SSH_COMMAND: gitSsh }), /^imgbuild: UNAVAILABLE: git source ssh:\/\/root@127\.0\.0\.1:\d+\S*app\.git: git ls-remote failed: .*Permission denied/);
  });
});
