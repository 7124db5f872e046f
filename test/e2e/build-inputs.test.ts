/**
 * Where a build's inputs come from, as `docker build` reads them: the Dockerfile on stdin
 * (`-f -`), a context on stdin (`-`: a tar archive, plain or gzip/bzip2/xz/zstd compressed, or a
 * Dockerfile alone), a tar file as the context, `-f` inside such a context, an http(s) URL (an
 * archive or a Dockerfile), and `--label`. Failures are one line and leave nothing behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { writeContext } from '../helpers/context.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let ctx: string;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-inputs-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  ctx = await writeContext(tmp.dir, 'ctx', {
    'Dockerfile': 'FROM busybox\nCOPY . /ctx\nCMD ["cat", "/ctx/hello.txt"]\n',
    'hello.txt': 'hello\n',
    'sub/Dockerfile.other': 'FROM busybox\nCOPY sub/other.txt /other.txt\n',
    'sub/other.txt': 'other\n',
    '.dockerignore': 'hello.txt\n',
  });
}, 120_000);
afterAll(async () => {
  await tmp.cleanup();
});

async function imgbuild(args: string[], o: { input?: string | Buffer; root?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { root: o.root ?? root, ...(o.input !== undefined ? { input: o.input } : {}) });
}

async function buildOk(args: string[], input?: string | Buffer): Promise<string> {
  const r = await imgbuild(['build', '--progress=plain', ...args], input !== undefined ? { input } : {});
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return r.stdout.trim();
}

async function run(ref: string, ...cmd: string[]): Promise<string> {
  const r = await imgbuild(['run', '--rm', ref, ...cmd]);
  if (r.code !== 0) throw new Error(`run failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** The context as a tar archive, compressed with `tool` (its stdout), as a Buffer. */
