/** `imgbuild update [-m SIZE] [--memory-swap SIZE] [--cpus N] [--pids-limit N] [--restart POLICY] CONTAINER...`: new limits, live and for later starts; a new restart policy. */
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { parseCpuShares, parseCpus, parseMemoryLimit, parsePidsLimit } from '../../host/limits.js';
import { updateContainer } from '../../containers/update.js';
import { parseMemorySwap } from './container-flags.js';
import { parseRestartPolicy } from '../../containers/restart-policy.js';

interface UpdateFlags {
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  restart?: string;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('update')
    .description("change containers' resource limits (applied at once to running ones, kept for later starts)")
    .argument('<containers...>', 'container names or ids')
    .option('-m, --memory <size>', 'memory limit (e.g. 64m); swap is not used beyond it')
    .option('--memory-swap <size>', 'memory plus swap limit (-1: unlimited swap)')
    .option('--cpus <n>', 'CPU limit (e.g. 0.5)')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight; 1024 is the default)')
    .option('--pids-limit <n>', 'maximum number of processes/threads (-1 or 0: unlimited)')
    .option('--restart <policy>', 'no, on-failure[:max-retries], always or unless-stopped')
    .action(async (names: string[], f: UpdateFlags) => {
      // 0 leaves the weight as it is, as docker update does.
      const cpuShares = f.cpuShares === undefined ? undefined : parseCpuShares(f.cpuShares);
      const limits = {
        ...(f.memory !== undefined ? { memory: parseMemoryLimit(f.memory, '--memory') } : {}),
        ...(f.memorySwap !== undefined ? { memorySwap: parseMemorySwap(f.memorySwap)! } : {}),
        ...(f.cpus !== undefined ? { cpus: parseCpus(f.cpus, availableParallelism(), '--cpus') } : {}),
        ...(cpuShares !== undefined ? { cpuShares } : {}),
        // -1 or 0: no limit (parsePidsLimit's undefined), which update must say explicitly.
        ...(f.pidsLimit !== undefined ? { pidsLimit: parsePidsLimit(f.pidsLimit, '--pids-limit') ?? -1 } : {}),
      };
      const restartPolicy = f.restart === undefined ? undefined : parseRestartPolicy(f.restart);
      if (Object.keys(limits).length === 0 && !restartPolicy) throw new InvalidArgumentError('you must provide one or more flags when using this command');
      const failures: unknown[] = [];
      for (const n of names) {
        try {
          await updateContainer(ctx.root(), n, limits, { signal: ctx.signal, ...(restartPolicy ? { restartPolicy } : {}) });
          ctx.stdout.write(`${n}\n`);
        } catch (e) {
          failures.push(e);
        }
      }
      if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures);
    });
}
