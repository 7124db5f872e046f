/**
 * The event journal: concurrent writers in separate processes never tear a line, the journal stays
 * within its bound across rotations, and a follower sees what is appended after it started, across
 * a rotation.
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emitEvent, emitEvents, parseEventLine, readEvents, type StoredEvent } from '../../src/store/events.js';
import { eventsFile, eventsOldFile } from '../../src/store/paths.js';
import { makeTmp } from '../helpers/tmp.js';
import { REPO_ROOT } from '../helpers/cli.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
beforeEach(async () => {
  tmp = await makeTmp();
});
afterEach(async () => {
  await tmp.cleanup();
});

function writer(root: string, tagName: string, n: number, maxBytes: number): Promise<number> {
  const code = `
    import { emitEvents } from ${JSON.stringify(join(REPO_ROOT, 'src/store/events.ts'))};
    for (let i = 0; i < ${n}; i++) await emitEvents(${JSON.stringify(root)}, [{ type: 'container', action: 'start', id: ${JSON.stringify(tagName)} + '-' + i, attributes: { pad: 'x'.repeat(200 + (i % 50)) } }], { maxBytes: ${maxBytes} });
  `;
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO_ROOT, stdio: 'inherit' });
    c.on('error', rej);
    c.on('close', (status) => res(status ?? 1));
  });
}

async function collect(root: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const e of readEvents(root)) out.push(e);
  return out;
}

describe('event journal', () => {
  it('keeps every line whole with four processes appending at once', async () => {
    const statuses = await Promise.all([0, 1, 2, 3].map((w) => writer(tmp.dir, `w${w}`, 150, 1 << 30)));
    expect(statuses).toEqual([0, 0, 0, 0]);
    const lines = (await readFile(eventsFile(tmp.dir), 'utf8')).split('\n').filter(Boolean);
    expect(lines).toHaveLength(600);
    for (const l of lines) expect(parseEventLine(l)).toBeDefined();
    const events = await collect(tmp.dir);
    const ids = new Set(events.map((e) => e.Actor.ID));
    expect(ids.size).toBe(600);
    // Each process's own events stay in order.
    for (const w of [0, 1, 2, 3]) {
      const mine = events.filter((e) => e.Actor.ID.startsWith(`w${w}-`)).map((e) => Number(e.Actor.ID.split('-')[1]));
      expect(mine).toEqual([...mine].sort((a, b) => a - b));
    }
  }, 60_000);

  it('stays within twice its bound when writers rotate it concurrently', async () => {
    const max = 16 * 1024;
    const statuses = await Promise.all([0, 1, 2].map((w) => writer(tmp.dir, `r${w}`, 200, max)));
    expect(statuses).toEqual([0, 0, 0]);
    const cur = (await stat(eventsFile(tmp.dir))).size;
    const old = (await stat(eventsOldFile(tmp.dir))).size;
    // One line past the bound at most per writer before it rotates.
    expect(cur).toBeLessThan(max + 3 * 400);
    expect(old).toBeLessThan(max + 3 * 400);
    const events = await collect(tmp.dir);
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThan(600);
    for (const l of (await readFile(eventsOldFile(tmp.dir), 'utf8')).split('\n').filter(Boolean)) expect(parseEventLine(l)).toBeDefined();
  }, 60_000);

  it('follows appends from the present, across a rotation, and honours since/until', async () => {
    await emitEvent(tmp.dir, { type: 'image', action: 'pull', id: 'before' });
    const ctl = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of readEvents(tmp.dir, { follow: true, signal: ctl.signal, pollMs: 20 })) {
        seen.push(e.Actor.ID);
        if (seen.length === 3) ctl.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await emitEvent(tmp.dir, { type: 'image', action: 'tag', id: 'a' });
    // Force a rotation: the next write finds the file over a tiny bound.
    await emitEvents(tmp.dir, [{ type: 'image', action: 'tag', id: 'b' }], { maxBytes: 10 });
    await new Promise((r) => setTimeout(r, 100));
    await emitEvent(tmp.dir, { type: 'image', action: 'tag', id: 'c' });
    await following;
    expect(seen).toEqual(['a', 'b', 'c']);

    const all = await collect(tmp.dir);
    expect(all.map((e) => e.Actor.ID)).toEqual(['before', 'a', 'b', 'c']);
    const since = BigInt(all[1]!.timeNano);
    const until = BigInt(all[2]!.timeNano);
    const window: string[] = [];
    for await (const e of readEvents(tmp.dir, { sinceNano: since, untilNano: until })) window.push(e.Actor.ID);
    expect(window).toEqual(['a', 'b']);
  });

  it('records a given time (a container end noticed later) and Docker fields', async () => {
    await emitEvent(tmp.dir, { type: 'container', action: 'die', id: 'abc', attributes: { image: 'busybox', exitCode: '3', name: undefined }, timeNano: 1_700_000_000_123_456_789n });
    const [e] = await collect(tmp.dir);
    expect(e).toMatchObject({ Type: 'container', Action: 'die', status: 'die', id: 'abc', from: 'busybox', time: 1_700_000_000, timeNano: '1700000000123456789', scope: 'local' });
    expect(e!.Actor.Attributes).toEqual({ image: 'busybox', exitCode: '3' });
  });
});
