/**
 * `imgbuild import [--compression C] [-c CHANGE]... SOURCE [NAME]`: makes a one-layer image from a
 * root filesystem, like `docker import` (archive/rootfs.ts). SOURCE is a directory, a tar file
 * (plain, gzip or zstd, detected), or `-` for a tar on stdin. Prints the new image id.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { importRootfs } from '../../archive/rootfs.js';
import { InvalidArgumentError } from '../../errors.js';
import { parsePlatform } from '../../image/platform.js';

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
      const c = opts.compression;
      if (c !== 'none' && c !== 'gzip' && c !== 'zstd') throw new InvalidArgumentError(`unsupported --compression ${JSON.stringify(c)}: use none, gzip or zstd`);
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      if (source === '-' && process.stdin.isTTY) throw new InvalidArgumentError('refusing to read a tar from a terminal; pipe one into stdin');
      const store = await ctx.store();
      const { imageId } = await importRootfs(store, source === '-' ? process.stdin : source, {
        ...(name !== undefined ? { name } : {}),
        compression: c,
        changes: opts.change,
        message: opts.message ?? `imported from ${source}`,
        ...(platform ? { platform } : {}),
        signal: ctx.signal,
      });
      ctx.stdout.write(`${imageId}\n`);
    });
}
