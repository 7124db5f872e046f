/**
 * Linux capability names ↔ numbers (include/uapi/linux/capability.h) and Docker's default set,
 * the set a container keeps unless the spec lists its own.
 */
import { InvalidArgumentError } from '../errors.js';

export const CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default capability set (moby oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Accepts `CAP_CHOWN`, `chown` or `CHOWN`; returns the canonical `CAP_` name. */
export function normalizeCapability(name: string): string {
  const up = name.trim().toUpperCase();
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!CAPABILITIES.includes(full)) throw new InvalidArgumentError(`unknown capability ${JSON.stringify(name)}`);
  return full;
}

export function capabilityNumber(name: string): number {
  return CAPABILITIES.indexOf(normalizeCapability(name));
}

export function capabilityName(n: number): string {
  const name = CAPABILITIES[n];
  if (name === undefined) throw new InvalidArgumentError(`unknown capability number ${n}`);
  return name;
}

/** Bit mask (bit n = capability n) of the named set; `ALL` stands for every capability. */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    if (n.toUpperCase() === 'ALL' || n.toUpperCase() === 'CAP_ALL') {
      mask |= (1n << BigInt(CAPABILITIES.length)) - 1n;
      continue;
    }
    mask |= 1n << BigInt(capabilityNumber(n));
  }
  return mask;
}

/** Names of the capabilities in a mask such as /proc/self/status `CapEff` (hex). */
export function capabilitiesFromMask(mask: bigint | string): string[] {
  const m = typeof mask === 'string' ? BigInt(`0x${mask}`) : mask;
  return CAPABILITIES.filter((_, i) => (m >> BigInt(i)) & 1n);
}