function tarOf(dir: string, tool?: string[]): Buffer {
  const tar = spawnSync('tar', ['-C', dir, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  if (tar.status !== 0) throw new Error(tar.stderr.toString());
  if (!tool) return tar.stdout;
  const c = spawnSync(tool[0]!, tool.slice(1), { input: tar.stdout, maxBuffer: 64 << 20 });
  if (c.status !== 0) throw new Error(c.stderr.toString());
  return c.stdout;
}

async function scratchIsEmpty(r = root): Promise<boolean> {
  return (await readdir(join(r, 'cache', 'build', 'tmp')).catch(() => [])).length === 0;
}

describe('the Dockerfile on stdin (-f -)', () => {
  it('builds the context dir with the Dockerfile read from stdin', async () => {
    await buildOk(['-t', 'stdin-df', '-f', '-', ctx], 'FROM busybox\nCOPY sub/other.txt /o\n');
    expect(await run('stdin-df', 'cat', '/o')).toBe('other\n');
  });

  it('builds a Dockerfile alone on stdin (`-`), with no context', async () => {
    await buildOk(['-t', 'stdin-only', '-'], 'FROM busybox\nRUN echo made > /made\n');
    expect(await run('stdin-only', 'cat', '/made')).toBe('made\n');
    expectOneLineError(await imgbuild(['build', '-q', '-'], { input: 'FROM busybox\nCOPY x /x\n' }), /^imgbuild: NOT_FOUND: \d+:\d+: COPY source "x": no build context was given$/);
  });

  it('refuses stdin for both, and a Dockerfile on stdin beside -f', async () => {
    const both = await imgbuild(['build', '-f', '-', '-'], { input: 'FROM busybox\n' });
    expectOneLineError(both, /^imgbuild: INVALID_ARGUMENT: can't use stdin for both build context and dockerfile$/);
    expect(both.code).toBe(1);
    expectOneLineError(await imgbuild(['build', '-f', 'Dockerfile', '-'], { input: 'FROM busybox\n' }), /^imgbuild: INVALID_ARGUMENT: ambiguous Dockerfile source: both <stdin> and -f name a Dockerfile$/);
  });
});

describe('a tar archive as the context', () => {
  const kinds: [string, string[] | undefined][] = [['plain', undefined], ['gzip', ['gzip', '-c']], ['bzip2', ['bzip2', '-c']], ['xz', ['xz', '-c']], ['zstd', ['zstd', '-q', '-c']]];
  it.each(kinds)('reads a %s tar on stdin, whose .dockerignore does not apply (BuildKit)', async (name, tool) => {
    const id = await buildOk(['-t', `stdin-tar-${name}`, '-'], tarOf(ctx, tool));
    expect(id).toMatch(/^sha256:/);
    expect(await run(`stdin-tar-${name}`)).toBe('hello\n');
    expect(await scratchIsEmpty()).toBe(true);
  });

  it('gives the same image for the same context from a dir and from a tar', async () => {
    const plain = await writeContext(tmp.dir, 'same', { 'Dockerfile': 'FROM busybox\nCOPY f /f\n', f: 'x\n' });
    const a = await buildOk(['-q', plain]);
    const b = await buildOk(['-q', '-'], tarOf(plain, ['gzip', '-c']));
    expect(b).toBe(a);
  });

  it('takes a tar file given as the context path, and -f as a path inside it', async () => {
    const file = join(tmp.dir, 'ctx.tar.gz');
    await writeFile(file, tarOf(ctx, ['gzip', '-c']));
    await buildOk(['-t', 'tar-file', file]);
    expect(await run('tar-file')).toBe('hello\n');
    await buildOk(['-t', 'tar-file-f', '-f', 'sub/Dockerfile.other', file]);
    expect(await run('tar-file-f', 'cat', '/other.txt')).toBe('other\n');
    await buildOk(['-t', 'stdin-tar-f', '-f', './sub/../sub/Dockerfile.other', '-'], tarOf(ctx));
    expect(await run('stdin-tar-f', 'cat', '/other.txt')).toBe('other\n');
  });

  it('finds a lower-case dockerfile when there is no Dockerfile', async () => {
    const lower = await writeContext(tmp.dir, 'lower', { 'dockerfile': 'FROM busybox\nRUN echo lower > /l\n' });
    await buildOk(['-t', 'lower', '-'], tarOf(lower));
    expect(await run('lower', 'cat', '/l')).toBe('lower\n');
  });

  it('fails in one line and leaves nothing when the tar has no Dockerfile or is corrupt', async () => {
    const empty = await writeContext(tmp.dir, 'nodf', { 'a.txt': 'a' });
    expectOneLineError(await imgbuild(['build', '-q', '-'], { input: tarOf(empty) }), /^imgbuild: NOT_FOUND: Dockerfile "<stdin>: Dockerfile" not found$/);
    expectOneLineError(await imgbuild(['build', '-q', '-f', 'nope/Dockerfile', '-'], { input: tarOf(ctx) }), /^imgbuild: NOT_FOUND: Dockerfile "<stdin>: nope\/Dockerfile" not found$/);
    const gz = tarOf(ctx, ['gzip', '-c']);
    expectOneLineError(await imgbuild(['build', '-q', '-'], { input: gz.subarray(0, gz.length - 40) }), /^imgbuild: INVALID_ARGUMENT: build context <stdin>: /);
    const xz = tarOf(ctx, ['xz', '-c']);
    expectOneLineError(await imgbuild(['build', '-q', '-'], { input: xz.subarray(0, 200) }), /^imgbuild: INVALID_ARGUMENT: build context <stdin>: xz -dc failed: /);
    expect(await scratchIsEmpty()).toBe(true);
    // A build that could not start made no store.
    const fresh = join(tmp.dir, 'fresh-root');
    expectOneLineError(await imgbuild(['build', '-q', '-'], { input: tarOf(empty), root: fresh }), /NOT_FOUND/);
    expect(existsSync(fresh)).toBe(false);
  });
});

describe('an http(s) URL as the context', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const files: Record<string, Buffer> = {
      '/ctx.tar.gz': tarOf(ctx, ['gzip', '-c']),
      '/Dockerfile': Buffer.from('FROM busybox\nRUN echo remote > /r\n'),
    };
    server = createServer((req, res) => {
      const body = files[req.url ?? ''];
      res.writeHead(body ? 200 : 404);
      res.end(body ?? 'not found');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('extracts an archive at the URL as the context', async () => {
    await buildOk(['-t', 'url-tar', `${url}/ctx.tar.gz`]);
    expect(await run('url-tar')).toBe('hello\n');
  });

  it('builds a plain file at the URL as the Dockerfile, with no context', async () => {
    await buildOk(['-t', 'url-df', `${url}/Dockerfile`]);
    expect(await run('url-df', 'cat', '/r')).toBe('remote\n');
  });

  it('fails in one line for a missing URL', async () => {
    expectOneLineError(await imgbuild(['build', '-q', `${url}/nope.tar`]), /^imgbuild: NOT_FOUND: build context http:\/\/127\.0\.0\.1:\d+\/nope\.tar: HTTP 404 Not Found$/);
    expect(await scratchIsEmpty()).toBe(true);
  });
});

describe('build --label', () => {
  it('sets labels on the image, over the Dockerfile\'s LABEL, leaving cached steps alone', async () => {
    const c = await writeContext(tmp.dir, 'label', { 'Dockerfile': 'FROM busybox AS base\nLABEL a=from-base\nFROM base\nLABEL b=dockerfile c=dockerfile\nRUN true\n' });
    await buildOk(['-t', 'labelled', '--label', 'c=flag', '--label', 'd=with=equals', '--label', 'e', c]);
    const store = await OciStore.open(root);
    const img = await findImage(store, 'labelled');
    expect(img.config.config?.Labels).toEqual({ a: 'from-base', b: 'dockerfile', c: 'flag', d: 'with=equals', e: '' });
    // The label is not in any step's history, and the RUN step of a rebuild is cached.
    expect(JSON.stringify(img.config.history)).not.toContain('flag');
    const r = await imgbuild(['build', '--progress=plain', '--label', 'c=other', c]);
    expect(r.stderr).toMatch(/RUN true\n#\d+ CACHED/);
  });
});

describe('inputs that are not there', () => {
  it('names a missing context path, git ref or file in one line', async () => {
    expectOneLineError(await imgbuild(['build', '-q', join(tmp.dir, 'nosuch')]), /^imgbuild: NOT_FOUND: build context "[^"]*nosuch" not found$/);
    const notTar = join(tmp.dir, 'not-a-tar');
    await writeFile(notTar, await readFile(join(ctx, 'Dockerfile')));
    expectOneLineError(await imgbuild(['build', '-q', notTar]), /^imgbuild: INVALID_ARGUMENT: build context "[^"]*not-a-tar" is not a directory$/);
  });
});

describe('against buildah', () => {
  it('a gzip tar context on stdin gives the same files as buildah makes of it', async () => {
    const bRoot = join(tmp.dir, 'buildah-root');
    const bRun = join(tmp.dir, 'buildah-run');
    const buildah = (args: string[], input?: Buffer): string => {
      const r = spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, ...args], { encoding: 'utf8', input, maxBuffer: 64 << 20 });
      if (r.status !== 0) throw new Error(`buildah ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const sk = spawnSync('skopeo', ['copy', '-q', `oci:${root}:docker.io/library/busybox:latest`, `containers-storage:[vfs@${bRoot}+${bRun}]docker.io/library/busybox:latest`], { encoding: 'utf8' });
    if (sk.status !== 0) throw new Error(sk.stderr);
    const dir = await writeContext(tmp.dir, 'vs-buildah', { 'Dockerfile': 'FROM busybox\nCOPY . /ctx\n', 'bin/run.sh': '#!/bin/sh\n', 'private': 'p', 'a/b/c.txt': 'c' });
    spawnSync('chmod', ['755', join(dir, 'bin/run.sh')]);
    spawnSync('chmod', ['600', join(dir, 'private')]);
    spawnSync('ln', ['-s', 'a/b/c.txt', join(dir, 'link')]);
    // Owned by someone else in the archive: COPY makes it root's either way.
    const tar = spawnSync('tar', ['-C', dir, '--owner=1000', '--group=1000', '-czf', '-', '.'], { maxBuffer: 64 << 20 }).stdout;
    const show = 'cd /ctx && find . | sort | while read f; do stat -c "%A %u:%g %s %N" "$f"; done';
    await buildOk(['-t', 'vs-buildah', '-'], tar);
    const ours = await run('vs-buildah', 'sh', '-c', show);
    buildah(['build', '--isolation', 'chroot', '--pull=never', '-q', '-t', 'vs-buildah', '-'], tar);
    const ctr = buildah(['from', '--pull=never', '-q', 'vs-buildah']).trim();
    try {
      expect(ours).toBe(buildah(['run', '--isolation', 'chroot', ctr, '--', 'sh', '-c', show]));
    } finally {
      buildah(['rm', ctr]);
      spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'umount', '--all']);
    }
  }, 120_000);
});
