/**
 * `imgbuild load [-i FILE]`: loads images from a tar archive (a file or stdin; gzip/zstd
 * compressed archives too), in either format `save` writes, detected from the content:
 *  - an OCI image layout (index.json + oci-layout): blobs stream into the store and are verified
 *    against the digest their path names;
 *  - a docker-archive (manifest.json): each layer's diffID is checked against the config's
 *    rootfs.diff_ids and a Docker schema2 manifest is written around the config as it is (so the
 *    image id stays the same).
 * Names come from `io.containerd.image.name` / `org.opencontainers.image.ref.name` or RepoTags;
 * images without a name are kept untagged.
 */
import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import type { CliContext } from '../context.js';
import { ImgbuildError, isImgbuildError } from '../../errors.js';

export class InvalidArchiveError extends ImgbuildError {
  constructor(readonly source: string, reason: string) {
    super('INVALID_ARGUMENT', `invalid image archive ${source}: ${reason}`);
    this.name = 'InvalidArchiveError';
  }
}

/** Archive members kept in memory (metadata and configs); anything larger streams into the store. */
const SMALL = 1 << 20;

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('load')
    .description('load images from a tar archive (OCI layout or docker-archive)')
    .option('-i, --input <file>', 'read from this file instead of stdin')
    .option('-q, --quiet', 'suppress the load output')
    .action(async (opts: { input?: string; quiet?: boolean }) => {
      const { createReadStream } = await import('node:fs');
      const { open } = await import('node:fs/promises');
      const tar = (await import('tar-stream')).default;
      const { decompress, detectCompression } = await import('../../layers/compress.js');
      const { loadImage, writeManifest, imageId } = await import('../../layers/image.js');
      const { parseReference, formatReference, familiarReference } = await import('../../layers/reference.js');
      const { MediaTypes, isIndex, isImage, layerMediaType } = await import('../../layers/media-types.js');
      const { parseDigest, isDigest, digestOf, HashingTransform } = await import('../../layers/digest.js');
      const { DigestMismatchError, SizeMismatchError, BlobNotFoundError } = await import('../../layers/errors.js');
      const { InvalidArgumentError } = await import('../../errors.js');
      const { pipeline } = await import('node:stream/promises');
      type Descriptor = import('../../layers/types.js').Descriptor;

      const fromStdin = opts.input === undefined || opts.input === '-';
      const source = fromStdin ? 'stdin' : opts.input!;
      if (fromStdin && process.stdin.isTTY) throw new InvalidArgumentError('refusing to read an archive from a terminal; use -i FILE or redirect stdin');
      const store = await ctx.store();
      const raw: Readable = fromStdin ? process.stdin : createReadStream(opts.input!);
      const input = decompress(raw);

      /** archive path → blob now in the store */
      const stored = new Map<string, { digest: string; size: number }>();
      const small = new Map<string, Buffer>();
      const extract = tar.extract();
      extract.on('entry', (header, stream, next) => {
        const name = header.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
        const done = (e?: unknown): void => (e ? extract.destroy(e as Error) : next());
        if (header.type !== 'file' && header.type !== 'contiguous-file') {
          stream.on('end', () => done()).resume();
          return;
        }
        const size = header.size ?? 0;
        const m = /^blobs\/([a-z0-9]+)\/([0-9a-f]+)$/.exec(name);
        const named = m && isDigest(`${m[1]}:${m[2]}`) ? parseDigest(`${m[1]}:${m[2]}`) : undefined;
        (async () => {
          if (named && (await store.info(named))) {
            stream.resume();
            await new Promise<void>((res) => stream.on('end', () => res()));
            stored.set(name, { digest: named, size: (await store.info(named))!.size });
            return;
          }
          if (!named && size <= SMALL) {
            const chunks: Buffer[] = [];
            for await (const c of stream) chunks.push(c as Buffer);
            small.set(name, Buffer.concat(chunks));
            return;
          }
          const w = await store.writer(name, named ? { expected: named, total: size } : { total: size });
          try {
            for await (const c of stream) await w.write(c as Buffer);
            // A member named by digest is verified against that name at commit; others are named by what they hash to.
            const digest = named ?? w.digest();
            try {
              await w.commit(w.offset, digest);
            } catch (e) {
              if ((e as Error)?.name === 'DigestMismatchError') {
                const m = e as InstanceType<typeof DigestMismatchError>;
                throw new DigestMismatchError(m.expected, m.actual, m.size, `archive entry ${name}:`);
              }
              throw e;
            }
            stored.set(name, { digest, size: w.offset });
          } catch (e) {
            await w.abort();
            throw e;
          }
        })().then(() => done(), done);
      });
      try {
        await pipeline(input, extract, { signal: ctx.signal });
      } catch (e) {
        if (isImgbuildError(e)) throw e;
        throw new InvalidArchiveError(source, (e as Error).message);
      }

      /** The blob an archive path holds, put into the store if it was kept in memory. */
      const blobAt = async (path: string, mediaType: string, expected?: string): Promise<Descriptor> => {
        const p = path.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
        let got = stored.get(p);
        if (!got) {
          const data = small.get(p);
          if (!data) {
            if (expected && isDigest(expected)) {
              const info = await store.info(parseDigest(expected));
              if (info) return { mediaType, digest: info.digest, size: info.size };
            }
            throw new InvalidArchiveError(source, `missing member ${p}`);
          }
          const m = /^blobs\/([a-z0-9]+)\/([0-9a-f]+)$/.exec(p);
          if (m) {
            const actual = digestOf(data);
            if (actual !== `${m[1]}:${m[2]}`) throw new DigestMismatchError(`${m[1]}:${m[2]}`, actual, data.length, `archive entry ${p}:`);
          }
          const d = await store.put(data, mediaType);
          got = { digest: d.digest, size: d.size };
          stored.set(p, got);
        }
        if (expected !== undefined && got.digest !== expected) throw new DigestMismatchError(expected, got.digest, got.size, `archive entry ${p}:`);
        return { mediaType, digest: parseDigest(got.digest), size: got.size };
      };
      const pathOf = (d: string): string => {
        const i = d.indexOf(':');
        return `blobs/${d.slice(0, i)}/${d.slice(i + 1)}`;
      };
      /** Checks a descriptor's blob is in the store with its size (after pulling it from the archive). */
      const need = async (desc: Descriptor): Promise<void> => {
        const got = await blobAt(pathOf(desc.digest), desc.mediaType, desc.digest).catch((e: unknown) => {
          if ((e as Error)?.name === 'InvalidArchiveError') throw new BlobNotFoundError(`${desc.digest} (archive has no ${pathOf(desc.digest)})`);
          throw e;
        });
        if (desc.size >= 0 && got.size !== desc.size) throw new SizeMismatchError(desc.size, got.size, desc.digest);
      };

      const results: { desc: Descriptor; names: string[] }[] = [];
      if (small.has('index.json')) {
        let index: { manifests?: Descriptor[] };
        try {
          index = JSON.parse(small.get('index.json')!.toString('utf8')) as typeof index;
        } catch (e) {
          throw new InvalidArchiveError(source, `index.json is not valid JSON (${(e as Error).message})`);
        }
        if (!Array.isArray(index.manifests)) throw new InvalidArchiveError(source, 'index.json has no "manifests" array');
        const walk = async (desc: Descriptor, depth: number): Promise<void> => {
          await need(desc);
          const doc = JSON.parse((await store.read(desc)).toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
          if (isIndex(desc.mediaType) && Array.isArray(doc.manifests) && depth < 4) {
            // Other platforms' manifests may be left out of an archive; the host's must be there.
            for (const m of doc.manifests) {
              if (stored.has(pathOf(m.digest)) || small.has(pathOf(m.digest))) await walk(m, depth + 1);
            }
          } else if (isImage(desc.mediaType) || doc.config) {
            if (!doc.config || !Array.isArray(doc.layers)) throw new InvalidArchiveError(source, `manifest ${desc.digest} has no config or layers`);
            await need(doc.config);
            for (const l of doc.layers) await need(l);
          }
        };
        for (const m of index.manifests) {
          await walk(m, 0);
          await loadImage(store, m); // host platform present and readable
          const names: string[] = [];
          for (const key of ['io.containerd.image.name', 'org.opencontainers.image.ref.name']) {
            const v = m.annotations?.[key];
            // A bare tag ("latest", as some tools write) names no repository; keep the image untagged.
            if (v && (v.includes('/') || v.includes(':'))) {
              try {
                names.push(formatReference(parseReference(v)));
                break;
              } catch {
                // not a reference; ignore
              }
            }
          }
          results.push({ desc: { mediaType: m.mediaType, digest: m.digest, size: m.size }, names });
        }
      } else if (small.has('manifest.json')) {
        let entries: { Config?: string; RepoTags?: string[] | null; Layers?: string[] }[];
        try {
          entries = JSON.parse(small.get('manifest.json')!.toString('utf8')) as typeof entries;
        } catch (e) {
          throw new InvalidArchiveError(source, `manifest.json is not valid JSON (${(e as Error).message})`);
        }
        if (!Array.isArray(entries)) throw new InvalidArchiveError(source, 'manifest.json is not an array');
        for (const [i, e] of entries.entries()) {
          if (typeof e.Config !== 'string' || !Array.isArray(e.Layers)) throw new InvalidArchiveError(source, `manifest.json entry ${i} lacks Config or Layers`);
          const configDesc = await blobAt(e.Config, MediaTypes.DOCKER_CONFIG);
          const config = JSON.parse((await store.read(configDesc)).toString('utf8')) as import('../../layers/types.js').ImageConfig;
          const diffIds = config.rootfs?.diff_ids ?? [];
          if (diffIds.length !== e.Layers.length) {
            throw new InvalidArchiveError(source, `${e.Config} lists ${diffIds.length} diff_ids but manifest.json names ${e.Layers.length} layers`);
          }
          const layers: Descriptor[] = [];
          for (const [j, lp] of e.Layers.entries()) {
            const d = await blobAt(lp, MediaTypes.DOCKER_LAYER);
            const fh = await open(store.blobPath(d.digest), 'r');
            const head = Buffer.alloc(16);
            try {
              await fh.read(head, 0, 16, 0);
            } finally {
              await fh.close();
            }
            const c = detectCompression(head);
            let diffId = d.digest as string;
            if (c !== 'none') {
              const h = new HashingTransform();
              await pipeline(decompress(await store.reader(d), c), h, async function* (src) {
                for await (const _ of src) { /* hash only */ }
              });
              diffId = h.result().digest;
            }
            if (diffId !== diffIds[j]) throw new DigestMismatchError(String(diffIds[j]), diffId, d.size, `layer ${lp} diff_id`);
            layers.push({ ...d, mediaType: layerMediaType(c, 'docker') });
          }
          const desc = await writeManifest(store, configDesc, layers, { format: 'docker' });
          const names = (e.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
          results.push({ desc, names });
        }
      } else {
        throw new InvalidArchiveError(source, 'neither index.json (OCI layout) nor manifest.json (docker-archive) found');
      }

      for (const r of results) {
        if (r.names.length === 0) {
          await store.keepUntagged(r.desc);
          const img = await loadImage(store, r.desc);
          if (!opts.quiet) ctx.stdout.write(`Loaded image ID: ${imageId(img)}\n`);
          continue;
        }
        for (const n of r.names) {
          await store.tag(n, r.desc);
          if (!opts.quiet) ctx.stdout.write(`Loaded image: ${familiarReference(parseReference(n))}\n`);
        }
      }
    });
}
