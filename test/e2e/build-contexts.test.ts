/**
 * Named contexts (`build --build-context name=value`) as BuildKit uses them: a directory (its own
 * .dockerignore applied), `docker-image://REF`, `oci-layout://PATH[:TAG]`, a git repository and
 * an http(s) URL, found by FROM, `COPY --from` and `RUN --mount from=`, a context replacing a
 * stage of its name (which is then not built); checked against buildah where it has the input.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { writeContext } from '../helpers/context.js';
import { startGitServer, makeRepo, type GitServer } from '../helpers/git-server.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let src: string;
let git: GitServer;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-contexts-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  src = await writeContext(tmp.dir, 'src', { 'a.txt': 'from src\n', 'sub/b.txt': 'b\n', 'secret.key': 'hidden\n', '.dockerignore': 'secret.key\n' });
  const repos = join(tmp.dir, 'repos');
  await mkdir(repos);
  git = await startGitServer(repos);
  makeRepo(repos, 'lib', [{ files: { 'lib.txt': 'lib v1\n' }, tag: 'v1' }, { files: { 'lib.txt': 'lib v2\n' } }]);
}, 120_000);
afterAll(async () => {
  await git?.close();
  await tmp.cleanup();
});

async function imgbuild(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { root });
}

async function buildOk(args: string[]): Promise<string> {
  const r = await imgbuild(['build', '--progress=plain', ...args]);
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return r.stderr;
}

async function sh(ref: string, script: string): Promise<string> {
  const r = await imgbuild(['run', '--rm', ref, 'sh', '-c', script]);
  if (r.code !== 0) throw new Error(`run failed: ${r.stderr}`);
  return r.stdout;
}

const df = (name: string, lines: string[]): Promise<string> => writeContext(tmp.dir, name, { 'Dockerfile': `${lines.join('\n')}\n` });

describe('a directory as a named context', () => {
  it('is what COPY --from and RUN --mount from= read, with its own .dockerignore, owned by root', async () => {
    const ctx = await df('dir-copy', [
      'FROM busybox',
      'COPY --from=src / /copied/',
      'RUN --mount=from=src,target=/m ls -a /m > /mounted && cat /m/a.txt >> /mounted',
    ]);
    spawnSync('chown', ['-R', '1234:1234', src]);
    await buildOk(['-t', 'ctx-dir', '--build-context', `src=${src}`, ctx]);
    expect(await sh('ctx-dir', 'cd /copied && find . | sort && stat -c "%u:%g %n" a.txt sub/b.txt && cat /mounted')).toBe(
      '.\n./.dockerignore\n./a.txt\n./sub\n./sub/b.txt\n0:0 a.txt\n0:0 sub/b.txt\n.\n..\n.dockerignore\na.txt\nsub\nfrom src\n',
    );
  });

  it('is a rootfs of its files when FROM names it', async () => {
    const ctx = await df('dir-from', ['FROM src AS files', 'FROM busybox', 'COPY --from=files /sub /got']);
    await buildOk(['-t', 'ctx-from', '--build-context', `src=${src}`, ctx]);
    expect(await sh('ctx-from', 'cat /got/b.txt')).toBe('b\n');
  });

  it('is looked up by the normalized name: docker.io/library/src:latest is src', async () => {
    const ctx = await df('dir-norm', ['FROM busybox', 'COPY --from=docker.io/library/src:latest a.txt /a']);
    await buildOk(['-t', 'ctx-norm', '--build-context', `src:latest=${src}`, ctx]);
    expect(await sh('ctx-norm', 'cat /a')).toBe('from src\n');
  });
});

describe('an image as a named context', () => {
  it('replaces the image of its name (docker-image://)', async () => {
    const ctx = await df('img', ['FROM alpine:latest', 'RUN echo on-busybox > /x']);
    await buildOk(['-t', 'ctx-img', '--build-context', `alpine=docker-image://${BUSYBOX_REF}`, ctx]);
    expect(await sh('ctx-img', 'cat /x')).toBe('on-busybox\n');
  });

  it('replaces a stage of its name, which is not built, nor what only it needs', async () => {
    await buildOk(['-t', 'base-ctx', await df('base-img', ['FROM busybox', 'RUN echo from-context > /who'])]);
    const ctx = await df('stage', [
      'FROM nosuch-image-anywhere AS dep',
      'FROM dep AS base',
      'RUN echo from-stage > /who',
      'FROM base',
      'RUN cat /who > /seen',
    ]);
    const out = await buildOk(['-t', 'ctx-stage', '--build-context', 'base=docker-image://base-ctx', ctx]);
    expect(await sh('ctx-stage', 'cat /seen')).toBe('from-context\n');
    expect(out).not.toContain('from-stage');
    expect(out).not.toContain('nosuch-image-anywhere');
  });

  it('reads an image from an OCI layout (oci-layout://PATH:TAG)', async () => {
    const layout = join(tmp.dir, 'layout');
    await buildOk(['-t', 'in-layout:v1', '--output', `type=oci,dest=${layout}`, await df('layout-img', ['FROM busybox', 'RUN echo in-layout > /l'])]);
    // The image leaves the store: it comes back from the layout only.
    expect((await imgbuild(['rmi', 'in-layout:v1'])).code).toBe(0);
    const ctx = await df('layout-use', ['FROM base', 'RUN cat /l > /seen']);
    await buildOk(['-t', 'ctx-layout', '--build-context', `base=oci-layout://${layout}:v1`, ctx]);
    expect(await sh('ctx-layout', 'cat /seen')).toBe('in-layout\n');
    expectOneLineError(await imgbuild(['build', '-q', '--build-context', `base=oci-layout://${layout}:nope`, ctx]), /^imgbuild: NOT_FOUND: oci-layout reference \S+:nope could not be resolved$/);
  });
});

describe('git and URL named contexts', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/data.bin') res.end('downloaded\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('checks a git ref out as the context', async () => {
    const ctx = await df('git-ctx', ['FROM busybox', 'COPY --from=lib lib.txt /lib.txt']);
    await buildOk(['-t', 'ctx-git', '--build-context', `lib=${git.url}/lib.git#v1`, ctx]);
    expect(await sh('ctx-git', 'cat /lib.txt')).toBe('lib v1\n');
  });

  it('takes an http(s) URL as a single file named context (BuildKit)', async () => {
    const ctx = await df('url-ctx', ['FROM busybox', 'COPY --from=data context /data']);
    await buildOk(['-t', 'ctx-url', '--build-context', `data=${url}/data.bin`, ctx]);
    expect(await sh('ctx-url', 'cat /data')).toBe('downloaded\n');
  });
});

describe('bad --build-context values', () => {
  it('are refused in one line before anything is built', async () => {
    const ctx = await df('bad', ['FROM busybox']);
    const file = join(tmp.dir, 'a-file');
    await writeFile(file, 'x');
    expectOneLineError(await imgbuild(['build', '--build-context', 'novalue', ctx]), /^imgbuild: INVALID_ARGUMENT: invalid context value: novalue, expected key=value$/);
    expectOneLineError(await imgbuild(['build', '--build-context', `Bad=${src}`, ctx]), /^imgbuild: INVALID_ARGUMENT: invalid context name Bad: /);
    expectOneLineError(await imgbuild(['build', '--build-context', `x=${join(tmp.dir, 'nosuch')}`, ctx]), /^imgbuild: NOT_FOUND: failed to get build context x: \S*nosuch: no such file or directory$/);
    expectOneLineError(await imgbuild(['build', '--build-context', `x=${file}`, ctx]), /^imgbuild: INVALID_ARGUMENT: failed to get build context path \S*a-file: not a directory$/);
    expectOneLineError(await imgbuild(['build', '--build-context', 'x=foo://bar', ctx]), /^imgbuild: INVALID_ARGUMENT: unsupported context source foo for x$/);
    expectOneLineError(await imgbuild(['build', '--build-context', 'x=target:base', ctx]), /^imgbuild: NOT_IMPLEMENTED: /);
    expect(await readdir(join(root, 'cache', 'build', 'tmp')).catch(() => [])).toEqual([]);
  });
});

describe('against buildah', () => {
  let bRoot: string;
  let bRun: string;
  const buildah = (args: string[]): string => {
    const r = spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`buildah ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  beforeAll(() => {
    bRoot = join(tmp.dir, 'buildah-root');
    bRun = join(tmp.dir, 'buildah-run');
    const r = spawnSync('skopeo', ['copy', '-q', `oci:${root}:${BUSYBOX_REF}`, `containers-storage:[vfs@${bRoot}+${bRun}]${BUSYBOX_REF}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  }, 120_000);
  afterAll(() => {
    spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'umount', '--all']);
  });

  it('gives the same files for a directory context (COPY --from, RUN --mount from=) and FROM replaced by docker-image://', async () => {
    const ctx = await df('vs-buildah', [
      'FROM alpine',
      'COPY --from=src / /copied/',
      'RUN --mount=from=src,target=/m cat /m/a.txt /m/sub/b.txt > /mounted',
    ]);
    spawnSync('chown', ['-R', '1234:1234', src]);
    const show = 'cd / && find copied mounted | sort | while read f; do stat -c "%A %u:%g %n" "$f"; done && cat /mounted';
    await buildOk(['-t', 'vs-buildah', '--build-context', `src=${src}`, '--build-context', `alpine=docker-image://${BUSYBOX_REF}`, ctx]);
    const ours = await sh('vs-buildah', show);
    buildah(['build', '--isolation', 'chroot', '--pull=never', '-q', '--build-context', `src=${src}`, '--build-context', `alpine=docker-image://${BUSYBOX_REF}`, '-t', 'vs-buildah', ctx]);
    const ctr = buildah(['from', '--pull=never', '-q', 'vs-buildah']);
    try {
      // buildah 1.28 neither applies a named context's own .dockerignore nor makes its files
      // root's, as BuildKit does (its client sends every local context with uid and gid 0).
      const theirs = `${buildah(['run', '--isolation', 'chroot', ctr, '--', 'sh', '-c', show])}\n`.replace(/^.* copied\/secret\.key\n/m, '').replaceAll(' 1234:1234 ', ' 0:0 ');
      expect(ours).toBe(theirs);
      expect(ours).not.toContain('secret.key');
    } finally {
      buildah(['rm', ctr]);
    }
  }, 120_000);
});
