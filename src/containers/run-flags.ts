/**
 * `run` flags that need the host or the image to be read: devices (`--device`,
 * `--device-cgroup-rule`, `--privileged`), `--group-add` and labels (`--label`, `--label-file`).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fromSystemError, InvalidArgumentError } from '../errors.js';
import { capabilitiesFromMask } from '../sandbox/capabilities.js';
import type { Device, Mount } from '../sandbox/spec.js';
import { ALLOW_ALL_DEVICES, DEFAULT_DEVICE_RULES, hostDevices, parseDevice, parseDeviceCgroupRule } from './devices.js';
import { readRootfsFile } from './rootfs.js';

/**
 * The device nodes to make and the device cgroup rules. Without any device flag there are no
 * rules: no devices group is made and the nodev /dev (only the standard nodes usable) is the policy.
 */
export function deviceSettings(o: { privileged?: boolean; devices?: string[]; deviceCgroupRules?: string[] }): { nodes: Device[]; rules?: string[] } {
  const parsed = (o.devices ?? []).map(parseDevice);
  const extra = (o.deviceCgroupRules ?? []).map(parseDeviceCgroupRule);
  const byPath = new Map<string, Device>();
  for (const n of [...(o.privileged ? hostDevices() : []), ...parsed.flatMap((p) => p.nodes)]) byPath.set(n.path, n);
  const nodes = [...byPath.values()];
  if (o.privileged) return { nodes, rules: [ALLOW_ALL_DEVICES] };
  if (parsed.length === 0 && extra.length === 0) return { nodes };
  return { nodes, rules: [...DEFAULT_DEVICE_RULES, ...parsed.flatMap((p) => p.rules), ...extra] };
}

/** `--group-add`: gids as given, names looked up in the image's /etc/group (Docker refuses an unknown one). */
export async function resolveGroups(rootfs: Mount[], groups: string[]): Promise<number[]> {
  let table: Map<string, number> | undefined;
  const out: number[] = [];
  for (const g of groups) {
    if (/^\d+$/.test(g)) {
      out.push(Number(g));
      continue;
    }
    table ??= new Map(
      ((await readRootfsFile(rootfs, 'etc/group').catch(() => undefined)) ?? '')
        .split('\n')
        .map((l) => l.split(':'))
        .filter((f) => f.length >= 3 && /^\d+$/.test(f[2] ?? ''))
        .map((f) => [f[0]!, Number(f[2])] as const),
    );
    const gid = table.get(g);
    if (gid === undefined) throw new InvalidArgumentError(`--group-add ${g}: no such group in the image's /etc/group`);
    out.push(gid);
  }
  return out;
}

/** `--label-file` lines and `--label k=v` (a bare `k` is an empty label), the flags last. */
export async function readLabels(labels: string[], files: string[]): Promise<Record<string, string>> {
  const lines: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (e) {
      throw new InvalidArgumentError(`--label-file: ${fromSystemError(e)?.message ?? (e as Error).message}`, { cause: e });
    }
    lines.push(...text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')));
  }
  const out: Record<string, string> = {};
  for (const l of [...lines, ...labels]) {
    const i = l.indexOf('=');
    const k = i < 0 ? l : l.slice(0, i);
    if (!k) throw new InvalidArgumentError(`invalid label ${JSON.stringify(l)}: the key is empty`);
    out[k] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

/**
 * `--privileged`'s capabilities: every one this process holds in its bounding set (Docker takes
 * every capability the host knows; a runtime cannot grant one it lacks, and runc refuses to try).
 */
export function privilegedCapabilities(): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return capabilitiesFromMask(m?.[1] ?? '0');
}
