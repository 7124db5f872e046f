/** `imgbuild cp [-a] [-L] CONTAINER:SRC DEST|-` and `imgbuild cp [-a] [-L] SRC|- CONTAINER:DEST` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { copyFromContainer, copyToContainer } from '../../containers/copy.js';

/** `CTR:PATH` → [container, path]; a local path has no colon before its first `/` (Docker's splitCpArg). */
function split(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('cp')
    .description('copy files between a container and the host (- for a tar on stdin/stdout)')
    .argument('<src>', 'CONTAINER:SRC_PATH, or a host path, or -')
    .argument('<dest>', 'a host path or -, or CONTAINER:DEST_PATH')
    .option('-a, --archive', 'keep the source uid/gid inside the container (default: root)')
    .option('-L, --follow-link', 'follow a symbolic link named by SRC_PATH')
    .action(async (srcArg: string, destArg: string, f: { archive?: boolean; followLink?: boolean }) => {
      const src = split(srcArg);
      const dest = split(destArg);
      const o = { archive: f.archive, followLink: f.followLink, signal: ctx.signal };
      if (src.container !== undefined && dest.container !== undefined) throw new InvalidArgumentError('copying between containers is not supported');
      if (src.container === undefined && dest.container === undefined) throw new InvalidArgumentError('must specify at least one container source');
      if (src.container !== undefined) {
        if (src.path === '') throw new InvalidArgumentError('source path cannot be empty');
        await copyFromContainer(ctx.root(), src.container, src.path, dest.path === '-' ? ctx.stdout : dest.path, o);
        return;
      }
      if (dest.path === '') throw new InvalidArgumentError('destination path cannot be empty');
      if (src.path === '-' && process.stdin.isTTY) throw new InvalidArgumentError('refusing to read a tar from a terminal; pipe one into stdin');
      await copyToContainer(ctx.root(), dest.container!, src.path === '-' ? process.stdin : src.path, dest.path, o);
    });
}
