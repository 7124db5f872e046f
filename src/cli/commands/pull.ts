import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { pullReporting } from '../pulling.js';

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
      await pullReporting(ctx, ref, { ...flags, out: ctx.stdout, isTTY: ctx.isTTY });
    });
}
