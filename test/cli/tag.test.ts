import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { tmpBusyboxStore } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
beforeEach(async () => {
  ({ tmp, root } = await tmpBusyboxStore());
});
afterEach(async () => tmp.cleanup());

describe('imgbuild tag', () => {
  it('adds names by name, id prefix and digest; retagging moves a tag', async () => {
    const id = (await runCli(['inspect', '-f', '{{.Id}}', 'busybox'], { root })).stdout.trim();
    const digest = (await runCli(['inspect', '-f', '{{.Descriptor.digest}}', 'busybox'], { root })).stdout.trim();
    for (const [src, dst] of [['busybox', 'mine:1'], [id.slice(7, 17), 'localhost:5000/a/b:t'], [`busybox@${digest}`, 'ghcr.io/o/r']]) {
      const r = await runCli(['tag', src!, dst!], { root });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('');
    }
    const s = await OciStore.open(root);
    const refs = (await s.list()).map((e) => e.ref).sort();
    expect(refs).toEqual(['docker.io/library/busybox:latest', 'docker.io/library/mine:1', 'ghcr.io/o/r:latest', 'localhost:5000/a/b:t']);
    for (const e of await s.list()) expect(e.descriptor.digest).toBe(digest);
    await s.release();
  });

  it('fails with one line for a missing source, a malformed target and a digest target', async () => {
    expectOneLineError(await runCli(['tag', 'nope', 'x'], { root }), /^imgbuild: NOT_FOUND: image not found: nope$/);
    expectOneLineError(await runCli(['tag', 'busybox', 'UPPER'], { root }), /invalid reference format "UPPER": repository name must be lowercase/);
    expectOneLineError(await runCli(['tag', 'busybox', `x@sha256:${'a'.repeat(64)}`], { root }), /a tag cannot contain a digest/);
  });
});
