/**
 * pause/unpause and update on cgroup v2, against a fake cgroupfs tree (this machine runs v1; the
 * v1 paths are covered on real containers in test/e2e/container-lifecycle.test.ts). The test
 * plays the kernel's part: what is written to cgroup.freeze shows in cgroup.events.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cgroup } from '../../src/host/cgroups.js';
import { pauseContainer, unpauseContainer } from '../../src/containers/pause.js';
import { updateContainer } from '../../src/containers/update.js';
import { containerDir, readRecord, writeRecord, type ContainerRecord } from '../../src/containers/record.js';
import { getContainer } from '../../src/containers/state.js';
import { procStartTime } from '../../src/containers/proc.js';
import { makeTmp } from '../helpers/tmp.js';

const ID = 'c'.repeat(64);
let tmp: { dir: string; cleanup: () => Promise<void> };
let cgroupRoot: string;
let store: string;
let group: string;
let kernel: NodeJS.Timeout;

const read = (p: string): Promise<string> => readFile(p, 'utf8').then((t) => t.trim());

beforeEach(async () => {
  tmp = await makeTmp();
  cgroupRoot = join(tmp.dir, 'cgroup');
  store = join(tmp.dir, 'root');
  await mkdir(cgroupRoot);
  await writeFile(join(cgroupRoot, 'cgroup.controllers'), 'cpu io memory pids\n');
  await writeFile(join(cgroupRoot, 'cgroup.subtree_control'), '');
  const cg = await Cgroup.create(ID, { memory: 64 << 20 }, { cgroupRoot });
  group = cg.paths[0]!;
  await writeFile(join(group, 'cgroup.freeze'), '0');
  await writeFile(join(group, 'cgroup.events'), 'populated 1\nfrozen 0\n');
  // The kernel: a group is frozen once cgroup.freeze says so.
  kernel = setInterval(() => {
    void readFile(join(group, 'cgroup.freeze'), 'utf8')
      .then((f) => writeFile(join(group, 'cgroup.events'), `populated 1\nfrozen ${f.trim() === '1' ? 1 : 0}\n`))
      .catch(() => {});
  }, 5);
  const rec: ContainerRecord = {
    id: ID,
    name: 'fake',
    image: 'sha256:' + 'a'.repeat(64),
    imageName: 'busybox',
    imageId: 'sha256:' + 'b'.repeat(64),
    snapshotKey: `ctr-${ID}`,
    created: new Date().toISOString(),
    config: { Hostname: 'fake' },
    path: 'sleep',
    args: ['300'],
    hostConfig: {
      autoRemove: false,
      networkMode: 'none',
      portBindings: [],
      memory: 64 << 20,
      binds: [],
      tmpfs: [],
      readOnly: false,
      capAdd: [],
      capDrop: [],
      init: false,
      tty: false,
      interactive: false,
    },
    cgroup: { version: 2, paths: [group] },
    // Watched by this test process, so every reader takes it as running.
    state: { status: 'running', monitorPid: process.pid, monitorStartTime: await procStartTime(process.pid), startedAt: new Date().toISOString() },
  };
  await mkdir(containerDir(store, ID), { recursive: true });
  await writeRecord(store, rec);
  // The runtime bundle's config, which update keeps in step.
  await writeFile(join(containerDir(store, ID), 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: {}, root: { path: 'rootfs' }, linux: {} }));
});
afterEach(async () => {
  clearInterval(kernel);
  await tmp.cleanup();
});

describe('cgroup v2 (fake tree)', () => {
  it('pause freezes through cgroup.freeze, no reader thaws it, unpause thaws', async () => {
    await pauseContainer(store, 'fake', { cgroupRoot });
    expect(await read(join(group, 'cgroup.freeze'))).toBe('1');
    expect((await readRecord(store, ID))!.state.paused).toBe(true);
    // A reader reconciling the state (ps, inspect) leaves a paused group frozen.
    expect((await getContainer(store, 'fake', { cgroupRoot })).state.paused).toBe(true);
    expect(await read(join(group, 'cgroup.freeze'))).toBe('1');
    await expect(pauseContainer(store, 'fake', { cgroupRoot })).rejects.toThrow(/already paused/);
    await unpauseContainer(store, 'fake', { cgroupRoot });
    expect(await read(join(group, 'cgroup.freeze'))).toBe('0');
    expect((await readRecord(store, ID))!.state.paused).toBeUndefined();
    await expect(unpauseContainer(store, 'fake', { cgroupRoot })).rejects.toThrow(/is not paused/);
  });

  it('a group frozen by no one living (a killed commit) is thawed, a paused one is not', async () => {
    await writeFile(join(group, 'cgroup.freeze'), '1');
    await new Promise((r) => setTimeout(r, 30));
    await getContainer(store, 'fake', { cgroupRoot });
    expect(await read(join(group, 'cgroup.freeze'))).toBe('0');
  });

  it('update writes the new limits into the live group and the record', async () => {
    await updateContainer(store, 'fake', { memory: 32 << 20, cpus: 1.5, pidsLimit: 20 }, { cgroupRoot });
    expect(await read(join(group, 'memory.max'))).toBe(String(32 << 20));
    expect(await read(join(group, 'cpu.max'))).toBe('150000 100000');
    expect(await read(join(group, 'pids.max'))).toBe('20');
    expect((await readRecord(store, ID))!.hostConfig).toMatchObject({ memory: 32 << 20, cpus: 1.5, pidsLimit: 20 });
    await updateContainer(store, 'fake', { memorySwap: 48 << 20 }, { cgroupRoot });
    expect(await read(join(group, 'memory.swap.max'))).toBe(String(16 << 20)); // v2's is swap alone
    await updateContainer(store, 'fake', { memorySwap: -1 }, { cgroupRoot });
    expect(await read(join(group, 'memory.swap.max'))).toBe('max');
    await updateContainer(store, 'fake', { pidsLimit: -1 }, { cgroupRoot });
    expect(await read(join(group, 'pids.max'))).toBe('max');
    expect((await readRecord(store, ID))!.hostConfig.pidsLimit).toBeUndefined();
  });
});
