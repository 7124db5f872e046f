/**
 * A COPY/ADD over an image's layers that only adds new paths writes the step's upper dir directly
 * (src/builder/dispatch/copy-direct.ts) instead of writing through a host mount. These builds run
 * every case both ways (BuildOptions.mountForCopy is the reference) and compare the layers: the
 * same diffIDs with SOURCE_DATE_EPOCH, and without it the same entries (mode, owner, xattrs,
 * contents, and each mtime either equal or both the build's own). Each step is also checked to
 * have taken the way expected: a case that must fall back to the mount (a symlink on the way or as
 * the destination, a directory it merges into or that replaces a file) did, and the others (a file
 * replacing a file included) did not mount.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { build } from '../../src/builder/build.js';
import { OciStore } from '../../src/store/store.js';
import { openLayerTar } from '../../src/store/layers.js';
import { readTar } from '../../src/tar/reader.js';
import { encodeHeader, END_OF_ARCHIVE, type TarHeader } from '../../src/tar/format.js';
import type { Descriptor } from '../../src/image/types.js';
import type { BuildReporter } from '../../src/builder/dispatch/stage.js';
import type { PhaseClock } from '../../src/phases.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let ctx: string;

/**
 * Steps and how each must write: 'direct' (no mount at all), 'mount' (the destination mounted),
 * 'source-mount' (the destination written directly, the source image read through a mount), or ''
 * for a step not looked at; 'linked': a --link step (always written directly) that mounted nothing.
 */
const STEPS: [string, '' | 'direct' | 'mount' | 'source-mount' | 'linked'][] = [
  ['FROM busybox AS src', ''],
  ['RUN mkdir -p /out/in && echo s > /out/s && echo t > /out/in/t', ''],
  ['RUN mkdir /two && echo 2 > /two/f && echo u > /out/in/u && ln -s /two /tlink', ''],
  ['FROM busybox', ''],
  ['RUN echo old > /f && echo x > /f3 && mkdir -p /gone/sub /real /o && echo 1 > /o/f && ln -s /real /link && mkdir -m 1750 /odd && chown 5:6 /odd', ''],
  ['RUN rm -rf /gone && rm -rf /o && mkdir /o && echo 2 > /o/g', ''],
  ['ADD x.tar /', ''],
  ['COPY a /a', 'direct'], // a new file at the root
  ['COPY d /newdir', 'direct'], // a new dir at the root
  ['COPY a /etc/', 'direct'], // into busybox's /etc (copied up)
  ['COPY a b /var/tmp/n1/n2/', 'direct'], // nested new dirs below /var (kept) and /var/tmp (1777)
  ['COPY a /root/', 'direct'], // copy-up of a 0700 dir
  ['COPY a /odd/', 'direct'], // copy-up of an owned 1750 dir
  ['COPY a /xdir/', 'direct'], // copy-up keeps a user.* xattr
  ['COPY --chown=nobody:nogroup --chmod=640 a /etc/owned/', 'direct'], // names from the lower /etc/passwd
  ['COPY d/ /etc/', 'direct'], // a dir's contents into an existing dir, names all new
  ['COPY a /gone/sub/', 'direct'], // below a whited-out dir
  ['COPY a /o/f', 'direct'], // /o is opaque: the lower /o/f is gone
  ['COPY --link --chown=nobody:nogroup a /linked', 'linked'], // names read from the layers, no view mounted
  ['WORKDIR /var', ''],
  ['COPY a /tmp/wd', 'direct'], // a pending WORKDIR the image has is left as it is
  ['WORKDIR /app', ''],
  ['COPY a .', 'direct'], // the pending WORKDIR is made in the same step
  ['COPY b .', 'direct'], // into /app from a lower layer
  ['USER nobody', ''],
  ['WORKDIR /etc/wd', ''],
  ['COPY a ./', 'direct'], // a pending WORKDIR owned by the USER, below a copied-up /etc
  ['USER root', ''],
  ['ADD x.tar /fresh/', 'direct'], // an archive into a new dir
  ['COPY --from=src /two /fromsrc', 'direct'], // a dir one layer of another stage holds, into a new dir
  ['COPY --from=src /out/s /sfile', 'direct'], // a file of a lower layer of it
  ['COPY --from=src /out/in /fromin', 'source-mount'], // /out/in is in two layers: read through a mount
  ['COPY --from=src /two/f /out/s /etc/fs/', 'source-mount'], // two layers hold the sources
  ['COPY --from=src /out/in/* /glob/', 'source-mount'], // a wildcard
  ['COPY --from=src /tlink /tl', 'source-mount'], // a symlink
  ['COPY --from=src /etc/passwd /etc/passwd', 'direct'], // replaces a file of the image
  ['COPY a /f', 'direct'], // replaces a file of a lower layer
  ['COPY d /f3', 'mount'], // a dir replaces a file of a lower layer
  ['COPY a /link/', 'mount'], // through a symlinked dir
  ['COPY a /link', 'mount'], // onto a symlink to a dir (the copy goes into it)
  ['COPY d/sub/f /etc/a', 'direct'], // replaces the file an earlier COPY put into /etc
  ['COPY nsswitch.conf /etc/', 'direct'], // replaces busybox's file of that name in /etc
  ['COPY d/ /newdir/', 'mount'], // merges into a dir whose names exist
  ['ADD x.tar /etc/', 'mount'], // an archive into an existing dir
  ['COPY --parents d/sub /p/', 'mount'],
  ['COPY b /a', 'direct'], // replaces a file a COPY wrote
  ['WORKDIR /var/tmp/wd2', ''],
  ['WORKDIR /etc', 'direct'], // the stage's last WORKDIRs get a layer step of their own
];

