/**
 * `RUN --mount=type=ssh` with `build --ssh`: a local ssh-agent forwarded (`--ssh default` from
 * SSH_AUTH_SOCK, `--ssh id=SOCKET`) and key files (`--ssh id=KEY,KEY`), listed inside the RUN by
 * the static test-init's `ssh-ids` (busybox has no ssh client), with BuildKit's options: id,
 * target (default /run/buildkit/ssh_agent.N), required, mode, uid, gid; SSH_AUTH_SOCK set to the
 * first socket; nothing of it in a layer or in the cache key.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError, REPO_ROOT } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { writeContext } from '../helpers/context.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { openLayerTar } from '../../src/store/layers.js';
import { readTar } from '../../src/tar/reader.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let agent: ChildProcess | undefined;
let agentSock: string;

function keygen(name: string, type: string): string {
  const p = join(tmp.dir, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `comment-${name}`, '-f', p], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return p;
}

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-ssh-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  agentSock = join(tmp.dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !(await stat(agentSock).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 20));
  const added = spawnSync('ssh-add', [keygen('in-agent', 'ed25519')], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, encoding: 'utf8' });
  if (added.status !== 0) throw new Error(added.stderr);
  keygen('file-ed', 'ed25519');
  keygen('file-ec', 'ecdsa');
}, 120_000);
afterAll(async () => {
  if (agent?.pid && agent.exitCode === null) agent.kill();
  await tmp.cleanup();
});

/** A context with test-init (static: it runs in busybox) and the Dockerfile lines after FROM. */
async function context(name: string, lines: string[]): Promise<string> {
  const dir = await writeContext(tmp.dir, name, { 'Dockerfile': ['FROM busybox', 'COPY test-init /bin/test-init', ...lines].join('\n') + '\n' });
  await copyFile(join(REPO_ROOT, 'native', 'build', 'test-init'), join(dir, 'test-init'));
  return dir;
}

async function imgbuild(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { root, env });
}

async function buildOk(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await imgbuild(['build', '--progress=plain', ...args], env);
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return r.stderr;
}

async function cat(ref: string, ...files: string[]): Promise<string> {
  const r = await imgbuild(['run', '--rm', ref, 'cat', ...files]);
  if (r.code !== 0) throw new Error(`run failed: ${r.stderr}`);
  return r.stdout;
}

/** Every path in the image's layers. */
async function layerPaths(ref: string): Promise<string[]> {
  const store = await OciStore.open(root);
  const img = await findImage(store, ref);
  const out: string[] = [];
  for (const l of img.manifest.layers) for await (const e of readTar(await openLayerTar(store, l))) out.push(e.header.name.replace(/\/$/, ''));
  return out;
}

