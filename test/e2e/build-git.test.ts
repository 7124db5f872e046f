/**
 * Git sources against a git server on 127.0.0.1 (git http-backend): a git repository as the build
 * context (`URL#ref:subdir`, query forms, BUILDKIT_CONTEXT_KEEP_GIT_DIR) and `ADD <git ref>`
 * (`--keep-git-dir`, `--checksum` with a commit, branches, tags, commits, subdirs), with BuildKit's
 * semantics: no `.git` unless asked, files owned by root, a step cached by the commit.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError, CLI_EXE } from '../helpers/cli.js';
import { spawn, spawnSync } from 'node:child_process';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { writeContext } from '../helpers/context.js';
import { startGitServer, makeRepo, git, type GitServer } from '../helpers/git-server.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let server: GitServer;
let ids: string[];
let tagIds: string[];

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-git-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  const repos = join(tmp.dir, 'repos');
  await mkdir(repos);
  server = await startGitServer(repos);
  ids = makeRepo(repos, 'app', [
    { files: { 'Dockerfile': 'FROM busybox\nCOPY . /src\nCMD ["cat", "/src/version"]\n', 'version': 'one\n', 'sub/Dockerfile': 'FROM busybox\nCOPY . /sub\n', 'sub/file': 'in sub\n' }, tag: 'v1' },
    { files: { 'version': 'two\n', 'run.sh': '#!/bin/sh\necho run\n' }, mode: { 'run.sh': 0o755 }, annotatedTag: 'v2' },
    { files: { 'version': 'three (dev)\n' }, branch: 'dev' },
  ]);
  tagIds = [git(join(repos, 'app.git'), 'rev-parse', 'v2')];
}, 120_000);
afterAll(async () => {
  await server?.close();
  await tmp.cleanup();
});

async function imgbuild(args: string[], o: { input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { root, ...(o.input !== undefined ? { input: o.input } : {}) });
}

async function buildOk(args: string[]): Promise<{ id: string; stderr: string }> {
  const r = await imgbuild(['build', '--progress=plain', ...args]);
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return { id: r.stdout.trim(), stderr: r.stderr };
}

async function run(ref: string, ...cmd: string[]): Promise<string> {
  const r = await imgbuild(['run', '--rm', ref, ...cmd]);
  if (r.code !== 0) throw new Error(`run failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Nothing of a build is left in the store's scratch area. */
async function scratchIsEmpty(): Promise<boolean> {
  const names = await readdir(join(root, 'cache', 'build', 'tmp')).catch(() => []);
  return names.length === 0;
}

