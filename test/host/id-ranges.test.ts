import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { allocateIdRange, firstFit, ownersAlive, parseUsernsMode, releaseIdRange, subordinateRanges } from '../../src/host/id-ranges.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let files: { subuid: string; subgid: string };
beforeEach(async () => {
  tmp = await makeTmp('imgbuild-idr-');
  files = { subuid: join(tmp.dir, 'subuid'), subgid: join(tmp.dir, 'subgid') };
  // Two ranges for containers, as `usermod --add-subuids` twice makes; another user's between.
  writeFileSync(files.subuid, 'containers:1000:100\nalice:1100:100\ncontainers:5000:300\n');
  writeFileSync(files.subgid, 'containers:9000:1000\n');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('--userns values', () => {
  it('reads host, auto and auto:size=N as podman does', () => {
    expect(parseUsernsMode(undefined)).toEqual({ kind: 'host' });
    expect(parseUsernsMode('')).toEqual({ kind: 'host' });
    expect(parseUsernsMode('host')).toEqual({ kind: 'host' });
    expect(parseUsernsMode('auto')).toEqual({ kind: 'auto', size: 65536 });
    expect(parseUsernsMode('auto:size=8192')).toEqual({ kind: 'auto', size: 8192 });
    expect(() => parseUsernsMode('auto:size=0')).toThrow(/between 1 and/);
    expect(() => parseUsernsMode('auto:uidmapping=0:1:2')).toThrow(/auto takes size=N/);
    expect(() => parseUsernsMode('keep-id')).toThrow(expect.objectContaining({ code: 'NOT_IMPLEMENTED' }));
    expect(() => parseUsernsMode('nope')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('ranges', () => {
  it('takes every line of the user, in order, and fits around the ones in use', () => {
    const r = subordinateRanges('containers:1000:100\nalice:1100:100\ncontainers:5000:300\n', 'containers');
    expect(r).toEqual([{ start: 1000, size: 100 }, { start: 5000, size: 300 }]);
    expect(firstFit(r, [], 100)).toBe(1000);
    expect(firstFit(r, [{ start: 1000, size: 10 }], 100)).toBe(5000);
    expect(firstFit(r, [{ start: 1000, size: 10 }], 90)).toBe(1010);
    expect(firstFit(r, [{ start: 5100, size: 50 }], 150)).toBe(5150);
    expect(firstFit(r, [{ start: 5100, size: 51 }], 150)).toBeUndefined();
  });

  it('allocates disjoint ranges, gives the same owner its own again, and sweeps dead owners', async () => {
    const dir = join(tmp.dir, 'userns');
    const live = new Set(['a', 'b', 'c']);
    const o = { files, isLive: async (x: string) => live.has(x) };
    expect(await allocateIdRange(dir, 'a', 100, o)).toEqual({ uid: 1000, gid: 9000, size: 100 });
    expect(await allocateIdRange(dir, 'b', 100, o)).toEqual({ uid: 5000, gid: 9100, size: 100 });
    expect(await allocateIdRange(dir, 'a', 100, o)).toEqual({ uid: 1000, gid: 9000, size: 100 });
    await expect(allocateIdRange(dir, 'c', 250, o)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    // a's container is gone without giving its range back: the next allocation takes it.
    live.delete('a');
    expect(await allocateIdRange(dir, 'c', 100, o)).toEqual({ uid: 1000, gid: 9000, size: 100 });
    expect(readdirSync(dir).filter((n) => n.endsWith('.json')).sort()).toEqual(['b.json', 'c.json']);
    await releaseIdRange(dir, 'b');
    expect(await allocateIdRange(dir, 'd', 300, { ...o, isLive: async (x: string) => x === 'c' })).toEqual({ uid: 5000, gid: 9100, size: 300 });
  });

  it('says how to add a range when the user has none', async () => {
    writeFileSync(files.subgid, 'alice:1100:100\n');
    await expect(allocateIdRange(join(tmp.dir, 'u'), 'a', 10, { files, isLive: async () => true })).rejects.toThrow(
      /no subordinate gid range for user containers in .*subgid: add one with usermod --add-subgids 2147483647-4294967294 containers/,
    );
  });

  it('knows a container by its directory and a build by its process', async () => {
    const ctrs = join(tmp.dir, 'containers');
    const id = 'a'.repeat(64);
    mkdirSync(join(ctrs, `.creating-${id}-1-2`), { recursive: true });
    const alive = ownersAlive(ctrs);
    expect(await alive(`ctr-${id}`)).toBe(true);
    expect(await alive(`ctr-${'b'.repeat(64)}`)).toBe(false);
    expect(await alive('build-999999999-1-ab')).toBe(false);
    const self = (await import('node:fs')).readFileSync('/proc/self/stat', 'utf8');
    const start = self.slice(self.lastIndexOf(')') + 2).split(' ')[19];
    expect(await alive(`build-${process.pid}-${start}-x1`)).toBe(true);
  });
});
