import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { open } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage } from '../../src/store/images.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
beforeEach(async () => {
  ({ tmp, root } = await tmpBusyboxStore());
});
afterEach(async () => tmp.cleanup());

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = b[0]! ^ 0x01;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

describe('imgbuild inspect', () => {
  it('prints a JSON array with Docker fields, the manifest and the config', async () => {
    const r = await runCli(['inspect', 'busybox', 'busybox:latest'], { root });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(out).toHaveLength(2);
    const o = out[0]!;
    expect(o.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(o.RepoTags).toEqual(['busybox:latest']);
    // Loaded from an archive, never pushed or pulled: no registry digest is known (as Docker).
    expect(o.RepoDigests).toEqual([]);
    expect(o).toMatchObject({ Os: 'linux', Created: '2023-11-14T22:13:20Z', Config: { Cmd: ['sh'] }, RootFS: { Type: 'layers' } });
    expect((o.Manifest as { config: { digest: string } }).config.digest).toBe(o.Id);
    expect((o.ImageConfig as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids).toEqual((o.RootFS as { Layers: string[] }).Layers);
  });

  it('formats with a template', async () => {
    const r = await runCli(['inspect', '-f', '{{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{.RepoTags}}', 'busybox'], { root });
    expect(r.stdout).toMatch(/^linux\/\w+ \["sh"\] \[busybox:latest\]\n$/);
    expect((await runCli(['inspect', '-f', '{{range $i, $t := .RepoTags}}{{$i}}={{$t}}{{end}}', 'busybox'], { root })).stdout).toBe('0=busybox:latest\n');
    expectOneLineError(await runCli(['inspect', '-f', '{{.Nope}}', 'busybox'], { root }), /template parsing error: template: :1:2: executing "" at <\.Nope>: map has no entry for key "Nope"$/);
  });

  it('fails with one line for a missing image and a malformed reference', async () => {
    expectOneLineError(await runCli(['inspect', '--type', 'image', 'nope'], { root }), /^imgbuild: NOT_FOUND: image not found: nope$/);
    expectOneLineError(await runCli(['inspect', 'nope'], { root }), /^imgbuild: NOT_FOUND: no such image or container: nope$/);
    expectOneLineError(await runCli(['inspect', 'Bad:Ref!'], { root }), /^imgbuild: INVALID_ARGUMENT: invalid reference format "Bad:Ref!"/);
  });

  it('fails with one line naming the blob when the config is corrupt', async () => {
    const s = await OciStore.open(root);
    const img = await loadImage(s, (await s.resolve(BUSYBOX_REF))!);
    await s.release();
    await flipByte(s.blobPath(img.manifest.config.digest), 10);
    const r = await runCli(['inspect', 'busybox'], { root });
    expectOneLineError(r, /digest mismatch: expected sha256:[0-9a-f]{64}/);
    expect(r.stderr).toContain(img.manifest.config.digest);
  });
});
