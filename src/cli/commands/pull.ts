import type { Command } from 'commander';
import type { CliContext } from '../context.js';

interface PullFlags {
  platform?: string;
  insecure?: boolean;
  quiet?: boolean;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('pull')
    .description('pull an image from a registry into the store')
    .argument('<ref>', 'image reference (name[:tag][@digest])')
    .option('--platform <os/arch[/variant]>', 'platform to pull from a multi-platform image', 'linux/amd64')
    .option('--insecure', 'allow plain http and unverified TLS for this registry')
    .option('-q, --quiet', 'print only the image reference')
    .action(async (ref: string, flags: PullFlags) => {
      // The store opens (and a new root is laid out) while the manifest is fetched: pullImage
      // takes the opening store, starts the downloads once its directories exist and waits for
      // the rest only to place what it fetched.
      const opening = ctx.opening();
      opening.catch(() => {}); // awaited below; a failure surfaces there, never as unhandled
      // The registry client loads here, not with the module: `--help` loads every command module,
      // and evaluating the client (undici) there cost ~10 ms (docs/architecture.md, Measurements).
      const [{ pullImage }, { parsePlatform }, { createTransferRenderer }, { parseReference, formatReference }] = await Promise.all([
        import('../../registry/pull.js'),
        import('../../image/platform.js'),
        import('../transfer-progress.js'),
        import('../../image/reference.js'),
      ]);
      const full = formatReference(parseReference(ref));
      const quiet = Boolean(flags.quiet);
      const before = quiet ? undefined : opening.then((op) => op.store).then((s) => s.resolve(full));
      before?.catch(() => {});
      if (!quiet) ctx.stdout.write(`Pulling ${full}\n`);
      const r = createTransferRenderer({ out: ctx.stdout, isTTY: ctx.isTTY, quiet, direction: 'pull' });
      let desc;
      try {
        desc = await pullImage(await opening, ref, {
          platform: parsePlatform(flags.platform ?? 'linux/amd64'),
          ...(flags.insecure ? { insecure: true } : {}),
          signal: ctx.signal,
          env: ctx.env,
          onProgress: (e) => r.onEvent(e),
        });
      } finally {
        r.close();
      }
      if (quiet) {
        ctx.stdout.write(`${full}\n`);
        return;
      }
      const status = (await before)?.digest === desc.digest ? `Image is up to date for ${full}` : `Downloaded ${full}`;
      ctx.stdout.write(`Digest: ${desc.digest}\nStatus: ${status}\n${full}\n`);
    });
}
