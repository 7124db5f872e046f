/**
 * Dispatch without RUN: ARG scoping, ADD (local archives, URLs with --checksum from a 127.0.0.1
 * server), and the progress views the CLI drives. Builds are real (overlay snapshots, layers).
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, writeFile, readFile, lstat } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { makeTmp } from '../helpers/tmp.js';
import { build } from '../../src/builder/build.js';
import { OciStore } from '../../src/store/store.js';
import { openLayerTar } from '../../src/store/layers.js';
import { applyLayer } from '../../src/tar/apply.js';
import type { Descriptor } from '../../src/image/types.js';
import { createProgress } from '../../src/cli/progress.js';
import { validateImage } from '../conformance/validate-image.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let ctx: string;
beforeEach(async () => {
  tmp = await makeTmp();
  root = join(tmp.dir, 'root');
  ctx = join(tmp.dir, 'ctx');
  await mkdir(ctx, { recursive: true });
});
afterEach(async () => {
  await tmp.cleanup();
});

async function rootfsOf(desc: Descriptor): Promise<string> {
  const store = await OciStore.open(root);
  await validateImage(store, desc);
  const dir = join(tmp.dir, `rootfs-${desc.digest.slice(7, 19)}`);
  await mkdir(dir, { recursive: true });
  const manifest = JSON.parse((await store.read(desc)).toString('utf8')) as { layers: Descriptor[] };
  for (const l of manifest.layers) await applyLayer(dir, await openLayerTar(store, l), { mode: 'flat' });
  return dir;
}

async function dockerfile(text: string): Promise<void> {
  await writeFile(join(ctx, 'Dockerfile'), text);
}

describe('ARG scoping', () => {
  it('meta ARGs reach FROM only unless redeclared; build args override; platform args on request', async () => {
    await dockerfile([
      'ARG BASE=scratch',
      'ARG META=meta-default',
      'ARG OTHER=other',
      'FROM $BASE',
      'ARG META',
      'ARG LOCAL=local-default',
      'ARG TARGETARCH',
      'ENV SEEN_META=$META SEEN_OTHER=x${OTHER}x SEEN_LOCAL=$LOCAL ARCH=$TARGETARCH UNSET=x${BUILDARCH}x',
      '',
    ].join('\n'));
    const r = await build({ root, contextDir: ctx, buildArgs: { LOCAL: 'from-cli' } });
    const env = r.config.config?.Env ?? [];
    expect(env).toEqual(expect.arrayContaining([
      'SEEN_META=meta-default', 'SEEN_OTHER=xx', 'SEEN_LOCAL=from-cli', `ARCH=${process.arch === 'x64' ? 'amd64' : process.arch}`, 'UNSET=xx',
    ]));
  });
  it('COPY --from is expanded with the meta ARGs', async () => {
    await writeFile(join(ctx, 'x'), 'X');
    await dockerfile('ARG SRC=one\nFROM scratch AS one\nCOPY x /x\nFROM scratch AS two\nCOPY --from=$SRC /x /y\n');
    const r = await build({ root, contextDir: ctx });
    expect(await readFile(join(await rootfsOf(r.descriptor), 'y'), 'utf8')).toBe('X');
  });
  it('a later ENV shadows an ARG of the same name', async () => {
    await dockerfile('FROM scratch\nARG V=arg\nENV V=env\nENV W=$V\n');
    const r = await build({ root, contextDir: ctx, buildArgs: { V: 'cli' } });
    expect(r.config.config?.Env).toEqual(expect.arrayContaining(['V=env', 'W=env']));
  });
});

describe('ADD', () => {
  it('extracts local tar archives in every compression, copies other files as they are', async () => {
    const src = join(tmp.dir, 'src');
    await mkdir(join(src, 'pkg/sub'), { recursive: true });
    await writeFile(join(src, 'pkg/a.txt'), 'A');
    await writeFile(join(src, 'pkg/sub/b.txt'), 'B');
    const tarOf = (out: string, flag: string[]): void => {
      const r = spawnSync('tar', ['-C', src, ...flag, '-cf', join(ctx, out), 'pkg']);
      expect(r.status).toBe(0);
    };
    tarOf('plain.tar', []);
    tarOf('g.tar.gz', ['-z']);
    tarOf('b.tar.bz2', ['-j']);
    tarOf('x.tar.xz', ['-J']);
    tarOf('z.tar.zst', ['--zstd']);
    await writeFile(join(ctx, 'not-an-archive.gz'), 'just text');
    await dockerfile([
      'FROM scratch',
      'ADD plain.tar /plain/',
      'ADD g.tar.gz /g',
      'ADD b.tar.bz2 /b/',
      'ADD x.tar.xz /x/',
      'ADD z.tar.zst /z/',
      'ADD not-an-archive.gz /n/',
      'ADD --unpack=false g.tar.gz /kept/',
      '',
    ].join('\n'));
    const r = await build({ root, contextDir: ctx });
    const fs = await rootfsOf(r.descriptor);
    for (const d of ['plain', 'g', 'b', 'x', 'z']) {
      expect(await readFile(join(fs, d, 'pkg/a.txt'), 'utf8')).toBe('A');
      expect(await readFile(join(fs, d, 'pkg/sub/b.txt'), 'utf8')).toBe('B');
    }
    expect(await readFile(join(fs, 'n/not-an-archive.gz'), 'utf8')).toBe('just text');
    expect((await lstat(join(fs, 'kept/g.tar.gz'))).isFile()).toBe(true);
  });

  it('downloads URLs from a local server, checking --checksum', async () => {
    const body = Buffer.from('downloaded content\n');
    const server: Server = createServer((req, res) => {
      if (req.url === '/files/tool.sh') {
        res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT' });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const sum = createHash('sha256').update(body).digest('hex');
      await dockerfile(`FROM scratch\nADD --checksum=sha256:${sum} http://127.0.0.1:${port}/files/tool.sh /opt/\nADD http://127.0.0.1:${port}/files/tool.sh /renamed\n`);
      const r = await build({ root, contextDir: ctx });
      const fs = await rootfsOf(r.descriptor);
      expect(await readFile(join(fs, 'opt/tool.sh'), 'utf8')).toBe(body.toString());
      const st = await lstat(join(fs, 'renamed'));
      expect(st.mode & 0o777).toBe(0o600);
      expect(Math.round(st.mtimeMs / 1000)).toBe(1700000000);

      await dockerfile(`FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/tool.sh /opt/\n`);
      await expect(build({ root, contextDir: ctx })).rejects.toThrow(/checksum mismatch/);
      await dockerfile(`FROM scratch\nADD http://127.0.0.1:${port}/missing /opt/\n`);
      await expect(build({ root, contextDir: ctx })).rejects.toThrow(/HTTP 404/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('COPY into images', () => {
  it('resolves --chown names from the image, follows image symlinks inside the rootfs, keeps heredoc content', async () => {
    await mkdir(join(ctx, 'etc'), { recursive: true });
    await writeFile(join(ctx, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nsvc:x:321:654::/srv:/bin/sh\n');
    await writeFile(join(ctx, 'etc/group'), 'root:x:0:\nsvcgrp:x:654:\n');
    await writeFile(join(ctx, 'f'), 'F');
    await dockerfile([
      'FROM scratch',
      'COPY etc/ /etc/',
      'COPY --chown=svc:svcgrp f /owned',
      'ARG NAME=value',
      'COPY <<EOF /inline.txt',
      'name=${NAME}',
      'EOF',
      '',
    ].join('\n'));
    const r = await build({ root, contextDir: ctx });
    const fs = await rootfsOf(r.descriptor);
    const st = await lstat(join(fs, 'owned'));
    expect([st.uid, st.gid]).toEqual([321, 654]);
    expect(await readFile(join(fs, 'inline.txt'), 'utf8')).toBe('name=value\n');
  });
});

describe('COPY --link', () => {
  it('makes a layer independent of its parent: reused on another base, still stacked correctly', async () => {
    await writeFile(join(ctx, 'base-a'), 'A');
    await writeFile(join(ctx, 'base-b'), 'B');
    await writeFile(join(ctx, 'f'), 'linked');
    const events: string[] = [];
    const reporter = { task: (label: string) => ({ log() {}, done: (n?: string) => void events.push(`${n ?? 'DONE'} ${label}`), fail() {} }) };
    await dockerfile('FROM scratch\nCOPY base-a /base\nCOPY --link f /app/f\n');
    const a = await build({ root, contextDir: ctx, reporter });
    await dockerfile('FROM scratch\nCOPY base-b /base\nCOPY --link f /app/f\n');
    const b = await build({ root, contextDir: ctx, reporter });
    expect(events.filter((e) => e.startsWith('CACHED'))).toEqual(['CACHED [stage-0 3/3] COPY --link f /app/f']);
    expect(b.config.rootfs.diff_ids[1]).toBe(a.config.rootfs.diff_ids[1]);
    // A following step stacks on the linked layer's chain (unpacked on demand).
    await dockerfile('FROM scratch\nCOPY base-b /base\nCOPY --link f /app/f\nCOPY base-a /app/g\n');
    const c = await build({ root, contextDir: ctx });
    const fs = await rootfsOf(c.descriptor);
    expect(await readFile(join(fs, 'base'), 'utf8')).toBe('B');
    expect(await readFile(join(fs, 'app/f'), 'utf8')).toBe('linked');
    expect(await readFile(join(fs, 'app/g'), 'utf8')).toBe('A');
  });
});

describe('progress views', () => {
  function capture(): { out: PassThrough; text: () => string } {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    return { out, text: () => Buffer.concat(chunks).toString('utf8') };
  }
  it('plain: numbered steps after a blank line, output lines with their step and seconds (BuildKit), CACHED and DONE lines', () => {
    const c = capture();
    let t = 0;
    const p = createProgress({ mode: 'plain', out: c.out, isTTY: false, now: () => t });
    const a = p.task('[base 2/3] RUN make');
    t = 100;
    a.log('compiling');
    t = 300;
    a.done();
    const b = p.task('[base 3/3] COPY x /x');
    b.done('CACHED');
    const e = p.task('[base 4/4] RUN false');
    e.fail('exit code: 1');
    p.close();
    expect(c.text()).toBe([
      '#1 [base 2/3] RUN make',
      '#1 0.100 compiling',
      '#1 DONE 0.3s',
      '',
      '#2 [base 3/3] COPY x /x',
      '#2 CACHED',
      '',
      '#3 [base 4/4] RUN false',
      '#3 ERROR: exit code: 1',
      '',
      'slowest steps: #1 RUN make 0.3s',
      '',
    ].join('\n'));
  });
  it('plain: lines of concurrent steps each carry their step; seconds as BuildKit prints them', () => {
    const c = capture();
    let t = 0;
    const p = createProgress({ mode: 'plain', out: c.out, isTTY: false, now: () => t });
    const a = p.task('[a 2/2] RUN make');
    const b = p.task('[b 2/2] RUN make');
    t = 5;
    a.log('a1');
    b.log('b1');
    t = 12_345;
    a.log('a2');
    t = 123_456;
    b.log('b2');
    b.done();
    a.done();
    expect(c.text()).toBe([
      '#1 [a 2/2] RUN make', '', '#2 [b 2/2] RUN make',
      '#1 0.005 a1', '#2 0.005 b1', '#1 12.35 a2', '#2 123.5 b2', '#2 DONE 123.5s', '#1 DONE 123.5s', '',
    ].join('\n'));
  });
  it('tty: output lines above the live block carry their step', () => {
    const c = capture();
    const p = createProgress({ mode: 'tty', out: c.out, isTTY: true, now: () => 0 });
    const a = p.task('[a 2/2] RUN make');
    const b = p.task('[b 2/2] RUN make');
    b.log('b1');
    a.log('a1');
    a.done();
    b.done();
    p.close();
    const text = c.text();
    expect(text).toContain('[b 2/2] b1\n');
    expect(text).toContain('[a 2/2] a1\n');
  });
  it('tty: running steps are redrawn in place with elapsed time; finished ones stay', () => {
    const c = capture();
    let t = 0;
    const p = createProgress({ mode: 'tty', out: c.out, isTTY: true, now: () => t });
    const a = p.task('step A');
    const b = p.task('step B');
    t = 1500;
    a.log('output of A');
    a.done();
    b.done('CACHED');
    p.close();
    const text = c.text();
    expect(text).toContain('=> step A 0.0s\n');
    expect(text).toContain('\x1b[2A\x1b[0J'); // two live lines erased before redrawing
    expect(text).toContain('step A output of A\n'); // the step's tag (here its whole label) first
    expect(text).toContain('=> step A 1.5s\n');
    expect(text).toContain('=> CACHED step B 1.5s\n');
    const q = capture();
    createProgress({ mode: 'quiet', out: q.out, isTTY: true }).task('x').done();
    expect(q.text()).toBe('');
  });
});
