/** `imgbuild stop [-t N] [-s SIGNAL] CONTAINER...` */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { signalNumber } from '../../containers/signals.js';
import { stopContainer } from '../../containers/stop.js';

/** `-t`: whole seconds, -1 waits forever; undefined when not given. */
export function parseSeconds(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim()) || Number(v) < -1) throw new InvalidArgumentError(`invalid --time ${JSON.stringify(v)}`);
  return Number(v);
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('stop')
    .description('stop running containers: the stop signal (default: STOPSIGNAL, else SIGTERM), then SIGKILL after the timeout')
    .argument('<containers...>', 'container names or ids')
    .option('-t, --time <seconds>', 'seconds to wait before killing (default: the container\'s --stop-timeout, else 10)')
    .option('-s, --signal <signal>', 'signal to send first (default: the container\'s stop signal)')
    .action(async (names: string[], f: { time?: string; signal?: string }) => {
      const t = parseSeconds(f.time);
      if (f.signal !== undefined) signalNumber(f.signal);
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await stopContainer(ctx.root(), n, { ...(t !== undefined ? { timeoutSec: t } : {}), ...(f.signal !== undefined ? { stopSignal: f.signal } : {}), signal: ctx.signal });
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      // Every operand is tried; main.ts prints one line per failure.
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
