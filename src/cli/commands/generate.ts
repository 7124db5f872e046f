/** `imgbuild generate systemd [--name] [--files] [-t N] CONTAINER`: a unit that starts the container at boot (podman's command). */
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { getContainer } from '../../containers/state.js';
import { systemdUnit, unitName } from '../../containers/systemd-unit.js';

export default function register(program: Command, ctx: CliContext): void {
  const generate = program.command('generate').description('generate structured data for a container');
  generate
    .command('systemd')
    .description('print (or write with --files) a systemd unit that starts the container at boot and stops it with the system')
    .argument('<container>', 'container name or id')
    .option('--name', 'name the container and the unit by its name instead of its id')
    .option('-f, --files', 'write container-<name or id>.service in the current directory and print its path')
    .option('-t, --time <seconds>', 'stop timeout of the container (default 10)')
    .action(async (container: string, f: { name?: boolean; files?: boolean; time?: string }) => {
      const stopTimeout = f.time === undefined ? undefined : Number(f.time);
      if (stopTimeout !== undefined && !(Number.isInteger(stopTimeout) && stopTimeout >= 0)) throw new InvalidArgumentError(`invalid --time ${JSON.stringify(f.time)}: a whole number of seconds`);
      const rec = await getContainer(ctx.root(), container);
      // The executable the user runs: bin/imgbuild beside dist/, which holds this bundle (dist/cli).
      const exe = resolve(dirname(process.argv[1] ?? ''), '..', '..', 'bin', 'imgbuild');
      const unit = systemdUnit(rec, { exe, root: resolve(ctx.root()), useName: f.name, ...(stopTimeout !== undefined ? { stopTimeout } : {}) });
      if (!f.files) {
        ctx.stdout.write(unit);
        return;
      }
      const path = join(process.cwd(), unitName(rec, f.name));
      await writeFile(path, unit);
      ctx.stdout.write(`${path}\n`);
    });
}
