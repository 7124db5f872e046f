/**
 * `run --device`, `--device-cgroup-rule` and `--privileged`'s devices, as Docker reads them: a
 * host node (or every node under a host directory) made in the container at its path, and the
 * device cgroup rules that let it be used; `--privileged` gets every device node of the host's
 * /dev (runc's HostDevices) and a cgroup that allows all.
 */
import { readdirSync, statSync, type BigIntStats } from 'node:fs';
import { join, posix } from 'node:path';
import { InvalidArgumentError } from '../errors.js';

import type { Device } from '../sandbox/spec.js';

/** A device node in the runtime-spec's form (`linux.devices`). */
export type DeviceNode = Device;

export { DEFAULT_DEVICE_RULES } from '../sandbox/spec.js';
export const ALLOW_ALL_DEVICES = 'a *:* rwm';

/** Linux's dev_t split (major: bits 8-19 and 32-43, minor: bits 0-7 and 20-31). */
function split(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

function node(path: string, st: BigIntStats): DeviceNode | undefined {
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  return { path, type, ...split(st.rdev), fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid) };
}

/** Device nodes under a host directory, at `to` + their relative path (links are not followed). */
function walk(dir: string, to: string, skip: (rel: string) => boolean, rel = ''): DeviceNode[] {
  const out: DeviceNode[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (skip(r)) continue;
    if (e.isDirectory()) out.push(...walk(dir, to, skip, r));
    else if (e.isCharacterDevice() || e.isBlockDevice()) {
      const n = node(posix.join(to, r), statSync(join(dir, r), { bigint: true }));
      if (n) out.push(n);
    }
  }
  return out;
}

const PERMISSIONS = /^[rwm]{1,3}$/;

/** `--device /dev/x[:/dev/y][:rwm]` → the nodes to make and their cgroup rules. */
export function parseDevice(spec: string): { nodes: DeviceNode[]; rules: string[] } {
  const parts = spec.split(':');
  let perms = 'rwm';
  if (parts.length > 1 && PERMISSIONS.test(parts.at(-1)!)) perms = parts.pop()!;
  if (parts.length > 2 || !parts[0]) throw new InvalidArgumentError(`invalid --device ${JSON.stringify(spec)}: expected /dev/host[:/dev/container][:rwm]`);
  const [host = '', ctr = host] = parts;
  if (!host.startsWith('/') || !ctr.startsWith('/')) throw new InvalidArgumentError(`invalid --device ${JSON.stringify(spec)}: the paths must be absolute`);
  let st: BigIntStats;
  try {
    st = statSync(host, { bigint: true });
  } catch (e) {
    throw new InvalidArgumentError(`--device ${spec}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such device' : (e as Error).message}`, { cause: e });
  }
  const nodes = st.isDirectory() ? walk(host, ctr, () => false) : [node(posix.normalize(ctr), st)].filter((n): n is DeviceNode => n !== undefined);
  if (nodes.length === 0) throw new InvalidArgumentError(`--device ${spec}: ${host} is not a device`);
  return { nodes, rules: nodes.map((n) => `${n.type} ${n.major}:${n.minor} ${perms}`) };
}

/** `--device-cgroup-rule 'c 42:* rmw'`: the kernel's devices.allow syntax. */
export function parseDeviceCgroupRule(rule: string): string {
  const m = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(rule.trim());
  if (!m) throw new InvalidArgumentError(`invalid --device-cgroup-rule ${JSON.stringify(rule)}: expected TYPE MAJOR:MINOR ACCESS, e.g. 'c 42:* rmw'`);
  return `${m[1]} ${m[2]}:${m[3]} ${m[4]}`;
}

/** Paths of /dev runc's HostDevices leaves out; the container's own standard nodes are made anyway. */
const HOST_SKIPPED = new Set(['pts', 'shm', 'fuse', 'mqueue', '.lxc', '.lxd-mounts', '.udev', 'console', 'ptmx',
  'null', 'zero', 'full', 'random', 'urandom', 'tty']);

/** Every device node of the host's /dev (`--privileged`). */
export function hostDevices(devDir = '/dev'): DeviceNode[] {
  return walk(devDir, '/dev', (rel) => HOST_SKIPPED.has(rel));
}
