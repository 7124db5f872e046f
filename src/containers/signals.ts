/** Signals as users name them (`TERM`, `SIGTERM`, `15`) and as the kernel numbers them. */
import { constants as osConstants } from 'node:os';
import { InvalidArgumentError } from '../errors.js';

/** The number of a signal given by name (with or without `SIG`) or number; INVALID_ARGUMENT if unknown. */
export function signalNumber(sig: string | number): number {
  if (typeof sig === 'number') return sig;
  const s = sig.toUpperCase();
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.startsWith('SIG') ? s : `SIG${s}`) as keyof typeof osConstants.signals;
  const n = osConstants.signals[name];
  if (n === undefined) throw new InvalidArgumentError(`invalid signal: ${sig}`);
  return n;
}

/** The name of signal number `n` (`SIGTERM`), if the platform has one. */
export function signalName(n: number): string | undefined {
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
}
