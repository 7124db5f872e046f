/**
 * `build --progress plain` says where each layer step's time went, on one line before its DONE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeContext } from '../helpers/context.js';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-times-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
});
afterAll(async () => {
  await tmp.cleanup();
});

/** The `#N times: ...` line of the step titled `title`, as phase → seconds. */
function timesOf(stderr: string, title: string): Map<string, number> | undefined {
  const id = new RegExp(`^#(\\d+) \\[[^\\]]*\\] ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm').exec(stderr)?.[1];
  if (id === undefined) throw new Error(`no step ${title} in:\n${stderr}`);
  const line = new RegExp(`^#${id} times: (.*)$`, 'm').exec(stderr)?.[1];
  if (line === undefined) return undefined;
  return new Map(line.split(', ').map((p) => {
    const m = /^([a-z]+) (\d+\.\d\d)s$/.exec(p);
    if (!m) throw new Error(`bad phase ${JSON.stringify(p)} in ${line}`);
    return [m[1]!, Number(m[2])];
  }));
}

describe('build --progress plain: step times', () => {
  it('splits a COPY into context, copy, pack and hash (no write), a RUN into sandbox and pack; a cached step has none', async () => {
    // Enough content that every phase of the COPY takes a measurable time.
    const files: Record<string, string> = { Dockerfile: 'FROM busybox\nCOPY tree /tree\nRUN cat /tree/* > /all && rm /tree/f0\n' };
    for (let i = 0; i < 400; i++) files[`tree/f${i}`] = `${i}`.repeat(20_000);
    const ctx = await writeContext(tmp.dir, 'ctx', files);
    const r = await runCli(['build', '--progress=plain', '--no-cache', '-t', 'times', ctx], { root });
    expect(r.code, r.stderr).toBe(0);
    const copy = timesOf(r.stderr, 'COPY tree /tree')!;
    expect([...copy.keys()]).toEqual(expect.arrayContaining(['context', 'copy', 'pack', 'hash']));
    // The layer is hashed, its blob not written (store/lazy.ts).
    expect(copy.has('write')).toBe(false);
    const run = timesOf(r.stderr, 'RUN cat /tree/* > /all && rm /tree/f0')!;
    expect(run.has('sandbox')).toBe(true);
    expect(run.has('copy')).toBe(false);
    const again = await runCli(['build', '--progress=plain', '-t', 'times', ctx], { root });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/CACHED/);
    expect(timesOf(again.stderr, 'COPY tree /tree')).toBeUndefined();
  });
});
