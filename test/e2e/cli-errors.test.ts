/**
 * Issue outcome "a missing image, a corrupt blob (flip a byte in blobs/), a malformed reference or
 * a store from a newer version each give a one-line error naming the problem, and exit non-zero",
 * checked across the commands that read images (run, build, history, tag, rmi, save), not only
 * images/inspect.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/layers/store.js';
import type { Manifest } from '../../src/layers/types.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let ctx: string;

beforeEach(async () => {
  tmp = await makeTmp('imgbuild-cli-errors-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  ctx = join(tmp.dir, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN true\n');
});
afterEach(async () => {
  await tmp.cleanup();
});

const cli = (args: string[]) => runCli(args, { root });
const out = () => join(tmp.dir, 'out.tar');

/** Flips one byte in the middle of the busybox layer blob; returns its digest. */
async function corruptLayer(): Promise<string> {
  const store = await OciStore.open(root);
  try {
    const desc = (await store.resolve(BUSYBOX_REF))!;
    const manifest = JSON.parse((await store.read(desc)).toString('utf8')) as Manifest;
    const layer = manifest.layers[0]!;
    const p = join(root, 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
    const b = await readFile(p);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0xff;
    await writeFile(p, b);
    return layer.digest;
  } finally {
    await store.release();
  }
}

describe('one-line errors', () => {
  it('a missing image, for every command that reads one', async () => {
    for (const args of [['run', '--rm', 'nosuch:1', 'true'], ['history', 'nosuch:1'], ['tag', 'nosuch:1', 'x:1'], ['rmi', 'nosuch:1'], ['save', '-o', out(), 'nosuch:1']]) {
      const r = await cli(args);
      expectOneLineError(r, /nosuch:1/);
      expect(r.stderr, args.join(' ')).toMatch(/NOT_FOUND|not found/i);
    }
    // save left no partial archive
    expect(await readdir(tmp.dir)).not.toContain('out.tar');
  });

  it('a malformed reference', async () => {
    for (const args of [['run', '--rm', 'UPPER/Case::x', 'true'], ['history', 'a:b:c'], ['tag', 'busybox', 'bad ref'], ['rmi', 'x//y:'], ['build', '-q', '-t', 'Bad:Name', ctx]]) {
      const r = await cli(args);
      expectOneLineError(r, /reference|INVALID/i);
    }
  });

  it('a store from a newer version', async () => {
    await writeFile(join(root, 'imgbuild.json'), JSON.stringify({ version: 99 }));
    for (const args of [['run', '--rm', 'busybox', 'true'], ['build', '-q', ctx], ['history', 'busybox'], ['tag', 'busybox', 'x:1'], ['rmi', 'busybox'], ['prune']]) {
      expectOneLineError(await cli(args), /format version 99/);
    }
  });

  it('a corrupt layer blob: run and build name the blob', async () => {
    const digest = await corruptLayer();
    const hex = digest.slice('sha256:'.length, 'sha256:'.length + 12);
    const run = await cli(['run', '--rm', 'busybox', 'true']);
    expectOneLineError(run, new RegExp(hex));
    expect(run.code).toBe(125);
    const build = await cli(['build', '-q', ctx]);
    expectOneLineError(build, new RegExp(hex));
    // Nothing was unpacked from the bad blob: a later run still fails the same way.
    expectOneLineError(await cli(['run', '--rm', 'busybox', 'true']), new RegExp(hex));
  });
});
