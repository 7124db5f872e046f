/**
 * The closing line of scripts/test.sh (scripts/summary.mjs), from fabricated vitest JSON reports
 * shaped like vitest 4's: a failure vitest reports as skipped tests, or as no tests at all, must
 * count, and the exit status must agree with the line.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summarize } from '../../scripts/summary.mjs';
import { makeTmp } from '../helpers/tmp.js';

type Status = 'passed' | 'failed' | 'skipped' | 'pending' | 'todo';

function file(name: string, status: 'passed' | 'failed', tests: Status[], message = '') {
  return { name: `/repo/test/${name}`, status, message, assertionResults: tests.map((s, i) => ({ title: `t${i}`, status: s, ancestorTitles: [], failureMessages: [] })) };
}

/** A report with vitest's totals computed from its files, as vitest does. */
function report(files: ReturnType<typeof file>[], extra: Record<string, unknown> = {}) {
  const all = files.flatMap((f) => f.assertionResults.map((t) => t.status));
  const n = (s: Status) => all.filter((x) => x === s).length;
  return {
    numTotalTests: all.length,
    numPassedTests: n('passed'),
    numFailedTests: n('failed'),
    numPendingTests: n('skipped') + n('pending'),
    numTodoTests: n('todo'),
    success: files.every((f) => f.status === 'passed'),
    testResults: files,
    ...extra,
  };
}

describe('summarize', () => {
  it('a clean run', () => {
    const s = summarize(report([file('a.test.ts', 'passed', ['passed', 'passed']), file('b.test.ts', 'passed', ['passed'])]), 0);
    expect(s).toEqual({ passed: 3, failed: 0, skipped: 0, line: '3 passed, 0 failed' });
  });

  it('a failing beforeAll counts, though vitest reports its tests as skipped', () => {
    const files = [file('big.test.ts', 'passed', Array<Status>(1489).fill('passed')), file('package.test.ts', 'failed', ['skipped', 'skipped'], 'ENOTCACHED')];
    const s = summarize(report(files), 1);
    expect(s.line).toBe('1489 passed, 1 failed, 2 skipped');
  });

  it('a file that failed to import (no tests reported) counts', () => {
    expect(summarize(report([file('a.test.ts', 'passed', ['passed']), file('b.test.ts', 'failed', [], 'Cannot find module')]), 1).line).toBe('1 passed, 1 failed');
  });

  it('a failing afterAll after passing tests counts', () => {
    expect(summarize(report([file('a.test.ts', 'failed', ['passed', 'passed'], 'teardown broke')]), 1).line).toBe('2 passed, 1 failed');
  });

  it('a failing describe-level hook counts in a file whose other tests pass', () => {
    expect(summarize(report([file('a.test.ts', 'failed', ['skipped', 'passed'])]), 1).line).toBe('1 passed, 1 failed, 1 skipped');
  });

  it('a file with failed tests counts them, not one more for the file', () => {
    const s = summarize(report([file('a.test.ts', 'failed', ['failed', 'failed', 'passed', 'skipped', 'todo'])]), 1);
    expect(s.line).toBe('1 passed, 2 failed, 2 skipped');
  });

  it('every kind at once', () => {
    const files = [
      file('hook.test.ts', 'failed', ['skipped', 'skipped']),
      file('describe-hook.test.ts', 'failed', ['skipped', 'passed']),
      file('after.test.ts', 'failed', ['passed']),
      file('import.test.ts', 'failed', []),
      file('mixed.test.ts', 'failed', ['failed', 'skipped', 'todo', 'passed']),
      file('fine.test.ts', 'passed', ['passed']),
    ];
    expect(summarize(report(files), 1)).toMatchObject({ passed: 4, failed: 5, skipped: 5 });
  });

  it('vitest failing with nothing counted (an unhandled error) counts one', () => {
    expect(summarize(report([file('a.test.ts', 'passed', ['passed'])]), 1).line).toBe('1 passed, 1 failed');
    expect(summarize(report([file('a.test.ts', 'passed', ['passed'])], { success: false }), 0).line).toBe('1 passed, 1 failed');
  });

  it('no report, an empty one or a killed vitest count one', () => {
    expect(summarize(undefined, 0).line).toBe('0 passed, 1 failed');
    expect(summarize({}, 1).line).toBe('0 passed, 1 failed');
    expect(summarize(report([file('a.test.ts', 'passed', ['passed'])]), null).line).toBe('1 passed, 1 failed');
  });

  it('never counts a failure twice, and never more than was reported', () => {
    const files = [file('a.test.ts', 'failed', ['failed']), file('b.test.ts', 'failed', ['failed', 'failed'])];
    expect(summarize(report(files), 1).failed).toBe(3);
  });
});

describe('scripts/summary.mjs', () => {
  const script = join(import.meta.dirname, '..', '..', 'scripts', 'summary.mjs');

  it('prints the line and exits 1 exactly when something failed', async () => {
    const tmp = await makeTmp();
    try {
      const cases: [unknown, string, string][] = [
        [report([file('a.test.ts', 'passed', ['passed', 'skipped'])]), '0', '1 passed, 0 failed, 1 skipped'],
        [report([file('a.test.ts', 'failed', ['skipped'])]), '1', '0 passed, 1 failed, 1 skipped'],
        [report([file('a.test.ts', 'passed', ['passed'])]), '1', '1 passed, 1 failed'],
      ];
      for (const [i, [r, status, line]] of cases.entries()) {
        const path = join(tmp.dir, `r${i}.json`);
        writeFileSync(path, JSON.stringify(r));
        const p = spawnSync(process.execPath, [script, path, status], { encoding: 'utf8' });
        expect(p.stdout).toBe(`${line}\n`);
        expect(p.status).toBe(line.includes(' 0 failed') ? 0 : 1);
      }
      // a missing or truncated report is a failure, whatever vitest's status
      writeFileSync(join(tmp.dir, 'cut.json'), '{"numPassedTests": 3, "testRes');
      for (const path of [join(tmp.dir, 'missing.json'), join(tmp.dir, 'cut.json')]) {
        const p = spawnSync(process.execPath, [script, path, '0'], { encoding: 'utf8' });
        expect(p.stdout).toBe('0 passed, 1 failed\n');
        expect(p.status).toBe(1);
      }
    } finally {
      await tmp.cleanup();
    }
  });
});
