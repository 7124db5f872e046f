import { describe, expect, it } from 'vitest';
import { BuildTrace, PhaseClock } from '../src/phases.js';
import { trackOf, tracedReporter } from '../src/builder/trace.js';
import { slowest } from '../src/cli/progress.js';
import { checkTrace, within } from './helpers/trace.js';

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

describe('PhaseClock spans', () => {
  it('joins the back-to-back pieces of one phase, keeps a total without a span, and counts what it drops', () => {
    let t = 0;
    const c = new PhaseClock(() => t);
    c.span('pack', 0, 1);
    c.span('pack', 1, 2); // back to back: one span
    c.span('hash', 2, 3);
    c.span('pack', 3, 4); // after another phase: its own span
    c.addTotal('write', 7);
    expect(c.spanList.map((s) => [s.phase, s.start, s.dur])).toEqual([['pack', 0, 2], ['hash', 2, 1], ['pack', 3, 1]]);
    // Two at once, recorded as they end: two spans.
    const d = new PhaseClock(() => t);
    d.span('compress', 0.5, 3);
    d.span('compress', 0, 4);
    expect(d.spanList.map((s) => [s.phase, s.start, s.dur])).toEqual([['compress', 0.5, 2.5], ['compress', 0, 4]]);
    expect(c.totalsMs.get('write')).toBe(7);
    for (let i = 0; i < 5000; i++) c.span(i % 2 ? 'a' : 'b', 10 + i, 10.5 + i);
    expect(c.spanList.length).toBe(4096);
    expect(c.dropped).toBe(5003 - 4096);
  });

  it('a group span holds the phases run in it and is not summed', async () => {
    let t = 0;
    const c = new PhaseClock(() => t);
    await c.group('diff', async () => {
      c.timeSync('pack', () => {
        t += 10;
      });
      t += 5;
    });
    expect(c.summary()).toBe('pack 0.01s');
    expect(c.spanList.find((s) => s.phase === 'diff')).toEqual({ phase: 'diff', start: 0, dur: 15, group: true });
  });
});

describe('BuildTrace', () => {
  it('lays steps out on their stage tracks with their phases nested, in the Trace Event Format', async () => {
    let t = 1000;
    const trace = new BuildTrace({ name: 'imgbuild build', now: () => t });
    t += 1;
    trace.clock.span('context', 1001, 1003);
    const a = trace.begin('#1 [a 2/3] COPY . /', { track: 'stage a', cat: 'step' });
    const b = trace.begin('#2 [b 2/2] RUN make', { track: 'stage b', cat: 'step' });
    const ca = new PhaseClock(() => t);
    ca.span('context', 1000.5, 1002); // a COPY's walk comes before its task: the step grows to hold it
    a.attach(ca);
    const cb = new PhaseClock(() => t);
    b.attach(cb);
    t = 1010;
    await cb.group('diff', () => {
      cb.span('pack', 1010, 1012);
      cb.span('hash', 1012, 1013);
      t = 1014;
    });
    cb.span('sync', 1014, 1015);
    t = 1016;
    a.finish({ cached: true });
    b.finish();
    t = 1020;
    trace.finish();
    const file = trace.toJSON();
    const { problems, trace: got } = checkTrace(JSON.parse(JSON.stringify(file)));
    expect(problems).toEqual([]);
    expect([...got.threads.values()]).toEqual(['build', 'stage a', 'stage b']);
    const byName = new Map(got.slices.map((s) => [s.name, s]));
    const step = byName.get('#2 [b 2/2] RUN make')!;
    expect(step).toMatchObject({ ts: 1000, dur: 15_000, cat: 'step' });
    const diff = got.slices.find((s) => s.name === 'diff')!;
    expect(within(diff, step) && diff.tid === step.tid).toBe(true);
    for (const p of ['pack', 'hash']) expect(within(got.slices.find((s) => s.name === p)!, diff)).toBe(true);
    expect(byName.get('#1 [a 2/3] COPY . /')).toMatchObject({ ts: 500, args: { cached: true } });
    const root = byName.get('imgbuild build')!;
    for (const s of got.slices) expect(within(s, root), s.name).toBe(true);
    // In the file, by start, the outer of two with one start first.
    const order = got.slices.map((s) => [s.ts, -s.dur]);
    expect(order).toEqual([...order].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!));
    expect(got.slices.findIndex((s) => s === diff)).toBeLessThan(got.slices.findIndex((s) => s.name === 'pack'));
  });

  it('puts a span that only partly overlaps another of its track on a further lane, and ends what is still open', () => {
    let t = 0;
    const trace = new BuildTrace({ now: () => t });
    const p1 = trace.begin('pull a');
    t = 5;
    const p2 = trace.begin('pull b');
    t = 10;
    p1.finish();
    t = 12;
    const push = trace.begin('push x', { track: 'push x' });
    const up = trace.begin('upload layer', { parent: push });
    t = 15;
    push.finish({ error: 'refused' });
    trace.instant('interrupted');
    t = 20;
    const { problems, trace: got } = checkTrace(trace.toJSON());
    expect(problems).toEqual([]);
    expect([...got.threads.values()]).toEqual(expect.arrayContaining(['build', 'build (2)', 'push x']));
    const s = new Map(got.slices.map((x) => [x.name, x]));
    expect(s.get('pull a')!.tid).not.toBe(s.get('pull b')!.tid);
    expect(s.get('pull b')!.args).toEqual({ unfinished: true });
    expect(s.get('build')!.args).toEqual({ unfinished: true });
    // The push holds its upload, left open by the failure.
    expect(within(s.get('upload layer')!, s.get('push x')!)).toBe(true);
    expect(s.get('upload layer')!.tid).toBe(s.get('push x')!.tid);
    expect(got.instants.map((i) => i.name)).toEqual(['interrupted']);
    // Two compressions at once, one inside the other in time: side by side, not nested.
    const c = new PhaseClock(() => t);
    const task = trace.begin('compressing 2 layers');
    task.attach(c);
    c.span('compress', 21, 23);
    c.span('compress', 20.5, 24);
    t = 25;
    task.finish();
    const again = checkTrace(trace.toJSON());
    expect(again.problems).toEqual([]);
    const [x, y] = again.trace.slices.filter((z) => z.name === 'compress');
    expect(x!.tid).not.toBe(y!.tid);
    void p2;
    void up;
  });
});

