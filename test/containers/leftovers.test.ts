/**
 * pruneLeftovers over cgroup hierarchies laid out as plain directory trees (v2 unified, v1 per
 * controller), with claims in a directory of the test's own: which groups go and which stay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { pruneLeftovers } from '../../src/containers/leftovers.js';
import { listGroups } from '../../src/host/cgroups.js';
import { procStartTime as processStartTime } from '../../src/containers/proc.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const id = (c: string): string => c.repeat(64);

async function setup(layout: 'v2' | 'v1'): Promise<{ root: string; cgroupRoot: string; claimsDir: string; groups: (id: string) => string[] }> {
  const tmp = await makeTmp('imgbuild-leftovers-');
  cleanups.push(tmp.cleanup);
  const root = join(tmp.dir, 'root');
  const cgroupRoot = join(tmp.dir, 'cgroup');
  const claimsDir = join(tmp.dir, 'claims');
  await mkdir(join(root, 'containers'), { recursive: true });
  await mkdir(claimsDir, { recursive: true });
  await mkdir(cgroupRoot, { recursive: true });
  if (layout === 'v2') await writeFile(join(cgroupRoot, 'cgroup.controllers'), 'cpu memory pids\n');
  const controllers = layout === 'v2' ? [''] : ['memory', 'pids'];
  return { root, cgroupRoot, claimsDir, groups: (i) => controllers.map((c) => join(cgroupRoot, c, 'imgbuild', i)) };
}

describe.each(['v2', 'v1'] as const)('pruneLeftovers with a %s hierarchy', (layout) => {
  it('removes groups claimed by the root that it has no container for, and keeps the others', async () => {
    const { root, cgroupRoot, claimsDir, groups } = await setup(layout);
    const orphan = id('a');
    const kept = id('b');
    const unclaimed = id('c');
    const elsewhere = id('d');
    for (const i of [orphan, kept, unclaimed, elsewhere]) for (const g of groups(i)) await mkdir(g, { recursive: true });
    await symlink(root, join(claimsDir, orphan));
    await symlink(root, join(claimsDir, kept));
    // One this process is making (a bare directory would be a leftover itself).
    await mkdir(join(root, 'containers', `.creating-${kept}-${process.pid}-${await processStartTime(process.pid)}`));
    // Another root that still has its container.
    const other = join(root, '..', 'other');
    await mkdir(join(other, 'containers', elsewhere), { recursive: true });
    await symlink(other, join(claimsDir, elsewhere));

    expect([...(await listGroups({ cgroupRoot })).keys()].sort()).toEqual([orphan, kept, unclaimed, elsewhere].sort());
    const r = await pruneLeftovers(root, { cgroupRoot, claimsDir });
    expect(r.kernelObjects).toEqual([orphan]);
    expect(groups(orphan).some(existsSync)).toBe(false);
    expect(existsSync(join(claimsDir, orphan))).toBe(false);
    // Kept: a container being made in this root; a young group nobody claims; one another root still has.
    for (const i of [kept, unclaimed, elsewhere]) expect(groups(i).every(existsSync)).toBe(true);
    expect(existsSync(join(claimsDir, kept))).toBe(true);
  });
});
