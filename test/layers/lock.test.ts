import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withLock } from '../../src/layers/atomic.js';
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
      import { withLock } from ${JSON.stringify(join(REPO_ROOT, 'dist', 'layers', 'atomic.js'))};
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
