/**
 * Docker's management commands (`container ls`, `image rm`, `system df`...) as groups over the
 * flat commands of commands/table.ts: a member that is a flat command is registered by that
 * command's own module under the group (same flags, same code), so the groups follow the table.
 * A member whose flat command is not in the table yet is left out until it is (a command another
 * change adds appears here by name alone). Only the member being run is loaded, as for flat commands.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { commandModules, type Register } from './commands/table.js';

type Loader = () => Promise<{ default: Register }>;

interface Member {
  /** Its name in the group. */
  name: string;
  /** The flat command it is, registered by that command's module. */
  flat?: string;
  /** A module of the group's own (what has no flat command: `system df`, `container prune`). */
  load?: Loader;
  aliases?: string[];
  /** Option values that differ from the flat command's defaults. */
  defaults?: Record<string, string>;
}

interface Group {
  description: string;
  members: Member[];
}

const same = (...names: string[]): Member[] => names.map((name) => ({ name, flat: name }));

/** Group name → its members, in the order `--help` lists them. */
export const commandGroups: ReadonlyMap<string, Group> = new Map<string, Group>([
  ['container', {
    description: 'manage containers',
    members: [
      { name: 'ls', flat: 'ps', aliases: ['ps', 'list'] },
      ...same('run', 'create', 'start', 'restart', 'stop', 'kill', 'pause', 'unpause', 'wait', 'rm', 'logs', 'exec', 'attach', 'top', 'port', 'stats', 'rename', 'update', 'cp', 'diff', 'export', 'commit'),
      { name: 'inspect', flat: 'inspect', defaults: { type: 'container' } },
      { name: 'prune', load: () => import('./commands/container-prune.js') },
    ],
  }],
  ['image', {
    description: 'manage images',
    members: [
      { name: 'ls', flat: 'images', aliases: ['list'] },
      { name: 'rm', flat: 'rmi', aliases: ['rmi', 'remove'] },
      ...same('build', 'pull', 'push', 'tag', 'history', 'save', 'load', 'import'),
      { name: 'inspect', flat: 'inspect', defaults: { type: 'image' } },
      { name: 'prune', load: () => import('./commands/image-prune.js') },
    ],
  }],
  ['network', {
    description: 'list the networks a container can join',
    members: [{ name: 'ls', aliases: ['list'], load: () => import('./commands/network-ls.js') }],
  }],
  ['system', {
    description: 'manage imgbuild',
    members: [
      { name: 'df', load: () => import('./commands/system-df.js') },
      { name: 'prune', load: () => import('./commands/system-prune.js') },
      ...same('info', 'events'),
    ],
  }],
]);

/** Global options that take a value (their value is not a command name). */
const VALUE_OPTIONS = new Set(['--root']);

/** `{ group, sub }` for `imgbuild [--root D] group [sub] ...`; undefined when the command is not a group. */
export function groupFor(args: readonly string[]): { group: string; sub?: string } | undefined {
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (VALUE_OPTIONS.has(a) && words.length === 0) i++;
    else if (!a.startsWith('-')) words.push(a);
    else if (words.length === 1) break; // `container --help`: options of the group itself
  }
  const [group, sub] = words;
  if (group === undefined || !commandGroups.has(group) || commandModules.has(group)) return undefined;
  return { group, ...(sub !== undefined ? { sub } : {}) };
}

/** The members of a group that exist (their flat command is in the table). */
function present(g: Group): Member[] {
  return g.members.filter((m) => m.load !== undefined || (m.flat !== undefined && commandModules.has(m.flat)));
}

/**
 * Registers group `name` on `program` with the member `sub` (every member when `sub` is undefined
 * or names none: help, or an unknown subcommand that commander then reports with suggestions).
 */
export async function registerGroup(program: Command, ctx: CliContext, name: string, sub?: string): Promise<void> {
  const g = commandGroups.get(name);
  // A flat command of that name (a later change may make `volume` one) takes precedence.
  if (!g || commandModules.has(name)) return;
  const members = present(g);
  const chosen = members.filter((m) => m.name === sub || m.aliases?.includes(sub ?? ''));
  const list = chosen.length > 0 ? chosen : members;
  const group = program
    .command(name)
    .description(g.description)
    .usage('COMMAND')
    // `container run busybox sh -c ...`: options after the image belong to the container (run
    // passes them through, which needs positional options in its parent).
    .enablePositionalOptions()
    .argument('[command]')
    .action((c: string | undefined) => {
      // Reached only when no member matched: Docker prints the group's usage for none at all.
      if (c === undefined) group.help();
      group.error(`unknown command '${c}'`, { code: 'commander.unknownCommand', exitCode: 125 });
    });
  const loaded = await Promise.all(list.map(async (m) => ({ m, register: (await (m.load ?? commandModules.get(m.flat!)!)()).default })));
  for (const { m, register } of loaded) {
    register(group, ctx);
    const c = group.commands.at(-1)!;
    if (c.name() !== m.name) c.name(m.name);
    if (m.aliases) c.aliases(m.aliases);
    for (const [k, v] of Object.entries(m.defaults ?? {})) c.setOptionValueWithSource(k, v, 'default');
  }
}
