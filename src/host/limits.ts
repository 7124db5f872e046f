/**
 * Resource limits as users write them (`-m 64m`, `--cpus 0.5`, `--pids-limit 100`,
 * `--ulimit nofile=1024:2048`), parsed exactly and checked against the ranges Docker and the
 * kernel enforce, before anything reaches a cgroup file or setrlimit. Numbers are read as decimal
 * digits into BigInt, never through a float: `99999999999999999999g` is refused here instead of
 * reaching the kernel as `1.073741824e+29`. Every error names the flag and the value.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Rlimit } from '../sandbox/spec.js';

/** Docker refuses memory limits below 6 MiB ("Minimum memory limit allowed is 6MB"). */
export const MIN_MEMORY = 6 * 1024 * 1024;
/** Limits travel as JavaScript numbers, exact up to 2^53 - 1 (8 PiB of memory). */
const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);
/** pids.max takes at most PID_MAX_LIMIT (4194304 on 64-bit kernels). */
export const MAX_PIDS = 4194304;

const UNITS: Record<string, bigint> = { '': 1n, b: 1n, k: 1024n, m: 1024n ** 2n, g: 1024n ** 3n, t: 1024n ** 4n, p: 1024n ** 5n };

function invalid(flag: string, value: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid ${flag} ${JSON.stringify(value)}: ${why}`);
}

/** `digits[.digits]` as an exact fraction: numerator over 10^(fraction digits). */
function decimal(int: string, frac: string | undefined): { num: bigint; den: bigint } {
  const f = frac ?? '';
  return { num: BigInt(`${int || '0'}${f}`), den: 10n ** BigInt(f.length) };
}

/**
 * A size in bytes with an optional binary unit, as Docker reads `--memory` and `--shm-size`
 * (`64m`, `1.5g`, `512MiB`, `100 kb`; units are powers of 1024). `0` means no limit (undefined).
 */
export function parseMemoryLimit(value: string, flag = '--memory'): number | undefined {
  const m = /^(\d+)(?:\.(\d+))? ?([bkmgtp])?(?:i?b)?$/i.exec(value.trim());
  if (!m) throw invalid(flag, value, 'expected a size such as 64m or 1.5g (units b, k, m, g, t, p)');
  const { num, den } = decimal(m[1]!, m[2]);
  const bytes = (num * UNITS[(m[3] ?? '').toLowerCase()]!) / den;
  if (bytes === 0n) return undefined;
  if (bytes > MAX_EXACT) throw invalid(flag, value, 'larger than the largest limit, 8 PiB');
  if (bytes < BigInt(MIN_MEMORY)) throw invalid(flag, value, 'Minimum memory limit allowed is 6MB');
  return Number(bytes);
}

/**
 * `--shm-size`: the size of /dev/shm, read like `--memory` (binary units, exact) but with no
 * minimum. `0` leaves the default size (undefined).
 */
export function parseShmSize(value: string, flag = '--shm-size'): number | undefined {
  const m = /^(\d+)(?:\.(\d+))? ?([bkmgtp])?(?:i?b)?$/i.exec(value.trim());
  if (!m) throw invalid(flag, value, 'expected a size such as 64m or 1g (units b, k, m, g, t, p)');
  const { num, den } = decimal(m[1]!, m[2]);
  const bytes = (num * UNITS[(m[3] ?? '').toLowerCase()]!) / den;
  if (bytes === 0n) return undefined;
  if (bytes > MAX_EXACT) throw invalid(flag, value, 'larger than the largest size, 8 PiB');
  return Number(bytes);
}

/**
 * A number of CPUs as Docker reads `--cpus`: a decimal with at most nine decimals (it counts in
 * billionths of a CPU), from 0.01 to the number of CPUs available. `0` means no limit (undefined).
 */
export function parseCpus(value: string, available: number, flag = '--cpus'): number | undefined {
  const m = /^(\d*)(?:\.(\d+))?$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === undefined)) throw invalid(flag, value, 'expected a decimal number of CPUs such as 0.5 or 2');
  const { num, den } = decimal(m[1]!, m[2]);
  const nano = num * 1_000_000_000n;
  if (nano % den !== 0n) throw invalid(flag, value, 'value is too precise (at most 9 decimals)');
  const nanos = nano / den;
  if (nanos === 0n) return undefined;
  if (nanos < 10_000_000n || nanos > BigInt(available) * 1_000_000_000n) {
    throw invalid(flag, value, `range of CPUs is from 0.01 to ${available}.00, as there are only ${available} CPUs available`);
  }
  return Number(nanos) / 1e9;
}

/** `--pids-limit`: a positive number of processes; 0 and -1 mean no limit (undefined), as in Docker. */
export function parsePidsLimit(value: string, flag = '--pids-limit'): number | undefined {
  const m = /^(-?)(\d+)$/.exec(value.trim());
  if (!m) throw invalid(flag, value, 'expected a whole number of processes (-1 for no limit)');
  const n = BigInt(m[2]!) * (m[1] ? -1n : 1n);
  if (n === 0n || n === -1n) return undefined;
  if (n < 0n) throw invalid(flag, value, 'expected a positive number of processes (-1 for no limit)');
  if (n > BigInt(MAX_PIDS)) throw invalid(flag, value, `the kernel allows at most ${MAX_PIDS}`);
  return Number(n);
}

/** The kernel's range of v1 cpu.shares (Docker moves a value outside it to the nearest end). */
export const MIN_CPU_SHARES = 2;
export const MAX_CPU_SHARES = 262144;

/**
 * `--cpu-shares` (`-c`): a relative CPU weight, 1024 for an ordinary container; 0 means the
 * default (undefined). As Docker, a value outside 2..262144 is moved to the nearest end.
 */
export function parseCpuShares(value: string, flag = '--cpu-shares'): number | undefined {
  const m = /^(\d+)$/.exec(value.trim());
  if (!m) throw invalid(flag, value, 'expected a whole number (a relative weight: 1024 is the default)');
  const n = BigInt(m[1]!);
  if (n === 0n) return undefined;
  return Number(n < BigInt(MIN_CPU_SHARES) ? BigInt(MIN_CPU_SHARES) : n > BigInt(MAX_CPU_SHARES) ? BigInt(MAX_CPU_SHARES) : n);
}

const RLIMIT_NAMES: Record<string, string> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK', msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO', rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK',
};

/**
 * `--ulimit name=soft[:hard]` (Docker's names; hard defaults to soft). A value is a whole number,
 * or -1 for unlimited (RLIM_INFINITY, as Docker passes it on); the soft limit may not exceed the hard.
 */
export function parseUlimit(u: string): Rlimit {
  const flag = '--ulimit';
  const m = /^([a-z]+)=([^:]*)(?::(.*))?$/.exec(u);
  const type = m && RLIMIT_NAMES[m[1]!];
  if (!m || !type) throw invalid(flag, u, `expected name=soft[:hard] with a name among ${Object.keys(RLIMIT_NAMES).join(', ')}`);
  const limit = (s: string): bigint => {
    if (!/^-?\d+$/.test(s)) throw invalid(flag, u, `${JSON.stringify(s)} is not a whole number (-1 for unlimited)`);
    const n = BigInt(s);
    if (n < -1n) throw invalid(flag, u, `${s} is negative (-1 for unlimited)`);
    if (n > MAX_EXACT) throw invalid(flag, u, `${s} is larger than ${MAX_EXACT}`);
    return n;
  };
  const soft = limit(m[2]!);
  const hard = m[3] === undefined ? soft : limit(m[3]);
  const infinite = (n: bigint): boolean => n === -1n;
  if (!infinite(hard) && (infinite(soft) || soft > hard)) {
    throw invalid(flag, u, `soft limit above hard limit (${infinite(soft) ? 'unlimited' : soft} > ${hard})`);
  }
  return { type, soft: Number(soft), hard: Number(hard) };
}
