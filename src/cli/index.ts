/**
 * The commander program. Each command lives in its own module under commands/ and registers its
 * flags there; those modules import their heavy dependencies lazily inside the action, so that
 * starting the CLI costs only commander and these small files.
 */
import { Command, CommanderError } from 'commander';
import type { CliContext } from './context.js';
import { commands } from './commands/table.js';

export function buildProgram(ctx: CliContext, setRoot: (root: string | undefined) => void): Command {
  const program = new Command('imgbuild')
    .description('daemonless container image builder and runner')
    .version('0.1.0')
    .option('--root <dir>', 'store root (default: $IMGBUILD_ROOT, /var/lib/imgbuild as root, else $XDG_DATA_HOME/imgbuild)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });
  program.hook('preAction', (thisCommand) => {
    setRoot(thisCommand.opts<{ root?: string }>().root);
  });
  for (const register of commands) register(program, ctx);
  return program;
}

export { CommanderError };
