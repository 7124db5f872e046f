/**
 * The library as a user gets it: the built dist/index.js that package.json names, used the way an
 * embedding program would (open a store, find and list its images, run a container, tell errors
 * apart by code).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import { REPO_ROOT } from './helpers/cli.js';
import { BUSYBOX_REF, tmpBusyboxStore } from './helpers/base-image.js';

type Lib = typeof import('../src/index.js');

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  main: string;
  types: string;
  exports: { '.': { types: string; default: string } };
};

let lib: Lib;
let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let root: string;

beforeAll(async () => {
  lib = (await import(pathToFileURL(join(REPO_ROOT, pkg.exports['.'].default)).href)) as Lib;
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-lib-'));
});
afterAll(async () => tmp?.cleanup());

describe('the package entry point', () => {
  it('names files the build emits, with their declarations', () => {
    expect(pkg.exports['.'].default).toBe(`./${pkg.main}`);
    for (const f of [pkg.main, pkg.types, pkg.exports['.'].types]) expect(existsSync(join(REPO_ROOT, f)), f).toBe(true);
    expect(readFileSync(join(REPO_ROOT, pkg.types), 'utf8')).toMatch(/export \{[^}]*\brunContainer\b/);
  });

  it('opens a store and finds and lists its images', async () => {
    const store = await lib.OciStore.open(root);
    try {
      const listed = await lib.listImages(store);
      expect(listed.map((l) => l.entry.ref)).toEqual([BUSYBOX_REF]);
      const img = await lib.findImage(store, 'busybox');
      expect(lib.imageId(img)).toBe(img.manifest.config.digest);
      expect(lib.familiarReference(lib.parseReference(listed[0]!.entry.ref!))).toBe('busybox:latest');
    } finally {
      await store.release();
    }
  });

  it('tells its errors apart by code', async () => {
    const store = await lib.OciStore.open(root);
    try {
      const e = await lib.findImage(store, 'no-such-image:1').catch((x: unknown) => x);
      expect(lib.isImgbuildError(e)).toBe(true);
      expect(e).toBeInstanceOf(lib.ImageNotFoundError);
      expect((e as { code: string }).code).toBe('NOT_FOUND');
      const r = await lib.removeContainer(root, 'no-such-container').catch((x: unknown) => x);
      expect((r as { code: string }).code).toBe('NOT_FOUND');
    } finally {
      await store.release();
    }
  });

  it('runs a container to its exit status and removes it', async () => {
    const store = await lib.OciStore.open(root);
    try {
      let out = '';
      const stdout = new Writable({
        write(chunk: Buffer, _enc, cb) {
          out += chunk.toString();
          cb();
        },
      });
      let created: string | undefined;
      const r = await lib.runContainer(store, {
        image: 'busybox',
        cmd: ['sh', '-c', 'echo hello from $HOSTNAME; exit 3'],
        hostname: 'lib-test',
        autoRemove: true,
        io: { stdout },
        onCreated: (id) => (created = id),
      });
      expect(r.id).toBe(created);
      expect(r.status?.exitCode).toBe(3);
      expect(out).toBe('hello from lib-test\n');
      expect(await lib.listContainers(root)).toEqual([]);
    } finally {
      await store.release();
    }
  });
});
