/**
 * The container's directory as an OCI bundle (`runc run --bundle DIR` runs it as it is): kept in
 * step with the limits `update` changes, so that the bundle runs with the container's own.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic.js';
import { resourceLimits } from '../sandbox/sandbox.js';
import { pathOf, type HostConfig } from './record.js';

/** Rewrites config.json's `linux.resources` memory, cpu and pids from the host config (device rules stay). */
export async function updateBundleLimits(root: string, id: string, h: Pick<HostConfig, 'memory' | 'cpus' | 'pidsLimit' | 'cpuShares'>): Promise<void> {
  const file = pathOf(root, id, 'config');
  const config = JSON.parse(await readFile(file, 'utf8')) as { linux?: { resources?: Record<string, unknown> } };
  if (!config.linux) return; // not representable when the container was made: nothing to keep in step
  const { memory: _m, cpu: _c, pids: _p, ...rest } = config.linux.resources ?? {};
  config.linux.resources = { ...rest, ...resourceLimits({ memory: h.memory, cpus: h.cpus, pidsLimit: h.pidsLimit, ...(h.cpuShares !== undefined ? { cpuShares: h.cpuShares } : {}) }) };
  await writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`);
}
