/**
 * The commander program. Each command lives in its own module under commands/ and registers its
 * flags there. Only the module of the command being run is loaded (help, an unknown command or no
 * command at all load every one): a module's top-level imports, however small, add up over 22
 * commands, and some (load's archive code) are not small.
 */
import { Command, CommanderError } from 'commander';
import type { CliContext } from './context.js';
import { commandModules, loadCommands } from './commands/table.js';
import { commandGroups, groupFor, registerGroup } from './groups.js';
import { IMGBUILD_VERSION } from './about.js';

/** Program-level options that take a value (their value is not the command name). */
const VALUE_OPTIONS = new Set(['--root', '--storage-driver']);

/**
 * Which commands' modules a command line needs (groups aside: see groups.ts): `[name]` for `imgbuild [--root D] name ...`,
 * `[name]` for `imgbuild help name`, none for a bare `--version`, otherwise all (help listing,
 * unknown command with suggestions).
 */
export function commandsFor(args: readonly string[]): string[] | undefined {
  let version = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return undefined;
    if (VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) {
      if (a === '-h' || a === '--help') return undefined;
      if (a === '-V' || a === '--version') version = true;
      continue;
    }
    if (a === 'help') {
      const next = args[i + 1];
      return next !== undefined && commandModules.has(next) ? [next] : undefined;
    }
    return commandModules.has(a) ? [a] : undefined;
  }
  return version ? [] : undefined;
}

export function buildProgram(ctx: CliContext, setGlobals: (g: { root?: string; storageDriver?: string }) => void): Command {
  const program = new Command('imgbuild')
    .description('daemonless container image builder and runner')
    .version(IMGBUILD_VERSION)
    .option('--root <dir>', 'store root (default: $IMGBUILD_ROOT, /var/lib/imgbuild as root, else $XDG_DATA_HOME/imgbuild)')
    .option('--storage-driver <name>', 'storage driver of new containers and builds: overlay, fuse-overlayfs or vfs (builds only) (default: $IMGBUILD_STORAGE_DRIVER, else the first that works here)')
    .exitOverride()
    // Options after a command's operands belong to the container's command (`run busybox sh -c`,
    // `exec ctr ls -l`): those commands pass them through, which needs positional options here.
    .enablePositionalOptions()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      // Usage errors reach main.ts, which prints them as one line like every other error.
      outputError: () => {},
    });
  program.hook('preAction', (thisCommand) => {
    setGlobals(thisCommand.opts<{ root?: string; storageDriver?: string }>());
  });
  // Commands are registered when the command line is known: parseAsync loads the modules it needs
  // first. (The synchronous `parse` is not supported: command modules load asynchronously.)
  const parseAsync = program.parseAsync.bind(program);
  let loaded = false;
  program.parseAsync = async (argv, opts) => {
    if (!loaded) {
      loaded = true;
      const from = opts?.from ?? 'node';
      const args = argv ?? process.argv;
      const user = from === 'user' ? args : from === 'electron' ? args.slice(1) : args.slice(2);
      const group = groupFor(user);
      if (group) await registerGroup(program, ctx, group.group, group.sub);
      else {
        const names = commandsFor(user);
        for (const register of await loadCommands(names)) register(program, ctx);
        // Help and unknown commands list the groups too.
        if (names === undefined) for (const g of commandGroups.keys()) await registerGroup(program, ctx, g);
      }
    }
    return parseAsync(argv, opts);
  };
  return program;
}

export { CommanderError };
