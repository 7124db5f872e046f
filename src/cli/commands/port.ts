/** `imgbuild port CONTAINER [PRIVATE_PORT[/PROTO]]` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { containerPorts } from '../../containers/published.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('port')
    .description("list a container's published ports, or the host address of one")
    .argument('<container>', 'container name or id')
    .argument('[port]', 'a container port, PORT[/PROTO]')
    .action(async (container: string, port: string | undefined) => {
      const maps = await containerPorts(ctx.root(), container, port, { signal: ctx.signal });
      for (const m of maps) ctx.stdout.write(port === undefined ? `${m.containerPort} -> ${m.host}\n` : `${m.host}\n`);
    });
}
