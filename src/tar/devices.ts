/**
 * Whether this process may make device nodes, which decides whether a layer's char and block
 * entries are applied (Docker, podman and buildah apply them) or refused: mknod(2) of a device
 * needs CAP_MKNOD in the initial user namespace; in any other user namespace the kernel refuses
 * it whatever the capabilities. Applied nodes stay inert: containers mount their rootfs `nodev`
 * (docs/architecture.md, "Device policy").
 */
import { readFileSync } from 'node:fs';
import { UnsafePathError } from './errors.js';
import type { TarHeader } from './format.js';

const CAP_MKNOD = 27n;

/** The whole id range mapped onto itself: the initial user namespace. */
function inInitialUserNamespace(): boolean {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295';
  } catch {
    return false;
  }
}

function hasMknodCapability(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && ((BigInt(`0x${m[1]!}`) >> CAP_MKNOD) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** True when mknod(2) of a device node can succeed here (CAP_MKNOD in the initial user namespace). */
export function mayMakeDevices(): boolean {
  return hasMknodCapability() && inInitialUserNamespace();
}

/** Why this process may not make device nodes, and what would let it. */
function deviceHint(): { why: string; hint: string } {
  if (process.getuid?.() !== 0) return { why: 'only root may make device nodes', hint: 'run as root to use an image with device nodes' };
  if (!inInitialUserNamespace()) return { why: 'no process in a user namespace may make device nodes', hint: 'run as root outside a user namespace to use an image with device nodes' };
  return { why: 'this process lacks CAP_MKNOD', hint: 'run with CAP_MKNOD (root has it by default) to use an image with device nodes' };
}

/** A device node in a layer that this process may not make: says why and what would do. */
export class DeviceNodeRefusedError extends UnsafePathError {
  readonly hint: string;

  constructor(h: TarHeader, root: string) {
    const { why, hint } = deviceHint();
    super(h.name, root, `a device node (${h.type} ${h.devmajor}:${h.devminor}), and ${why}`);
    this.name = 'DeviceNodeRefusedError';
    this.hint = hint;
  }
}
