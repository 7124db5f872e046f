/**
 * `imgbuild import [--compression C] [-c CHANGE]... SOURCE [NAME]`: makes a one-layer image from a
 * root filesystem, like `docker import`. SOURCE is a directory (packed deterministically), a tar
 * file (plain, gzip or zstd, detected), or `-` for a tar on stdin. Prints the new image id.
 */
import type { Command } from 'commander';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/**
 * Passes a tar stream through, failing when it does not look like one: the first header block must
 * carry a valid checksum (or be the all-zero end-of-archive block) and the length must be a whole
 * number of 512-byte blocks. Cheap enough to run on every import, and it stops `import notes.txt`.
 */
export class TarCheck extends Transform {
  private head: Buffer[] = [];
  private headLen = 0;
  private checked = false;
  private n = 0;

  constructor(private readonly source: string) {
    super();
  }

  private check(block: Buffer): Error | undefined {
    if (block.every((b) => b === 0)) return undefined;
    const field = block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim();
    const want = parseInt(field, 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
    if (!/^[0-7]+$/.test(field) || want !== sum) return new InvalidArgumentError(`${this.source} is not a tar archive (bad header checksum in the first block)`);
    return undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    if (!this.checked) {
      this.head.push(chunk);
      this.headLen += chunk.length;
      if (this.headLen < 512) {
        cb();
        return;
      }
      this.checked = true;
      const all = Buffer.concat(this.head);
      this.head = [];
      const err = this.check(all.subarray(0, 512));
      cb(err ?? null, err ? undefined : all);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.checked) {
      cb(new InvalidArgumentError(`${this.source} is not a tar archive (${this.n} bytes)`));
      return;
    }
    if (this.n % 512 !== 0) {
      cb(new InvalidArgumentError(`${this.source} is not a tar archive (length ${this.n} is not a multiple of 512)`));
      return;
    }
    cb();
  }
}

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
      const { writeImage, loadImage } = await import('../../store/images.js');
const { imageId } = await import('../../image/model.js');
const { applyConfigChanges } = await import('../../image/changes.js');
const { hostPlatform, parsePlatform } = await import('../../image/platform.js');
      const { decompress } = await import('../../compress/compress.js');
const { writeLayerBlob } = await import('../../store/layers.js');
      const { parseReference, formatReference } = await import('../../image/reference.js');
      const { NotFoundError } = await import('../../errors.js');
      const c = opts.compression;
      if (c !== 'none' && c !== 'gzip' && c !== 'zstd') throw new InvalidArgumentError(`unsupported --compression ${JSON.stringify(c)}: use none, gzip or zstd`);
      // Validate everything cheap before reading a possibly large source.
      const ref = name !== undefined ? parseReference(name) : undefined;
      if (ref?.digest) throw new InvalidArgumentError(`cannot import into a digest reference: ${name}`);
      const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
      const containerConfig = applyConfigChanges(undefined, opts.change);

      const store = await ctx.store();
      let isDir = false;
      let tar: Readable;
      if (source === '-') {
        if (process.stdin.isTTY) throw new InvalidArgumentError('refusing to read a tar from a terminal; pipe one into stdin');
        tar = decompress(process.stdin, undefined, { signal: ctx.signal });
      } else {
        const st = await stat(source).catch(() => undefined);
        if (!st) throw new NotFoundError(`import source not found: ${source}`);
        isDir = st.isDirectory();
        if (isDir) {
          const { packDir } = await import('../../tar/pack.js');
          tar = packDir(source, { mode: 'plain', signal: ctx.signal });
        } else {
          tar = decompress(createReadStream(source), undefined, { signal: ctx.signal });
        }
      }
      if (!isDir) {
        // pipeline() carries errors both ways and listens at once, so a bad header is never unhandled.
        const checked = new TarCheck(source === '-' ? 'stdin' : source);
        pipeline(tar, checked).catch(() => {});
        tar = checked;
      }
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
