/** `imgbuild commit [-m MSG] [-a AUTHOR] [-c INSTR]... CONTAINER [IMAGE]` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { collect } from './run.js';
import { commitContainer } from '../../containers/commit.js';
import { loadImage } from '../../store/images.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('commit')
    .description("create an image from a container's changes")
    .argument('<container>', 'container name or id')
    .argument('[image]', 'name to tag the new image with')
    .option('-m, --message <msg>', 'commit message (stored in the history)')
    .option('-a, --author <author>', 'author')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, EXPOSE, STOPSIGNAL, VOLUME)', collect, [])
    .action(async (container: string, image: string | undefined, f: { message?: string; author?: string; change: string[] }) => {
      const store = await ctx.store();
      const desc = await commitContainer(store, container, image, { message: f.message, author: f.author, changes: f.change, signal: ctx.signal });
      const img = await loadImage(store, desc);
      ctx.stdout.write(`${img.manifest.config.digest}\n`);
    });
}