function xattrTar(): Buffer {
  const h = (name: string, type: TarHeader['type'], mode: number, size = 0, xattrs = new Map<string, Buffer>()): Buffer =>
    encodeHeader({ name, type, mode, uid: 3, gid: 4, size, mtime: 1600000000, linkname: '', devmajor: 0, devminor: 0, xattrs });
  const body = Buffer.alloc(512);
  body.write('t\n');
  return Buffer.concat([
    h('xdir', 'dir', 0o751, 0, new Map([['user.k', Buffer.from('v')]])),
    h('xdir/t', 'file', 0o644, 2), body, END_OF_ARCHIVE,
  ]);
}

beforeAll(async () => {
  tmp = await makeTmp();
  root = join(tmp.dir, 'root');
  ctx = join(tmp.dir, 'ctx');
  await ensureBusybox(root);
  await mkdir(join(ctx, 'd', 'sub'), { recursive: true });
  await writeFile(join(ctx, 'a'), 'a\n');
  await writeFile(join(ctx, 'b'), 'b\n');
  await writeFile(join(ctx, 'nsswitch.conf'), 'hosts: files\n');
  await writeFile(join(ctx, 'd', 'passwd2'), 'p\n');
  await writeFile(join(ctx, 'd', 'sub', 'f'), 'f\n');
  await writeFile(join(ctx, 'x.tar'), xattrTar());
  await writeFile(join(ctx, 'Dockerfile'), STEPS.map(([s]) => s).join('\n') + '\n');
}, 60_000);

afterAll(async () => {
  await tmp.cleanup();
});

/**
 * Builds the Dockerfile; returns the layers and, per step label, how it wrote: a destination
 * written directly has a copy-up phase (copy-add.ts), any mount a mount phase.
 */
async function buildWith(o: { mountForCopy: boolean; sourceDateEpoch?: number }): Promise<{ layers: Descriptor[]; diffIds: string[]; ways: Map<string, string> }> {
  const clocks: [string, PhaseClock][] = [];
  const reporter: BuildReporter = {
    task: (label) => ({ log() {}, done() {}, fail() {}, update() {}, phases: (c: PhaseClock) => clocks.push([label, c]) }),
  };
  const r = await build({
    root, contextDir: ctx, tags: ['direct-test'], noCache: true, reporter, mountForCopy: o.mountForCopy,
    ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
  });
  const store = await OciStore.open(root);
  const manifest = JSON.parse((await store.read(r.descriptor)).toString('utf8')) as { layers: Descriptor[] };
  const way = (c: PhaseClock): string => {
    if (!c.totalsMs.has('copy-up')) return c.totalsMs.has('mount') ? 'mount' : 'linked';
    return c.totalsMs.has('mount') ? 'source-mount' : 'direct';
  };
  return { layers: manifest.layers, diffIds: r.config.rootfs.diff_ids, ways: new Map(clocks.map(([l, c]) => [l, way(c)])) };
}

/** A layer's entries, an mtime at or after `since` (the build's own writes) as 'new'. */
async function entriesOf(layer: Descriptor, since: number): Promise<string[]> {
  const store = await OciStore.open(root);
  const out: string[] = [];
  for await (const e of readTar(await openLayerTar(store, layer))) {
    const h = e.header;
    const hash = createHash('sha256');
    for await (const c of e.body) hash.update(c);
    const xattrs = [...h.xattrs].map(([k, v]) => `${k}=${v.toString('hex')}`).join(',');
    const mtime = h.mtime >= since ? 'new' : String(h.mtime);
    out.push(`${h.name} ${h.type} ${h.mode.toString(8)} ${h.uid}:${h.gid} ${h.size} ${h.linkname} ${xattrs} ${mtime} ${hash.digest('hex').slice(0, 12)}`);
  }
  return out;
}

describe('COPY into the upper dir without a mount', () => {
  it('gives the layers a write through the mount gives, and falls back where it must', async () => {
    const mounted = await buildWith({ mountForCopy: true, sourceDateEpoch: 1700000000 });
    const direct = await buildWith({ mountForCopy: false, sourceDateEpoch: 1700000000 });
    expect(direct.diffIds).toEqual(mounted.diffIds);
    // The way each step took.
    for (const [step, how] of STEPS) {
      if (!how) continue;
      const label = [...direct.ways.keys()].find((l) => l.endsWith(step));
      expect(label, step).toBeDefined();
      expect(direct.ways.get(label!), step).toBe(how);
      expect(mounted.ways.get(label!), step).toBe('mount');
    }

    // Without an epoch nothing is clamped: every time of every entry is compared.
    const since = Math.floor(Date.now() / 1000) - 1;
    const m2 = await buildWith({ mountForCopy: true });
    const d2 = await buildWith({ mountForCopy: false });
    expect(d2.layers.length).toBe(m2.layers.length);
    for (let i = 1; i < m2.layers.length; i++) {
      expect(await entriesOf(d2.layers[i]!, since), `layer ${i}`).toEqual(await entriesOf(m2.layers[i]!, since));
    }
    // The copy-ups kept what matters: /var/tmp's mode, /xdir's xattr, /var's old time.
    const varTmp = (await entriesOf(d2.layers[7]!, since)).join('\n');
    expect(varTmp).toMatch(/^var dir 755 0:0 0 {2} 1700000000/m);
    expect(varTmp).toMatch(/^var\/tmp dir 1777 0:0 0 {2} new/m);
    expect((await entriesOf(d2.layers[10]!, since)).join('\n')).toMatch(/^xdir dir 751 3:4 0  user\.k=76 new/m);
  }, 90_000);
});
