import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sweepLocks, sweepTempFiles, withLock } from '../../src/atomic.js';
import { AbortedError } from '../../src/errors.js';
import { makeTmp } from '../helpers/tmp.js';
import { REPO_ROOT } from '../helpers/cli.js';

function selfStart(): string {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe('withLock', () => {
  let tmp: Awaited<ReturnType<typeof makeTmp>>;
  beforeEach(async () => {
    tmp = await makeTmp();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('serialises holders and leaves no files behind', async () => {
    const target = join(tmp.dir, 'sub', 'thing');
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        withLock(target, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 3));
          order.push(i);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(order).toHaveLength(8);
    expect(readdirSync(join(tmp.dir, 'sub'))).toEqual([]);
  });

  it('records the owner while held and releases on a throw', async () => {
    const target = join(tmp.dir, 'x');
    await expect(
      withLock(target, async () => {
        expect(readFileSync(`${target}.lock`, 'utf8')).toBe(`${process.pid} ${selfStart()}\n`);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(existsSync(`${target}.lock`)).toBe(false);
  });

  it('breaks a lock whose owner is dead', async () => {
    const dead = spawnSync('true').pid!; // reaped: its pid names no process now
    const target = join(tmp.dir, 'x');
    writeFileSync(`${target}.lock`, `${dead} 12345\n`);
    expect(await withLock(target, async () => 'got')).toBe('got');
  });

  it('breaks a lock whose pid was reused by a later process', async () => {
    const target = join(tmp.dir, 'x');
    // our own pid, but another start time: the process that wrote it is gone
    writeFileSync(`${target}.lock`, `${process.pid} 1\n`);
    expect(await withLock(target, async () => 'got')).toBe('got');
  });

  it('breaks an empty or garbled lock, never written by withLock', async () => {
    const target = join(tmp.dir, 'x');
    writeFileSync(`${target}.lock`, '');
    expect(await withLock(target, async () => 'got')).toBe('got');
  });

  it('waits for a live owner and gives up when the signal aborts', async () => {
    const target = join(tmp.dir, 'x');
    writeFileSync(`${target}.lock`, `${process.pid} ${selfStart()}\n`);
    const ac = new AbortController();
    let ran = false;
    const p = withLock(target, async () => {
      ran = true;
    }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(ran).toBe(false);
    expect(existsSync(`${target}.lock`)).toBe(true); // still the live owner's
    expect(readdirSync(tmp.dir)).toEqual(['x.lock']);
  });

  it('breaks an old-style lock directory only once it is stale', async () => {
    const target = join(tmp.dir, 'x');
    mkdirSync(`${target}.lock`);
    const old = new Date(Date.now() - 60_000);
    const { utimesSync } = await import('node:fs');
    utimesSync(`${target}.lock`, old, old);
    expect(await withLock(target, async () => 'got')).toBe('got');
  });

  it('keeps short-lived processes from losing updates (each takes the lock, then exits)', async () => {
    // Many processes that exit right after releasing is where a dead-owner check meets a lock
    // just taken afresh by someone else; no increment may be lost.
    const counter = join(tmp.dir, 'counter');
    writeFileSync(counter, '0');
    const script = `
      import { withLock } from ${JSON.stringify(join(REPO_ROOT, 'dist', 'atomic.js'))};
      import { readFile, writeFile } from 'node:fs/promises';
      const p = process.argv[1];
      await withLock(p, async () => {
        const n = Number(await readFile(p, 'utf8'));
        await new Promise((r) => setImmediate(r));
        await writeFile(p, String(n + 1));
      });`;
    const one = (): Promise<number | null> =>
      new Promise((resolve) => spawn(process.execPath, ['--input-type=module', '-e', script, counter], { stdio: 'inherit' }).on('exit', resolve));
    const rounds = 4;
    for (let r = 0; r < rounds; r++) expect(await Promise.all(Array.from({ length: 8 }, one))).toEqual(Array(8).fill(0));
    expect(readFileSync(counter, 'utf8')).toBe(String(rounds * 8));
    expect(readdirSync(tmp.dir).sort()).toEqual(['counter']);
  }, 60_000);
});

describe('sweepLocks and sweepTempFiles', () => {
  let tmp: Awaited<ReturnType<typeof makeTmp>>;
  beforeEach(async () => {
    tmp = await makeTmp();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('remove what dead processes left and keep what live ones hold', async () => {
    const d = tmp.dir;
    const dead = spawnSync('true').pid!;
    const me = `${process.pid} ${selfStart()}\n`;
    const left = [
      `a.lock.${dead}.0000abcd`, // a waiter killed before unlinking its owner file
      `b.lock.${dead}.0000abce`, // ... or before writing it
      `d.lock.${process.pid}.0000abd0`, // written by an earlier process with our pid
      'e.lock', // held by a dead process that nobody waited for
      'g.lock.break',
      `.index.json.${dead}.0123abcd.tmp`, // a write killed before its rename
      `x.json.${dead}.0123abce.tmp`,
    ];
    writeFileSync(join(d, left[0]!), `${dead} 12345\n`);
    writeFileSync(join(d, left[1]!), '');
    writeFileSync(join(d, left[2]!), `${process.pid} 1\n`);
    writeFileSync(join(d, 'e.lock'), `${dead} 12345\n`);
    writeFileSync(join(d, 'g.lock.break'), `${dead} 1\n`);
    writeFileSync(join(d, left[5]!), '{');
    writeFileSync(join(d, left[6]!), '{');
    const kept = [`c.lock.${process.pid}.0000abcf`, 'f.lock', `.index.json.${process.pid}.0123abcf.tmp`, 'index.json', 'unrelated.lock.txt'];
    writeFileSync(join(d, kept[0]!), me);
    writeFileSync(join(d, 'f.lock'), me);
    for (const k of kept.slice(2)) writeFileSync(join(d, k), 'x');
    const removed = [...(await sweepLocks(d)), ...(await sweepTempFiles(d))];
    expect(removed.sort()).toEqual([...left].sort());
    expect(readdirSync(d).sort()).toEqual([...kept].sort());
    expect(await sweepLocks(join(d, 'missing'))).toEqual([]);
    expect(await sweepTempFiles(join(d, 'missing'))).toEqual([]);
  });
});
