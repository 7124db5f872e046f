import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { tmpBusyboxStore, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage, writeImage } from '../../src/store/images.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { digestOf } from '../../src/image/digest.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
const LONG = '/bin/sh -c set -e; echo a very long command line that docker would truncate';
beforeEach(async () => {
  ({ tmp, root } = await tmpBusyboxStore());
  // busybox + ENV (empty layer) + a RUN layer: three history steps, two layers
  const s = await OciStore.open(root);
  const base = await loadImage(s, (await s.resolve(BUSYBOX_REF))!);
  const tarBlock = Buffer.alloc(1024); // an empty tar: two zero blocks
  const layer = await s.put(tarBlock, MediaTypes.OCI_LAYER);
  const created = new Date(Date.now() - 3 * 60_000).toISOString();
  const desc = await writeImage(
    s,
    {
      ...base.config,
      rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, digestOf(tarBlock)] },
      history: [
        ...(base.config.history ?? []),
        { created, created_by: '/bin/sh -c #(nop)  ENV A=1', empty_layer: true },
        { created, created_by: LONG, comment: 'buildkit.dockerfile.v0' },
      ],
    },
    [...base.manifest.layers, layer],
  );
  await s.tag('docker.io/library/hist:1', desc);
  await s.release();
});
afterEach(async () => tmp.cleanup());

describe('imgbuild history', () => {
  it('lists steps newest first like docker', async () => {
    const r = await runCli(['history', 'hist:1'], { root });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/^[0-9a-f]{12}\s+3 minutes ago\s+\/bin\/sh -c set -e; echo a very long command …\s+1\.02kB\s+buildkit\.dockerfile\.v0$/);
    expect(lines[2]).toMatch(/^<missing>\s+3 minutes ago\s+\/bin\/sh -c #\(nop\) {2}ENV A=1\s+0B\s*$/);
    expect(lines[3]).toMatch(/^<missing>\s+\d+ years ago\s+2\.\d\dMB\s+busybox rootfs from busybox-static$/);
  });

  it('--no-trunc shows full ids and commands; -q lists ids', async () => {
    const r = await runCli(['history', '--no-trunc', 'hist:1'], { root });
    expect(r.stdout).toContain(LONG);
    expect(r.stdout).toMatch(/\nsha256:[0-9a-f]{64}\s/);
    const q = await runCli(['history', '-q', 'hist:1'], { root });
    expect(q.stdout).toMatch(/^[0-9a-f]{12}\n<missing>\n<missing>\n$/);
    // docker's json lines cut CREATED BY as its table does, unless --no-trunc
    const j = await runCli(['history', '--format', 'json', 'hist:1'], { root });
    expect(JSON.parse(j.stdout.split('\n')[0]!)).toMatchObject({ CreatedBy: `${LONG.slice(0, 44)}…`, Size: '1.02kB', Comment: 'buildkit.dockerfile.v0' });
    const jn = await runCli(['history', '--no-trunc', '--format', 'json', 'hist:1'], { root });
    expect(JSON.parse(jn.stdout.split('\n')[0]!)).toMatchObject({ CreatedBy: LONG, ID: expect.stringMatching(/^sha256:/) });
    const t = await runCli(['history', '-H=false', '--format', 'table {{.ID}}\\t{{.CreatedAt}}\\t{{.Size}}', 'hist:1'], { root });
    expect(t.stdout).toMatch(/^IMAGE {10}CREATED AT {13}SIZE\n[0-9a-f]{12} {3}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) {3}1024\n/);
  });

  it('fails with one line for a missing image', async () => {
    expectOneLineError(await runCli(['history', 'nope:1'], { root }), /^imgbuild: NOT_FOUND: image not found: nope:1$/);
  });
});
