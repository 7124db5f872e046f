import type { Command } from 'commander';
import { InvalidArgumentError } from '../../errors.js';
import type { CliContext } from '../context.js';
import { compressionLevelRange } from '../../compress/compress.js';
import type { Compression } from '../../image/media-types.js';

interface PushFlags {
  compression?: string;
  compressionLevel?: string;
  insecure?: boolean;
  quiet?: boolean;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('push')
    .description('push an image from the store to a registry')
    .argument('<ref>', 'image in the store (name, name:tag, name@digest or id)')
    .argument('[dest-ref]', 'where to push (default: the image name)')
    .option('--compression <gzip|zstd|none>', 'layer compression to push (default: keep compressed layers, gzip uncompressed ones)')
    .option('--compression-level <n>', 'level of the compression done for the push: gzip 1-9 (default 4), zstd 1-22 (default 3)')
    .option('--insecure', 'allow plain http and unverified TLS for this registry')
    .option('-q, --quiet', 'print only the pushed digest')
    .action(async (ref: string, destRef: string | undefined, flags: PushFlags) => {
      const c = flags.compression;
      if (c !== undefined && c !== 'gzip' && c !== 'zstd' && c !== 'none') {
        throw new InvalidArgumentError(`--compression must be gzip, zstd or none, not ${JSON.stringify(c)}`);
      }
      const level = parseCompressionLevel(flags.compressionLevel, c);
      // The registry client loads here, not with the module: `--help` loads every command module,
      // and evaluating the client (undici) there cost ~10 ms (docs/architecture.md, Measurements).
      const [store, { pushImage }, { createTransferRenderer }, { formatReference, parseReference }] = await Promise.all([
        ctx.store(),
        import('../../registry/push.js'),
        import('../transfer-progress.js'),
        import('../../image/reference.js'),
      ]);
      const quiet = Boolean(flags.quiet);
      let target: string | undefined;
      try {
        target = formatReference(parseReference(destRef ?? ref));
      } catch {
        /* an image id: the name comes from the store */
      }
      if (!quiet && target) ctx.stdout.write(`Pushing ${target}\n`);
      const r = createTransferRenderer({ out: ctx.stdout, isTTY: ctx.isTTY, quiet, direction: 'push' });
      let desc;
      try {
        desc = await pushImage(store, ref, destRef, {
          ...(c ? { compression: c } : {}),
          ...(level !== undefined ? { compressionLevel: level } : {}),
          ...(flags.insecure ? { insecure: true } : {}),
          signal: ctx.signal,
          env: ctx.env,
          onProgress: (e) => {
            if (e.type === 'resolved' && e.ref !== target) {
              target = e.ref;
              if (!quiet) ctx.stdout.write(`Pushing ${e.ref}\n`);
            }
            r.onEvent(e);
          },
        });
      } finally {
        r.close();
      }
      if (quiet) {
        ctx.stdout.write(`${desc.digest}\n`);
        return;
      }
      const p = parseReference(target ?? destRef ?? ref);
      ctx.stdout.write(`${p.tag ?? formatReference(p)}: digest: ${desc.digest} size: ${desc.size}\n`);
    });
}

/**
 * `--compression-level`: an integer in the range of the compression it applies to (the
 * `--compression` given, or gzip, which uncompressed layers get by default).
 */
export function parseCompressionLevel(text: string | undefined, compression: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const c = (compression ?? 'gzip') as Compression;
  const range = compressionLevelRange(c);
  if (!range) throw new InvalidArgumentError('--compression-level does not apply to --compression none');
  const [lo, hi] = range;
  if (!/^\d+$/.test(text) || Number(text) < lo || Number(text) > hi) {
    throw new InvalidArgumentError(`--compression-level for ${c} must be an integer from ${lo} to ${hi}, not ${JSON.stringify(text)}`);
  }
  return Number(text);
}
