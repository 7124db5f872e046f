/**
 * `imgbuild save [-o FILE] [--format oci|docker] IMAGE...`: writes images to a tar archive, streamed
 * blob by blob straight from the store through verifying readers (a corrupt blob aborts the save and
 * no partial archive is left behind).
 *  - oci (default): an OCI image layout (oci-layout, index.json whose entries carry the
 *    `org.opencontainers.image.ref.name` / `io.containerd.image.name` annotations, blobs/).
 *  - docker: a docker-archive (manifest.json with Config/RepoTags/Layers, repositories, the config
 *    and one uncompressed tar per layer) that `docker load` and `skopeo docker-archive:` read.
 * The archive itself is written by src/archive/archive.ts.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { writeArchive, writeArchiveFile, type ArchiveImage } from '../../archive/archive.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { formatReference, parseReference } from '../../image/reference.js';
import { findImage } from '../../store/images.js';

interface Opts {
  output?: string;
  format?: string;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('save')
    .description('save images to a tar archive (OCI layout or docker-archive)')
    .argument('<images...>')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--format <format>', 'archive format: oci or docker', 'oci')
    .action(async (inputs: string[], opts: Opts) => {
      const format = opts.format ?? 'oci';
      if (format !== 'oci' && format !== 'docker') throw new InvalidArgumentError(`unsupported --format ${JSON.stringify(format)}: use oci or docker`);
      const toStdout = opts.output === undefined || opts.output === '-';
      if (toStdout && ctx.isTTY) throw new InvalidArgumentError('refusing to write an archive to a terminal; use -o FILE or redirect stdout');
      if (!toStdout) {
        // As Docker: a missing directory is named, rather than the temporary file written in it.
        const dir = dirname(resolve(opts.output!));
        const st = await stat(dir).catch(() => undefined);
        if (!st?.isDirectory()) throw new NotFoundError(`invalid output path: directory ${JSON.stringify(dir)} does not exist`);
      }
      const store = await ctx.store();

      // Resolve everything first, so a missing image or unreadable manifest fails before any output.
      const images: ArchiveImage[] = [];
      for (const input of inputs) {
        const image = await findImage(store, input);
        let ref: string | undefined;
        try {
          const r = parseReference(input);
          if (!r.digest && image.ref === formatReference(r)) ref = image.ref;
        } catch {
          // an id: saved without a name, as docker does
        }
        images.push({ image, ...(ref !== undefined ? { ref } : {}) });
      }

      const o = { format, signal: ctx.signal } as const;
      if (toStdout) await writeArchive(store, images, ctx.stdout, { ...o, end: false });
      else await writeArchiveFile(store, images, opts.output!, o);
    });
}
