/**
 * `imgbuild save [-o FILE] [--format oci|docker] IMAGE...`: writes images to a tar archive, streamed
 * blob by blob straight from the store through verifying readers (a corrupt blob aborts the save and
 * no partial archive is left behind).
 *  - oci (default): an OCI image layout (oci-layout, index.json whose entries carry the
 *    `org.opencontainers.image.ref.name` / `io.containerd.image.name` annotations, blobs/).
 *  - docker: a docker-archive (manifest.json with Config/RepoTags/Layers, repositories, the config
 *    and one uncompressed tar per layer) that `docker load` and `skopeo docker-archive:` read.
 */
import type { Command } from 'commander';
import type { Readable, Writable } from 'node:stream';
import type { CliContext } from '../context.js';

interface Opts {
  output?: string;
  format?: string;
}

const MTIME = new Date(0);

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('save')
    .description('save images to a tar archive (OCI layout or docker-archive)')
    .argument('<images...>')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--format <format>', 'archive format: oci or docker', 'oci')
    .action(async (inputs: string[], opts: Opts) => {
      const { createWriteStream } = await import('node:fs');
      const { rename, rm } = await import('node:fs/promises');
      const { dirname, basename, join } = await import('node:path');
      const { randomBytes } = await import('node:crypto');
      const { pipeline } = await import('node:stream/promises');
      const tar = (await import('tar-stream')).default;
      const { findImage, imageId } = await import('../../layers/image.js');
      const { parseReference, formatReference, familiarReference, familiarName } = await import('../../layers/reference.js');
      const { MediaTypes, layerCompression } = await import('../../layers/media-types.js');
      const { hexOf, algorithmOf } = await import('../../layers/digest.js');
      const { InvalidArgumentError } = await import('../../errors.js');
      const format = opts.format ?? 'oci';
      if (format !== 'oci' && format !== 'docker') throw new InvalidArgumentError(`unsupported --format ${JSON.stringify(format)}: use oci or docker`);
      const toStdout = opts.output === undefined || opts.output === '-';
      if (toStdout && ctx.isTTY) throw new InvalidArgumentError('refusing to write an archive to a terminal; use -o FILE or redirect stdout');
      const store = await ctx.store();

      // Resolve everything first, so a missing image or unreadable manifest fails before any output.
      const images: { img: Awaited<ReturnType<typeof findImage>>; ref?: string }[] = [];
      for (const input of inputs) {
        const img = await findImage(store, input);
        let ref: string | undefined;
        try {
          const r = parseReference(input);
          if (!r.digest && img.ref === formatReference(r)) ref = img.ref;
        } catch {
          // an id: saved without a name, as docker does
        }
        if (images.some((x) => x.img.descriptor.digest === img.descriptor.digest && x.ref === ref)) continue; // named twice
        images.push({ img, ...(ref !== undefined ? { ref } : {}) });
      }

      const pack = tar.pack();
      let out: Writable;
      let tmp: string | undefined;
      if (toStdout) out = ctx.stdout;
      else {
        tmp = join(dirname(opts.output!), `.${basename(opts.output!)}.${randomBytes(4).toString('hex')}.tmp`);
        out = createWriteStream(tmp, { flags: 'wx' });
      }
      const piped = pipeline(pack, out, { end: !toStdout, signal: ctx.signal });
      piped.catch(() => {}); // awaited below; avoid an unhandled rejection while entries are written

      const addBuffer = (name: string, data: Buffer): Promise<void> =>
        new Promise((res, rej) => pack.entry({ name, size: data.length, mode: 0o644, mtime: MTIME }, data, (e) => (e ? rej(e) : res())));
      const addDir = (name: string): Promise<void> =>
        new Promise((res, rej) => pack.entry({ name, type: 'directory', mode: 0o755, mtime: MTIME }, (e) => (e ? rej(e) : res())));
      const addStream = async (name: string, size: number, src: Readable): Promise<void> => {
        let cbErr: Error | null | undefined;
        const done = new Promise<void>((res, rej) => {
          const entry = pack.entry({ name, size, mode: 0o644, mtime: MTIME }, (e) => {
            cbErr = e;
            if (e) rej(e);
            else res();
          });
          pipeline(src, entry).catch(rej);
        });
        await done;
        if (cbErr) throw cbErr;
      };
      const written = new Set<string>();
      const dirs = new Set<string>();
      const blobName = async (d: string): Promise<string> => {
        const alg = algorithmOf(d as never);
        for (const dir of ['blobs/', `blobs/${alg}/`]) {
          if (!dirs.has(dir)) {
            dirs.add(dir);
            await addDir(dir);
          }
        }
        return `blobs/${alg}/${hexOf(d as never)}`;
      };
      const addBlob = async (desc: { digest: string; size: number }): Promise<string> => {
        const name = await blobName(desc.digest);
        if (written.has(name)) return name;
        written.add(name);
        await addStream(name, desc.size, await store.reader(desc as never));
        return name;
      };

      try {
        if (format === 'oci') {
          await addBuffer('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
          const manifests: unknown[] = [];
          for (const { img, ref } of images) {
            await addBlob(img.manifest.config);
            for (const l of img.manifest.layers) await addBlob(l);
            const mname = await blobName(img.descriptor.digest);
            if (!written.has(mname)) {
              written.add(mname);
              await addBuffer(mname, img.rawManifest);
            }
            manifests.push({
              mediaType: img.descriptor.mediaType,
              digest: img.descriptor.digest,
              size: img.descriptor.size,
              ...(ref !== undefined ? { annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref } } : {}),
            });
          }
          await addBuffer('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OCI_INDEX, manifests })));
        } else {
          const { ensureCompressed } = await import('../../layers/compress.js');
          // One entry per image, with all the names it was saved under (as docker save writes).
          const entries: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
          const repositories: Record<string, Record<string, string>> = {};
          for (const { img, ref } of images) {
            const configName = await addBlob(img.manifest.config);
            const layerNames: string[] = [];
            for (const l of img.manifest.layers) {
              // docker-archive layers are plain tars named by their diffID.
              const plain = layerCompression(l.mediaType) === 'none' ? l : await ensureCompressed(store, l, 'none', { format: 'docker', signal: ctx.signal });
              layerNames.push(await addBlob(plain));
            }
            const repoTags: string[] = [];
            if (ref !== undefined) {
              const r = parseReference(ref);
              repoTags.push(familiarReference(r));
              (repositories[familiarName(r)] ??= {})[r.tag ?? 'latest'] = hexOf(imageId(img));
            }
            const same = entries.find((e) => e.Config === configName);
            if (same) {
              for (const t of repoTags) if (!(same.RepoTags ??= []).includes(t)) same.RepoTags.push(t);
            } else {
              entries.push({ Config: configName, RepoTags: repoTags.length ? repoTags : null, Layers: layerNames });
            }
          }
          await addBuffer('manifest.json', Buffer.from(JSON.stringify(entries)));
          if (Object.keys(repositories).length) await addBuffer('repositories', Buffer.from(JSON.stringify(repositories)));
        }
        pack.finalize();
        await piped;
        if (tmp) await rename(tmp, opts.output!);
      } catch (e) {
        pack.destroy();
        await piped.catch(() => {});
        if (tmp) await rm(tmp, { force: true });
        throw e;
      }
    });
}
