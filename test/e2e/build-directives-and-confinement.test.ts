/**
 * Builder outcomes checked through real builds (CLI, overlay, sandbox) rather than unit calls:
 * parser directives, .dockerignore with `!` and `**`, symlinks in the context and in the rootfs,
 * and a relative `--root`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, writeFile, symlink, readdir, lstat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeContext } from '../helpers/context.js';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import type { Descriptor, ImageConfig } from '../../src/image/types.js';
import { validateImage } from '../conformance/validate-image.js';
import { openLayerTar } from '../../src/store/layers.js';
import { readTar } from '../../src/tar/reader.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-build-rules-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
});
afterAll(async () => {
  await tmp.cleanup();
});

const context = (name: string, files: Record<string, string>): Promise<string> => writeContext(tmp.dir, name, files);

async function build(args: string[], o: { root?: string; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['build', '--progress=plain', ...args], { root: o.root ?? root, ...(o.cwd ? { cwd: o.cwd } : {}) });
}

async function buildOk(args: string[], o: { root?: string; cwd?: string } = {}): Promise<string> {
  const r = await build(args, o);
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return r.stdout.trim();
}

async function image(ref: string, at = root): Promise<{ config: ImageConfig; layers: Map<string, string>[] }> {
  const store = await OciStore.open(at);
  try {
    const img = await findImage(store, ref);
    await validateImage(store, img.descriptor);
    const manifest = JSON.parse((await store.read(img.descriptor)).toString('utf8')) as { layers: Descriptor[] };
    const layers: Map<string, string>[] = [];
    for (const l of manifest.layers) {
      const m = new Map<string, string>();
      for await (const e of readTar(await openLayerTar(store, l))) {
        const chunks: Buffer[] = [];
        if (e.body) for await (const c of e.body) chunks.push(c as Buffer);
        const name = e.header.name.replace(/\/$/, '');
        m.set(name, e.header.type === 'file' ? Buffer.concat(chunks).toString('utf8') : e.header.type === 'symlink' ? `-> ${e.header.linkname}` : `<${e.header.type}>`);
      }
      layers.push(m);
    }
    return { config: img.config, layers };
  } finally {
    await store.release();
  }
}

describe('builds: directives, ignore rules, confinement', () => {
  it('honours `# syntax` and `# escape` directives', async () => {
    const body = [
      'FROM busybox',
      'ENV WINPATH=C:\\dir\\sub',
      'RUN echo one `',
      '    two > /cont.txt',
      'LABEL l="a`',
      ' b"',
    ];
    const ctx = await context('directives', { Dockerfile: ['# syntax=docker/dockerfile:1', '# escape=`', '', ...body].join('\n') });
    await buildOk(['-t', 'directives', ctx]);
    const { config, layers } = await image('directives');
    // With escape=` the backslashes are literal and the backtick continues lines.
    expect(config.config?.Env).toContain('WINPATH=C:\\dir\\sub');
    expect(config.config?.Labels).toEqual({ l: 'a b' });
    expect(layers[layers.length - 1]!.get('cont.txt')).toBe('one two\n');
    // Control: the same ENV line without the directive loses its backslashes (Docker's default escape).
    const plain = await context('directives-plain', { Dockerfile: ['# syntax=docker/dockerfile:1', 'FROM busybox', 'ENV WINPATH=C:\\dir\\sub'].join('\n') });
    await buildOk(['-t', 'directives-plain', plain]);
    expect((await image('directives-plain')).config.config?.Env).toContain('WINPATH=C:dirsub');
    // A directive after the first instruction is a comment: backslash stays the escape there.
    const late = await context('directives-late', { Dockerfile: 'FROM busybox\n# escape=`\nENV WINPATH=C:\\dir\n' });
    await buildOk(['-t', 'directives-late', late]);
    expect((await image('directives-late')).config.config?.Env).toContain('WINPATH=C:dir');
  });

  it('applies .dockerignore with `!` and `**`, and <Dockerfile>.dockerignore over it', async () => {
    const ctx = await context('ignore', {
      Dockerfile: 'FROM busybox\nCOPY . /ctx/\n',
      '.dockerignore': ['# comment', '**/*.log', '!deep/keep.log', 'secret', '!secret/keep-me', 'tmp*', ''].join('\n'),
      'a.txt': 'a',
      'top.log': 'x',
      'logs/x.log': 'x',
      'deep/a/b/c.log': 'x',
      'deep/a/b/c.txt': 'kept',
      'deep/keep.log': 'kept',
      'secret/k': 'x',
      'secret/keep-me': 'kept',
      'tmpdir/x': 'x',
      'tmp.txt': 'x',
      'sub/Dockerfile': 'FROM busybox\nCOPY . /ctx/\n',
      'sub/Dockerfile.dockerignore': 'a.txt\nsub\n',
    });
    await buildOk(['-t', 'ignore', ctx]);
    const copied = [...(await image('ignore')).layers.at(-1)!.entries()].filter(([, v]) => !v.startsWith('<dir')).map(([k]) => k).sort();
    expect(copied).toEqual([
      'ctx/.dockerignore', 'ctx/Dockerfile', 'ctx/a.txt', 'ctx/deep/a/b/c.txt', 'ctx/deep/keep.log', 'ctx/secret/keep-me',
      'ctx/sub/Dockerfile', 'ctx/sub/Dockerfile.dockerignore',
    ]);
    // -f sub/Dockerfile uses sub/Dockerfile.dockerignore instead of .dockerignore.
    await buildOk(['-t', 'ignore2', '-f', join(ctx, 'sub', 'Dockerfile'), ctx]);
    const copied2 = [...(await image('ignore2')).layers.at(-1)!.keys()];
    expect(copied2).not.toContain('ctx/a.txt');
    expect(copied2).not.toContain('ctx/sub/Dockerfile');
    expect(copied2).toContain('ctx/top.log');
    expect(copied2).toContain('ctx/secret/k');
  });

  it('never follows a COPY source symlink out of the context', async () => {
    await writeFile(join(tmp.dir, 'outside-secret'), 'HOST SECRET\n');
    const ctx = await context('srclinks', { 'dir/f': 'in' });
    await symlink(join(tmp.dir, 'outside-secret'), join(ctx, 'abs-out'));
    await symlink('../outside-secret', join(ctx, 'rel-out'));
    await symlink('/etc/shadow', join(ctx, 'dir/shadow'));
    for (const src of ['abs-out', 'rel-out']) {
      await writeFile(join(ctx, 'Dockerfile'), `FROM busybox\nCOPY ${src} /x\n`);
      const r = await build(['-t', `srclinks-${src}`, ctx]);
      expect(r.code, `COPY ${src} must fail`).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`${src}.*(not found|no such)|(not found|no such).*${src}`, 'i'));
      expect(r.stderr).not.toContain('HOST SECRET');
    }
    // A link inside a copied directory is copied as a link, never read through.
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY dir /d\nCOPY . /all/\n');
    await buildOk(['-t', 'srclinks', ctx]);
    const { layers } = await image('srclinks');
    const all = new Map(layers.slice(1).flatMap((m) => [...m]));
    expect(all.get('d/shadow')).toBe('-> /etc/shadow');
    expect(all.get('all/abs-out')).toBe(`-> ${join(tmp.dir, 'outside-secret')}`);
    expect(all.get('all/rel-out')).toBe('-> ../outside-secret');
    expect([...all.values()]).not.toContain('HOST SECRET\n');
  });

  it('keeps COPY/ADD through destination symlinks inside the rootfs', async () => {
    const victim = join(tmp.dir, 'victim');
    await mkdir(victim);
    const ctx = await context('dstlinks', { 'a.txt': 'A' });
    const tarSrc = join(tmp.dir, 'tarsrc');
    await mkdir(tarSrc);
    await writeFile(join(tarSrc, 't.txt'), 'T');
    const tr = spawnSync('tar', ['-cf', join(ctx, 't.tar'), '-C', tarSrc, 't.txt']);
    expect(tr.status).toBe(0);
    await writeFile(join(ctx, 'Dockerfile'), [
      'FROM busybox',
      `RUN ln -s / /up && ln -s ../../../../../.. /dots && mkdir -p /in && ln -s ${victim} /in/host`,
      'COPY a.txt /up/a1',
      'COPY a.txt /dots/a2',
      'COPY a.txt /in/host/a3',
      'ADD t.tar /in/host/',
      `RUN cat /a1 /a2 ${victim}/a3 ${victim}/t.txt > /seen`,
    ].join('\n'));
    await buildOk(['-t', 'dstlinks', ctx]);
    // Nothing reached the host dir the links name.
    expect(await readdir(victim)).toEqual([]);
    const { layers } = await image('dstlinks');
    const all = new Map(layers.slice(1).flatMap((m) => [...m]));
    const inRoot = relative('/', victim);
    expect(all.get('a1')).toBe('A');
    expect(all.get('a2')).toBe('A');
    expect(all.get(`${inRoot}/a3`)).toBe('A');
    expect(all.get(`${inRoot}/t.txt`)).toBe('T');
    expect(all.get('seen')).toBe('AAAT');
    expect(all.get('in/host')).toBe(`-> ${victim}`);
  });

  it('works with a relative --root (resolved against the cwd)', async () => {
    const cwd = join(tmp.dir, 'relcwd');
    await mkdir(cwd);
    await ensureBusybox(join(cwd, 'rel-store'));
    const ctx = await context('relroot', {
      Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c echo hi > /c/x && cp /c/x /b\nCOPY a /a\n',
      a: 'A\n',
    });
    await buildOk(['-t', 'rel', relative(cwd, ctx)], { root: 'rel-store', cwd });
    const r = await runCli(['run', '--rm', 'rel', 'cat', '/b', '/a'], { root: 'rel-store', cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hi\nA\n');
    // Everything landed under cwd/rel-store, nothing under the repo (the default cwd of runCli).
    expect((await lstat(join(cwd, 'rel-store', 'overlay', 'snapshots'))).isDirectory()).toBe(true);
    expect((await image('rel', join(cwd, 'rel-store'))).config.config?.Cmd).toEqual(['sh']);
  });
});