describe('build with a git context', () => {
  it('builds the default branch of a repository URL, without .git', async () => {
    await buildOk(['-t', 'git-ctx', `${server.url}/app.git`]);
    expect(await run('git-ctx')).toBe('two\n');
    expect(await run('git-ctx', 'ls', '-a', '/src')).not.toMatch(/\.git\b/);
    // Files as git checks them out: the executable bit kept, owned by root.
    expect(await run('git-ctx', 'stat', '-c', '%a %u:%g %n', '/src/run.sh', '/src/version')).toBe('755 0:0 /src/run.sh\n644 0:0 /src/version\n');
    expect(await scratchIsEmpty()).toBe(true);
  });

  it('takes a branch, a tag or a commit after #, and a subdir after :', async () => {
    await buildOk(['-t', 'git-dev', `${server.url}/app.git#dev`]);
    expect(await run('git-dev')).toBe('three (dev)\n');
    await buildOk(['-t', 'git-v1', `${server.url}/app.git#v1`]);
    expect(await run('git-v1')).toBe('one\n');
    await buildOk(['-t', 'git-c0', `${server.url}/app.git#${ids[0]}`]);
    expect(await run('git-c0')).toBe('one\n');
    // The subdir is the context, and its Dockerfile the one built.
    await buildOk(['-t', 'git-sub', `${server.url}/app.git#main:sub`]);
    expect(await run('git-sub', 'cat', '/sub/file')).toBe('in sub\n');
    expect(await run('git-sub', 'ls', '/sub')).toBe('Dockerfile\nfile\n');
  });

  it('reads the query form (?ref=, ?branch=, ?tag=, ?subdir=)', async () => {
    await buildOk(['-t', 'git-q', `${server.url}/app.git?branch=dev`]);
    expect(await run('git-q')).toBe('three (dev)\n');
    await buildOk(['-t', 'git-q2', `${server.url}/app.git?tag=v1&subdir=sub`]);
    expect(await run('git-q2', 'cat', '/sub/file')).toBe('in sub\n');
  });

  it('keeps .git with BUILDKIT_CONTEXT_KEEP_GIT_DIR=1, holding the commit and the origin', async () => {
    const ctxDf = await writeContext(tmp.dir, 'keep-df', { 'Dockerfile': 'FROM busybox\nCOPY . /src\n' });
    await buildOk(['-t', 'git-keep', '--build-arg', 'BUILDKIT_CONTEXT_KEEP_GIT_DIR=1', '-f', join(ctxDf, 'Dockerfile'), `${server.url}/app.git#dev`]);
    const heads = await run('git-keep', 'cat', '/src/.git/HEAD');
    expect(heads.trim()).toBe(ids[2]);
    expect(await run('git-keep', 'cat', '/src/.git/config')).toContain(`url = ${server.url}/app.git`);
  });

  it('takes -f as a path inside the repository', async () => {
    await buildOk(['-t', 'git-f', '-f', 'sub/Dockerfile', `${server.url}/app.git`]);
    expect(await run('git-f', 'cat', '/sub/sub/file')).toBe('in sub\n');
  });

  it('fails in one line, leaving nothing, for a missing ref, repository or subdir', async () => {
    expectOneLineError(await imgbuild(['build', '-q', `${server.url}/app.git#nope`]), /^imgbuild: NOT_FOUND: .*does not contain ref nope/);
    expectOneLineError(await imgbuild(['build', '-q', `${server.url}/missing.git`]), /^imgbuild: UNAVAILABLE: git source .*missing\.git: git ls-remote failed/);
    expectOneLineError(await imgbuild(['build', '-q', `${server.url}/app.git#main:nope`]), /^imgbuild: NOT_FOUND: .*subdir "nope" does not exist/);
    expectOneLineError(await imgbuild(['build', '-q', 'http://127.0.0.1:1/x.git']), /^imgbuild: UNAVAILABLE: /);
    expect(await scratchIsEmpty()).toBe(true);
  });
});

