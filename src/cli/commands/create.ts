/** `imgbuild create [flags] IMAGE [COMMAND...]`: make a container (as `run` does) without starting it; prints its id. */
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import type { CliContext } from '../context.js';
import { createContainer } from '../../containers/create.js';
import { addContainerFlags, containerOptions, type ContainerFlags } from './container-flags.js';
import { CidFile } from './cidfile.js';
import { withRunStatus } from './run.js';
import { parsePullPolicy, withPullPolicy } from '../pulling.js';

export default function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('create')
    .description('create a container from an image without starting it (start it with `start`)')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and arguments (default: the image ENTRYPOINT/CMD)');
  addContainerFlags(cmd)
    .passThroughOptions()
    .action(async (image: string, command: string[], f: ContainerFlags) => {
      let cid: CidFile | undefined;
      try {
        const pull = parsePullPolicy(f.pull);
        const options = containerOptions(ctx, f, availableParallelism());
        if (f.cidfile !== undefined) cid = await CidFile.open(f.cidfile);
        const store = await ctx.store();
        const rec = await withPullPolicy(ctx, image, pull, () => createContainer(store, { ...options, image, cmd: command, signal: ctx.signal }));
        cid?.write(rec.id);
        ctx.stdout.write(`${rec.id}\n`);
      } catch (e) {
        await cid?.discard();
        throw withRunStatus(e);
      }
    });
}