describe('build trace reporter', () => {
  it('puts a stage\'s steps on its track, the rest on the build\'s, numbered as the plain progress numbers them', () => {
    expect(trackOf('[build 2/5] RUN make')).toBe('stage build');
    expect(trackOf('[stage-0 ONBUILD] RUN x')).toBe('stage stage-0');
    expect(trackOf('[internal] RUN isolation: chroot')).toBe('internal');
    expect(trackOf('pull docker.io/library/busybox:latest')).toBe('build');
    let t = 0;
    const trace = new BuildTrace({ now: () => t });
    const seen: string[] = [];
    const r = tracedReporter({
      task: (l) => ({ log: () => {}, warn: (w) => seen.push(`${l} WARN ${w}`), done: (n) => seen.push(`${l} ${n ?? 'DONE'}`), fail: (m) => seen.push(`${l} ERROR ${m}`) }),
      warn: (w) => seen.push(`WARN ${w}`),
    }, trace);
    r.warn?.('cache unusable');
    const a = r.task('[s 2/3] COPY a /a');
    a.warn?.('FromAsCasing');
    a.phases?.(new PhaseClock(() => t));
    t = 3;
    a.done('CACHED');
    const b = r.task('[s 3/3] RUN false');
    t = 4;
    b.fail('exit code: 1');
    const got = checkTrace(trace.toJSON()).trace.slices;
    expect(seen).toEqual(['WARN cache unusable', '[s 2/3] COPY a /a WARN FromAsCasing', '[s 2/3] COPY a /a CACHED', '[s 3/3] RUN false ERROR exit code: 1']);
    const checked = checkTrace(trace.toJSON()).trace;
    expect(checked.instants.map((i) => [checked.threads.get(i.tid), i.args?.line])).toEqual([['build', 'cache unusable'], ['stage s', 'FromAsCasing']]);
    expect(got.find((s) => s.name === '#1 [s 2/3] COPY a /a')!.args).toEqual({ id: 1, cached: true });
    expect(got.find((s) => s.name === '#2 [s 3/3] RUN false')!.args).toEqual({ id: 2, error: 'exit code: 1' });
  });

  it('plain progress lists the slowest steps that ran', () => {
    const ran = [
      { id: 3, label: '[a 2/3] RUN make', ms: 12_300 },
      { id: 4, label: '[a 3/3] COPY . .', ms: 2100 },
      { id: 5, label: 'exporting to image', ms: 20 },
      { id: 6, label: `[b 2/2] RUN ${'x'.repeat(60)}`, ms: 700 },
    ];
    expect(slowest(ran)).toBe(`#3 RUN make 12.3s, #4 COPY . . 2.1s, #6 RUN ${'x'.repeat(35)}… 0.7s`);
    expect(slowest(ran, 1)).toBe('#3 RUN make 12.3s');
    expect(slowest([])).toBe('');
  });
});
