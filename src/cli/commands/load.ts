/**
 * `imgbuild load [-i FILE]`: loads images from a tar archive (a file or stdin; gzip/zstd
 * compressed archives too), in either format `save` writes (an OCI image layout or a
 * docker-archive, detected from the content). The archive is read by src/archive/archive.ts.
 */
import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import type { CliContext } from '../context.js';
import { createReadStream } from 'node:fs';
import { loadArchive } from '../../archive/archive.js';
import { familiarReference, parseReference } from '../../image/reference.js';
import { InvalidArgumentError } from '../../errors.js';

export { InvalidArchiveError } from '../../archive/archive.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('load')
    .description('load images from a tar archive (OCI layout or docker-archive)')
    .option('-i, --input <file>', 'read from this file instead of stdin')
    .option('-q, --quiet', 'suppress the load output')
    .action(async (opts: { input?: string; quiet?: boolean }) => {
      const fromStdin = opts.input === undefined || opts.input === '-';
      if (fromStdin && process.stdin.isTTY) throw new InvalidArgumentError('refusing to read an archive from a terminal; use -i FILE or redirect stdin');
      const store = await ctx.store();
      const raw: Readable = fromStdin ? process.stdin : createReadStream(opts.input!);
      const loaded = await loadArchive(store, raw, { source: fromStdin ? 'stdin' : opts.input!, signal: ctx.signal });
      if (opts.quiet) return;
      for (const r of loaded) {
        if (r.names.length === 0) ctx.stdout.write(`Loaded image ID: ${r.id}\n`);
        for (const n of r.names) ctx.stdout.write(`Loaded image: ${familiarReference(parseReference(n))}\n`);
      }
    });
}