describe('ADD <git ref>', () => {
  it('adds the tree of a ref without .git, and with --keep-git-dir keeps it', async () => {
    const ctx = await writeContext(tmp.dir, 'add-git', {
      'Dockerfile': [
        'FROM busybox',
        `ADD ${server.url}/app.git#v1 /plain`,
        `ADD --keep-git-dir=true ${server.url}/app.git#dev /kept`,
        `ADD ${server.url}/app.git#main:sub /sub/`,
        `ADD ${server.url}/app.git?tag=v2 /v2`,
      ].join('\n'),
    });
    await buildOk(['-t', 'add-git', ctx]);
    expect(await run('add-git', 'cat', '/plain/version', '/kept/version', '/sub/file', '/v2/version')).toBe('one\nthree (dev)\nin sub\ntwo\n');
    expect(await run('add-git', 'ls', '-a', '/plain')).toBe('.\n..\nDockerfile\nsub\nversion\n');
    expect((await run('add-git', 'cat', '/kept/.git/HEAD')).trim()).toBe(ids[2]);
  });

  it('caches the step by commit: a new commit on the branch is fetched, an unchanged one is not', async () => {
    const ctx = await writeContext(tmp.dir, 'add-cache', { 'Dockerfile': `FROM busybox\nADD ${server.url}/cache.git#main /c\n` });
    const repos = server.dir;
    makeRepo(repos, 'cache', [{ files: { f: '1\n' } }]);
    await buildOk(['-t', 'add-cache', ctx]);
    const second = await buildOk(['-t', 'add-cache', ctx]);
    expect(second.stderr).toMatch(/#2 \[stage-0 2\/2\] ADD .*\n#2 CACHED/);
    makeRepo(repos, 'cache', [{ files: { f: '1\n' } }, { files: { f: '2\n' } }]);
    const third = await buildOk(['-t', 'add-cache', ctx]);
    expect(third.stderr).toMatch(/#2 \[stage-0 2\/2\] ADD .*\n(#2 times: .*\n)?#2 DONE/);
    expect(await run('add-cache', 'cat', '/c/f')).toBe('2\n');
  });

  it('checks --checksum against the commit (a prefix will do; an annotated tag may name its tag object)', async () => {
    const ok = await writeContext(tmp.dir, 'add-sum-ok', { 'Dockerfile': `FROM busybox\nADD --checksum=${ids[0]!.slice(0, 12)} ${server.url}/app.git#v1 /a\nADD --checksum=${tagIds[0]} ${server.url}/app.git#v2 /b\n` });
    await buildOk(['-t', 'add-sum', ok]);
    expect(await run('add-sum', 'cat', '/a/version', '/b/version')).toBe('one\ntwo\n');
    const bad = await writeContext(tmp.dir, 'add-sum-bad', { 'Dockerfile': `FROM busybox\nADD --checksum=${ids[1]} ${server.url}/app.git#v1 /a\n` });
    expectOneLineError(await imgbuild(['build', '-q', bad]), new RegExp(`^imgbuild: FAILED_PRECONDITION: \\S*Dockerfile:2:1: .*expected checksum to match ${ids[1]}, got ${ids[0]}`));
    const notHex = await writeContext(tmp.dir, 'add-sum-hex', { 'Dockerfile': `FROM busybox\nADD --checksum=sha256:abc ${server.url}/app.git /a\n` });
    expectOneLineError(await imgbuild(['build', '-q', notHex]), /INVALID_ARGUMENT: .*invalid checksum sha256:abc for Git URL, expected hex commit hash/);
  });

  it('refuses a git ref in COPY, and --checksum with several or local sources', async () => {
    const cp = await writeContext(tmp.dir, 'copy-git', { 'Dockerfile': `FROM busybox\nCOPY ${server.url}/app.git /a\n` });
    expectOneLineError(await imgbuild(['build', '-q', cp]), /INVALID_ARGUMENT: .*source can't be a git ref for COPY/);
    const many = await writeContext(tmp.dir, 'sum-many', { 'Dockerfile': `FROM busybox\nADD --checksum=${ids[0]} ${server.url}/app.git f /a/\n`, f: 'x' });
    expectOneLineError(await imgbuild(['build', '-q', many]), /INVALID_ARGUMENT: .*checksum can't be specified for multiple sources/);
    const local = await writeContext(tmp.dir, 'sum-local', { 'Dockerfile': 'FROM busybox\nADD --checksum=sha256:00 f /a\n', f: 'x' });
    expectOneLineError(await imgbuild(['build', '-q', local]), /INVALID_ARGUMENT: .*checksum requires HTTP\(S\) or Git sources/);
  });
});

describe('git submodules', () => {
  it('are checked out with the repository, unless ?submodules=false', async () => {
    const repos = server.dir;
    const [libCommit] = makeRepo(repos, 'sublib', [{ files: { 'lib.txt': 'from the submodule\n' } }]);
    // A gitlink and .gitmodules written directly: cloning the submodule here would need the
    // server, which answers from this process.
    const work = join(tmp.dir, 'withsub-work');
    await mkdir(work);
    git(work, 'init', '-q', '-b', 'main');
    await writeContext(work, '.', { '.gitmodules': `[submodule "lib"]\n\tpath = lib\n\turl = ${server.url}/sublib.git\n`, 'top.txt': 'top\n' });
    git(work, 'add', '.gitmodules', 'top.txt');
    git(work, 'update-index', '--add', '--cacheinfo', `160000,${libCommit},lib`);
    git(work, 'commit', '-q', '-m', 'with a submodule');
    git(repos, 'clone', '-q', '--bare', work, join(repos, 'withsub.git'));
    const ctx = await writeContext(tmp.dir, 'add-sub', {
      'Dockerfile': `FROM busybox\nADD ${server.url}/withsub.git /with\nADD ${server.url}/withsub.git?submodules=false /without\n`,
    });
    await buildOk(['-t', 'add-sub', ctx]);
    expect(await run('add-sub', 'cat', '/with/top.txt', '/with/lib/lib.txt')).toBe('top\nfrom the submodule\n');
    expect(await run('add-sub', 'ls', '-A', '/without/lib')).toBe('');
  });
});

describe('against buildah', () => {
  it('a git context gives the same files as buildah makes of it (but for the .git buildah keeps)', async () => {
    const bRoot = join(tmp.dir, 'buildah-root');
    const bRun = join(tmp.dir, 'buildah-run');
    // Async: the git server answers from this process, so nothing here may block it.
    const sh = (cmd: string, args: string[]): Promise<string> => new Promise((resolve, reject) => {
      const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`))));
    });
    const buildah = (args: string[]): Promise<string> => sh('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, ...args]);
    await sh('skopeo', ['copy', '-q', `oci:${root}:${BUSYBOX_REF}`, `containers-storage:[vfs@${bRoot}+${bRun}]${BUSYBOX_REF}`]);
    const show = 'cd /src && find . -path ./.git -prune -o -print | sort | while read f; do stat -c "%A %u:%g %s %n" "$f"; done';
    const url = `${server.url}/app.git`;
    await buildOk(['-t', 'git-vs', url]);
    const ours = await run('git-vs', 'sh', '-c', show);
    await buildah(['build', '--isolation', 'chroot', '--pull=never', '-q', '-t', 'git-vs', url]);
    const ctr = (await buildah(['from', '--pull=never', '-q', 'git-vs'])).trim();
    try {
      expect(ours).toBe(await buildah(['run', '--isolation', 'chroot', ctr, '--', 'sh', '-c', show]));
    } finally {
      await buildah(['rm', ctr]);
      spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'umount', '--all']);
    }
  }, 120_000);
});

describe('an interrupted git fetch', () => {
  it('leaves nothing when interrupted, and a killed build\'s checkout goes with the next build', async () => {
    makeRepo(server.dir, 'slow', [{ files: { f: 'x' } }]);
    server.stall.add('slow.git');
    const scratch = join(root, 'cache', 'build', 'tmp');
    const start = (): { child: ReturnType<typeof spawn>; waitFetching: Promise<void>; done: Promise<number | null> } => {
      const child = spawn(CLI_EXE, ['--root', root, 'build', '--progress=plain', `${server.url}/slow.git`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      const waitFetching = new Promise<void>((resolve) => {
        child.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('load git source')) resolve();
        });
      });
      const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      return { child, waitFetching, done };
    };
    const a = start();
    await a.waitFetching;
    expect(await readdir(scratch)).toHaveLength(1);
    a.child.kill('SIGINT');
    expect(await a.done).not.toBe(0);
    expect(await scratchIsEmpty()).toBe(true);
    const b = start();
    await b.waitFetching;
    b.child.kill('SIGKILL');
    await b.done;
    expect(await readdir(scratch)).toHaveLength(1);
    // The next build removes what the killed one left (its process is gone).
    server.stall.delete('slow.git');
    await buildOk(['-q', `${server.url}/app.git#v1`]);
    expect(await scratchIsEmpty()).toBe(true);
  });
});

describe('a private http(s) repository', () => {
  it('is fetched with the GIT_AUTH_TOKEN secret (or GIT_AUTH_TOKEN.<host>), as BuildKit sends it', async () => {
    makeRepo(server.dir, 'private', [{ files: { 'Dockerfile': 'FROM busybox\nCOPY p.txt /p.txt\n', 'p.txt': 'private\n' } }]);
    server.auth.set('private.git', `basic ${Buffer.from('x-access-token:s3cret').toString('base64')}`);
    const url = `${server.url}/private.git`;
    const r = await runCli(['build', '-q', '-t', 'private-ctx', '--secret', 'id=GIT_AUTH_TOKEN,env=TOK', url], { root, env: { TOK: 's3cret' } });
    expect(r.stderr).toBe('');
    expect(await run('private-ctx', 'cat', '/p.txt')).toBe('private\n');
    const host = new URL(server.url).host;
    const tokenFile = join(tmp.dir, 'token');
    await writeFile(tokenFile, 's3cret');
    const ctx = await writeContext(tmp.dir, 'add-private', { 'Dockerfile': `FROM busybox\nADD ${url} /priv\n` });
    const add = await runCli(['build', '-q', '-t', 'private-add', '--secret', `id=GIT_AUTH_TOKEN.${host},src=${tokenFile}`, ctx], { root });
    expect(add.stderr).toBe('');
    expect(await run('private-add', 'cat', '/priv/p.txt')).toBe('private\n');
    // Never prompted for: without the secret git cannot read a user name.
    expectOneLineError(await imgbuild(['build', '-q', url]), /^imgbuild: UNAVAILABLE: git source \S+private\.git: git ls-remote failed: could not read Username for 'http:\/\/127\.0\.0\.1:\d+': terminal prompts disabled$/);
  });
});
