/**
 * Restart policies as Docker has them (`--restart no|on-failure[:N]|always|unless-stopped`) and
 * Docker's restart manager arithmetic: the delay before a restart starts at 100 ms and doubles
 * with every restart up to a minute, back to 100 ms once the container had run for 10 s.
 * Pure functions: the keeper (keeper-main.ts) carries them out.
 */
import { InvalidArgumentError } from '../errors.js';

export type RestartPolicyName = 'no' | 'on-failure' | 'always' | 'unless-stopped';

export interface RestartPolicy {
  name: RestartPolicyName;
  /** on-failure only: how many restarts at most (0: no limit). */
  maximumRetryCount: number;
}

const NAMES: RestartPolicyName[] = ['no', 'on-failure', 'always', 'unless-stopped'];

/** Parses `--restart` with the messages of docker 20.10 (its CLI's, then its daemon's). */
export function parseRestartPolicy(v: string): RestartPolicy {
  const parts = v.split(':');
  if (parts.length > 2) throw new InvalidArgumentError('invalid restart policy format');
  const name = (parts[0] === '' ? 'no' : parts[0]) as RestartPolicyName;
  let count = 0;
  if (parts.length === 2) {
    count = Number(parts[1]);
    if (!/^[-+]?\d+$/.test(parts[1]!)) throw new InvalidArgumentError('maximum retry count must be an integer');
  }
  if (!NAMES.includes(name)) throw new InvalidArgumentError(`invalid restart policy '${parts[0]}'`);
  if (name !== 'on-failure' && count !== 0) throw new InvalidArgumentError(`maximum retry count cannot be used with restart policy '${name}'`);
  if (count < 0) throw new InvalidArgumentError('maximum retry count cannot be negative');
  return { name, maximumRetryCount: count };
}

/** `--restart` combined with `--rm` is docker's conflict (its CLI's message). */
export function checkRestartWithAutoRemove(p: RestartPolicy | undefined, autoRemove: boolean): void {
  if (p && p.name !== 'no' && autoRemove) throw new InvalidArgumentError('Conflicting options: --restart and --rm');
}

export const BACKOFF_START_MS = 100;
export const BACKOFF_MAX_MS = 60_000;
/** A run at least this long resets the delay to its start. */
export const BACKOFF_RESET_AFTER_MS = 10_000;

/**
 * Whether to restart a container that ended with `exitCode` after running `ranMs`, given how many
 * restarts it has had, and the delay to wait first (`lastDelayMs` is the delay before the previous
 * restart, 0 for none). A container stopped by its user is never restarted here (docker cancels
 * its restart manager on stop and kill).
 */
export function restartDecision(
  p: RestartPolicy,
  o: { exitCode: number; ranMs: number; restartCount: number; lastDelayMs: number; manuallyStopped: boolean },
): { restart: boolean; delayMs: number } {
  let delay = o.ranMs >= BACKOFF_RESET_AFTER_MS ? 0 : o.lastDelayMs;
  delay = delay === 0 ? BACKOFF_START_MS : Math.min(delay * 2, BACKOFF_MAX_MS);
  if (o.manuallyStopped) return { restart: false, delayMs: delay };
  let restart = false;
  if (p.name === 'always' || p.name === 'unless-stopped') restart = true;
  else if (p.name === 'on-failure') restart = o.exitCode !== 0 && (p.maximumRetryCount === 0 || o.restartCount < p.maximumRetryCount);
  return { restart, delayMs: delay };
}

/** `on-failure:3`, `always`: the policy as `--restart` spells it. */
export function formatRestartPolicy(p: RestartPolicy): string {
  return p.name === 'on-failure' && p.maximumRetryCount > 0 ? `${p.name}:${p.maximumRetryCount}` : p.name;
}
