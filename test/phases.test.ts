import { describe, expect, it } from 'vitest';
import { PhaseClock } from '../src/phases.js';

describe('PhaseClock', () => {
  it('sums each phase, lists phases in the order first seen, and leaves out what took under 5 ms', async () => {
    let t = 1000;
    const c = new PhaseClock(() => t);
    const end = c.start('copy');
    t += 1200;
    end();
    await c.time('pack', async () => {
      t += 300;
    });
    c.timeSync('hash', () => {
      t += 2;
    });
    c.add('copy', 50);
    expect([...c.totalsMs]).toEqual([['copy', 1250], ['pack', 300], ['hash', 2]]);
    expect(c.summary()).toBe('copy 1.25s, pack 0.30s');
  });

  it('records a failed span too, and gives its spans as Chrome trace events', async () => {
    let t = 0;
    const c = new PhaseClock(() => t);
    await expect(c.time('sandbox', async () => {
      t += 40;
      throw new Error('exit 1');
    })).rejects.toThrow('exit 1');
    t += 10;
    c.timeSync('sync', () => {
      t += 5;
    });
    expect(c.traceEvents({ pid: 7, tid: 3 })).toEqual([
      { name: 'sandbox', cat: 'phase', ph: 'X', ts: 0, dur: 40_000, pid: 7, tid: 3 },
      { name: 'sync', cat: 'phase', ph: 'X', ts: 50_000, dur: 5_000, pid: 7, tid: 3 },
    ]);
    expect(new PhaseClock().summary()).toBe('');
  });
});
