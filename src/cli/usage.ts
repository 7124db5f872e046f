/**
 * Usage errors as Docker words them, on one line: commander's `unknown option '--x'` becomes
 * `unknown flag: --x. See 'imgbuild rm --help'.`, a missing operand `'imgbuild rm' requires at
 * least 1 argument.`, and so on. The command is found by walking the command line through the
 * registered commands (groups included), so the help named is the one of the command that failed.
 */
import type { Command } from 'commander';

/** Global options that take a value (their value is not a command name). */
const VALUE_OPTIONS = new Set(['--root']);

/** The deepest registered command a command line reaches, and its path (`container ls`). */
export function commandOf(program: Command, args: readonly string[]): { cmd: Command; path: string[] } {
  let cmd = program;
  const path: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (cmd === program && VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    cmd = sub;
    path.push(sub.name());
    if (sub.commands.length === 0) break;
  }
  return { cmd, path };
}

const plural = (n: number): string => `${n} argument${n === 1 ? '' : 's'}`;

/** The flag an option string names: its long form (`-n, --name <name>` → `--name`). */
function flagOf(spec: string): string {
  const parts = spec.split(/[ ,|]+/).filter((p) => p.startsWith('-'));
  return parts.find((p) => p.startsWith('--')) ?? parts[0] ?? spec;
}

/** The text of a usage error (without the `imgbuild: INVALID_ARGUMENT: ` every error line has). */
export function usageText(program: Command, args: readonly string[], message: string): string {
  const { cmd, path } = commandOf(program, args);
  const name = ['imgbuild', ...path].join(' ');
  const lines = message.replace(/^error: /, '').split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines[0] ?? '';
  const hint = lines.slice(1).join(' ').replace(/^\((.*)\)$/, '$1');
  const suggestion = hint ? ` (${hint.charAt(0).toLowerCase()}${hint.slice(1)})` : '';
  let text: string;
  let m: RegExpExecArray | null;
  if ((m = /^unknown option '([^']+)'/.exec(first))) text = `unknown flag: ${m[1]}${suggestion}`;
  else if ((m = /^option '([^']+)' argument missing/.exec(first))) text = `flag needs an argument: ${flagOf(m[1]!)}`;
  else if (/^missing required argument/.test(first)) {
    const required = cmd.registeredArguments.filter((a) => a.required).length;
    text = `'${name}' requires at least ${plural(Math.max(1, required))}`;
  } else if (/^too many arguments/.test(first)) {
    const n = cmd.registeredArguments.length;
    text = n === 0 ? `'${name}' accepts no arguments` : `'${name}' accepts at most ${plural(n)}`;
  } else if ((m = /^unknown command '([^']+)'/.exec(first))) text = `unknown command: ${name} ${m[1]}${suggestion}`;
  else text = `${first}${suggestion}`;
  return `${text.replace(/\.$/, '')}. See '${name} --help'.`;
}