describe('RUN --mount=type=ssh', () => {
  it('forwards the agent of SSH_AUTH_SOCK as `default`, at /run/buildkit/ssh_agent.0 and in SSH_AUTH_SOCK', async () => {
    const ctx = await context('default', ['RUN --mount=type=ssh test-init ssh-ids > /ids && echo "$SSH_AUTH_SOCK" > /sock && test-init ssh-ids /run/buildkit/ssh_agent.0 > /ids0']);
    await buildOk(['-t', 'ssh-default', '--ssh', 'default', ctx], { SSH_AUTH_SOCK: agentSock });
    expect(await cat('ssh-default', '/ids', '/sock', '/ids0')).toBe('1\nssh-ed25519 comment-in-agent\n/run/buildkit/ssh_agent.0\n1\nssh-ed25519 comment-in-agent\n');
    // The socket and its placeholder are in no layer.
    expect((await layerPaths('ssh-default')).filter((p) => p.includes('buildkit'))).toEqual([]);
    expect(await readdir(join(root, 'cache', 'build', 'tmp')).catch(() => [])).toEqual([]);
  });

  it('serves key files of an id at a target, with the mode, uid and gid asked for', async () => {
    const ctx = await context('keys', [
      'RUN --mount=type=ssh,id=deploy,target=/agent,uid=1000,gid=1001,mode=0640 stat -c "%a %u:%g %F" /agent > /st && test-init ssh-ids /agent > /ids && echo "$SSH_AUTH_SOCK" > /sock',
      'USER 1000',
      'RUN --mount=type=ssh,id=deploy,target=/mine,uid=1000 --mount=type=ssh,id=deploy,target=/roots test-init ssh-ids /mine > /tmp/mine; test-init ssh-ids /roots > /tmp/roots; true',
    ]);
    await buildOk(['-t', 'ssh-keys', '--ssh', `deploy=${join(tmp.dir, 'file-ed')},${join(tmp.dir, 'file-ec')}`, ctx]);
    // Key files are listed without comment, as BuildKit's keyring lists them.
    expect(await cat('ssh-keys', '/st', '/ids', '/sock')).toBe('640 1000:1001 socket\n2\nssh-ed25519 \necdsa-sha2-nistp256 \n/agent\n');
    // uid 1000 reaches the socket it owns, not root's 0600 one.
    expect(await cat('ssh-keys', '/tmp/mine', '/tmp/roots')).toBe('2\nssh-ed25519 \necdsa-sha2-nistp256 \nconnect /roots: EACCES\n');
  });

  it('names the sockets of several mounts ssh_agent.0, .1, and takes `id=SOCKET`', async () => {
    const ctx = await context('two', ['RUN --mount=type=ssh,id=a --mount=type=ssh,id=b ls /run/buildkit > /ls && echo "$SSH_AUTH_SOCK" > /sock && test-init ssh-ids /run/buildkit/ssh_agent.1 > /ids1']);
    await buildOk(['-t', 'ssh-two', '--ssh', `a=${agentSock}`, '--ssh', `b=${join(tmp.dir, 'file-ec')}`, ctx]);
    expect(await cat('ssh-two', '/ls', '/sock', '/ids1')).toBe('ssh_agent.0\nssh_agent.1\n/run/buildkit/ssh_agent.0\n1\necdsa-sha2-nistp256 \n');
  });

  it('skips a mount whose id was not forwarded, unless it is required', async () => {
    const ctx = await context('optional', ['RUN --mount=type=ssh,id=absent sh -c \'test -S "$SSH_AUTH_SOCK" && echo socket || echo none\' > /r']);
    await buildOk(['-t', 'ssh-optional', ctx]);
    expect(await cat('ssh-optional', '/r')).toBe('none\n');
    const req = await context('required', ['RUN --mount=type=ssh,id=absent,required=true true']);
    expectOneLineError(await imgbuild(['build', '-q', req]), /^imgbuild: NOT_FOUND: \S*Dockerfile:3:1: no SSH key "absent" forwarded from the client/);
  });

  it('keeps the agent out of the cache key: the step is cached with another agent', async () => {
    const ctx = await context('cached', ['RUN --mount=type=ssh test-init ssh-ids > /ids']);
    await buildOk(['-t', 'ssh-cached', '--ssh', 'default', ctx], { SSH_AUTH_SOCK: agentSock });
    const again = await buildOk(['-t', 'ssh-cached', '--ssh', `default=${join(tmp.dir, 'file-ed')}`, ctx]);
    expect(again).toMatch(/RUN --mount=type=ssh test-init ssh-ids > \/ids\n#\d+ CACHED/);
  });

  it('refuses bad --ssh values in one line before building', async () => {
    expectOneLineError(await imgbuild(['build', '-q', '--ssh', 'default', tmp.dir], { SSH_AUTH_SOCK: '' }), /^imgbuild: INVALID_ARGUMENT: --ssh default: invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set$/);
    expectOneLineError(await imgbuild(['build', '-q', '--ssh', `k=${join(tmp.dir, 'nope')}`, tmp.dir]), /^imgbuild: NOT_FOUND: --ssh k: \S*nope: no such file or socket$/);
    expectOneLineError(await imgbuild(['build', '-q', '--ssh', `k=${join(tmp.dir, 'file-ed.pub')}`, tmp.dir]), /^imgbuild: INVALID_ARGUMENT: --ssh k: \S*file-ed\.pub: no private key found/);
  });
});

describe('against buildah', () => {
  it('RUN --mount=type=ssh sees the same keys, sockets and SSH_AUTH_SOCK as under buildah', async () => {
    const bRoot = join(tmp.dir, 'buildah-root');
    const bRun = join(tmp.dir, 'buildah-run');
    const buildah = (args: string[], env: NodeJS.ProcessEnv = {}): string => {
      const r = spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
      if (r.status !== 0) throw new Error(`buildah ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const sk = spawnSync('skopeo', ['copy', '-q', `oci:${root}:docker.io/library/busybox:latest`, `containers-storage:[vfs@${bRoot}+${bRun}]docker.io/library/busybox:latest`], { encoding: 'utf8' });
    if (sk.status !== 0) throw new Error(sk.stderr);
    const ctx = await context('vs-buildah', [
      'RUN --mount=type=ssh,id=agent --mount=type=ssh,id=keys,target=/k.sock test-init ssh-ids > /ids && test-init ssh-ids /k.sock >> /ids && echo "$SSH_AUTH_SOCK" >> /ids',
    ]);
    const flags = ['--ssh', `agent=${agentSock}`, '--ssh', `keys=${join(tmp.dir, 'file-ed')}`];
    await buildOk(['-t', 'ssh-vs', ...flags, ctx]);
    buildah(['build', '--isolation', 'chroot', '--pull=never', '-q', ...flags, '-t', 'ssh-vs', ctx]);
    const ctr = buildah(['from', '--pull=never', '-q', 'ssh-vs']).trim();
    try {
      const theirs = buildah(['run', '--isolation', 'chroot', ctr, '--', 'cat', '/ids']);
      expect(await cat('ssh-vs', '/ids')).toBe(theirs);
      expect(theirs).toBe('1\nssh-ed25519 comment-in-agent\n1\nssh-ed25519 \n/run/buildkit/ssh_agent.0\n');
    } finally {
      buildah(['rm', ctr]);
      spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'umount', '--all']);
    }
  }, 120_000);
});
