/**
 * The command table: one module per command, each registering its own flags. Modules are loaded
 * on demand (see ../index.ts): a command's own run loads only its module, while help and unknown
 * commands load them all, so `--help` still lists every command with its usage.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';

export type Register = (program: Command, ctx: CliContext) => void;

type Loader = () => Promise<{ default: Register }>;

/** Command name → its module, in the order `--help` lists them. */
export const commandModules: ReadonlyMap<string, Loader> = new Map<string, Loader>([
  ['build', () => import('./build.js')],
  ['run', () => import('./run.js')],
  ['create', () => import('./create.js')],
  ['start', () => import('./start.js')],
  ['exec', () => import('./exec.js')],
  ['ps', () => import('./ps.js')],
  ['logs', () => import('./logs.js')],
  ['stop', () => import('./stop.js')],
  ['kill', () => import('./kill.js')],
  ['restart', () => import('./restart.js')],
  ['wait', () => import('./wait.js')],
  ['pause', () => import('./pause.js')],
  ['unpause', () => import('./unpause.js')],
  ['rename', () => import('./rename.js')],
  ['update', () => import('./update.js')],
  ['attach', () => import('./attach.js')],
  ['rm', () => import('./rm.js')],
  ['commit', () => import('./commit.js')],
  ['cp', () => import('./cp.js')],
  ['diff', () => import('./diff.js')],
  ['export', () => import('./export.js')],
  ['top', () => import('./top.js')],
  ['stats', () => import('./stats.js')],
  ['port', () => import('./port.js')],
  ['pull', () => import('./pull.js')],
  ['push', () => import('./push.js')],
  ['login', () => import('./login.js')],
  ['logout', () => import('./logout.js')],
  ['images', () => import('./images.js')],
  ['inspect', () => import('./inspect.js')],
  ['history', () => import('./history.js')],
  ['analyze', () => import('./analyze.js')],
  ['tag', () => import('./tag.js')],
  ['rmi', () => import('./rmi.js')],
  ['prune', () => import('./prune.js')],
  ['volume', () => import('./volume.js')],
  ['generate', () => import('./generate.js')],
  ['import', () => import('./import.js')],
  ['save', () => import('./save.js')],
  ['load', () => import('./load.js')],
  ['events', () => import('./events.js')],
  ['info', () => import('./info.js')],
  ['version', () => import('./version.js')],
]);

/** Loads the register functions of the named commands (all of them when `names` is omitted), in table order. */
export async function loadCommands(names?: readonly string[]): Promise<Register[]> {
  const wanted = [...commandModules].filter(([n]) => !names || names.includes(n));
  return Promise.all(wanted.map(async ([, load]) => (await load()).default));
}
