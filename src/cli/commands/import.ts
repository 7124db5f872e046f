/**
 * `imgbuild import [--compression C] [-c CHANGE]... SOURCE [NAME]`: makes a one-layer image from a
 * root filesystem, like `docker import`. SOURCE is a directory (packed deterministically), a tar
 * file (plain, gzip or zstd, detected), or `-` for a tar on stdin. Prints the new image id.
 */
import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import type { CliContext } from '../context.js';

interface Opts {
  compression: string;
  change: string[];
  message?: string;
  platform?: string;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('import')
    .description('create an image from a root filesystem (directory, tarball or - for stdin)')
    .argument('<source>', 'directory, tar file (plain/gzip/zstd) or - for stdin')
    .argument('[name]', 'name[:tag] for the new image')
    .option('--compression <c>', 'layer compression: none, gzip or zstd', 'none')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the config (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-m, --message <text>', 'commit message for the history entry')
    .option('--platform <os/arch[/variant]>', 'platform recorded in the config (default: this machine)')
    .action(async (source: string, name: string | undefined, opts: Opts) => {
      const { stat } = await import('node:fs/promises');
      const { createReadStream } = await import('node:fs');
      const { writeImage, loadImage, imageId, applyConfigChanges, hostPlatform, parsePlatform } = await import('../../layers/image.js');
      const { writeLayerBlob, decompress } = await import('../../layers/compress.js');
      const { parseReference, formatReference } = await import('../../layers/reference.js');
      const { InvalidArgumentError, NotFoundError } = await import('../../errors.js');
      const c = opts.compression;
      if (c !== 'none' && c !== 'gzip' && c !== 'zstd') throw new InvalidArgumentError(`unsupported --compression ${JSON.stringify(c)}: use none, gzip or zstd`);
      // Validate everything cheap before reading a possibly large source.
      const ref = name !== undefined ? parseReference(name) : undefined;
      if (ref?.digest) throw new InvalidArgumentError(`cannot import into a digest reference: ${name}`);
      const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
      const containerConfig = applyConfigChanges(undefined, opts.change);

      let tar: Readable;
      if (source === '-') {
        if (process.stdin.isTTY) throw new InvalidArgumentError('refusing to read a tar from a terminal; pipe one into stdin');
        tar = decompress(process.stdin, undefined, { signal: ctx.signal });
      } else {
        const st = await stat(source).catch(() => undefined);
        if (!st) throw new NotFoundError(`import source not found: ${source}`);
        if (st.isDirectory()) {
          const { packDir } = await import('../../layers/tar/pack.js');
          tar = packDir(source, { mode: 'plain', signal: ctx.signal });
        } else {
          tar = decompress(createReadStream(source), undefined, { signal: ctx.signal });
        }
      }
      const store = await ctx.store();
      const layer = await writeLayerBlob(store, tar, { compression: c, signal: ctx.signal });
      const created = new Date().toISOString();
      const config = {
        created,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: containerConfig,
        rootfs: { type: 'layers' as const, diff_ids: [layer.diffId] },
        history: [{ created, created_by: '', comment: opts.message ?? `imported from ${source}` }],
      };
      const manifest = await writeImage(store, config, [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }]);
      if (ref) await store.tag(formatReference(ref), manifest);
      else await store.keepUntagged(manifest);
      ctx.stdout.write(`${imageId(await loadImage(store, manifest))}\n`);
    });
}
