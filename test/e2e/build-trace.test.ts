/**
 * `build --trace FILE`: the build's timeline as Chrome trace events. A multi-stage build (two
 * stages that run at once, COPY and RUN) writes a file that follows the Trace Event Format's
 * rules (test/helpers/trace.ts: fields, units, thread names, nesting per thread), with each
 * step on its stage's track, its phases inside it and the steps inside the build; a rebuild
 * marks its cache hits; a failed, an interrupted and a pushed build write theirs too.
 * `--progress plain` ends with the slowest steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeContext } from '../helpers/context.js';
import { makeTmp } from '../helpers/tmp.js';
import { CLI_EXE, expectOneLineError, runCli } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { checkTrace, within, type CheckedTrace, type Slice } from '../helpers/trace.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-trace-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
});
afterAll(async () => {
  await tmp.cleanup();
});

/** The trace at `path`, which must be valid; with its slices by name. */
async function readTrace(path: string): Promise<CheckedTrace & { slice: (name: RegExp) => Slice }> {
  const { problems, trace } = checkTrace(JSON.parse(await readFile(path, 'utf8')));
  expect(problems).toEqual([]);
  return {
    ...trace,
    slice: (re) => {
      const s = trace.slices.find((x) => re.test(x.name));
      if (!s) throw new Error(`no slice ${re} in ${trace.slices.map((x) => x.name).join(', ')}`);
      return s;
    },
  };
}

/** The phases shown in `step`: the slices of its thread within it. */
function phasesOf(t: CheckedTrace, step: Slice): Slice[] {
  return t.slices.filter((s) => s !== step && s.tid === step.tid && s.cat !== 'step' && within(s, step));
}

const DOCKERFILE = [
  'FROM busybox AS a',
  'COPY src /src',
  'RUN cat /src/* > /all && sleep 0.3',
  '',
  'FROM busybox AS b',
  'RUN echo b > /b',
  '',
  'FROM busybox',
  'COPY --from=a /all /all',
  'COPY --from=b /b /b',
  'RUN ls /all /b',
  '',
].join('\n');

describe('build --trace', () => {
  it('writes a valid trace: steps on their stages\' tracks, phases inside their step, steps inside the build; a rebuild marks its cache hits', async () => {
    const files: Record<string, string> = { Dockerfile: DOCKERFILE };
    for (let i = 0; i < 50; i++) files[`src/f${i}`] = `${i}`.repeat(5000);
    const ctx = await writeContext(tmp.dir, 'multi', files);
    const file = join(tmp.dir, 'multi.json');
    const r = await runCli(['build', '--progress=plain', '--trace', file, '-t', 'traced', ctx], { root });
    expect(r.code, r.stderr).toBe(0);
    const t = await readTrace(file);
    const build = t.slice(/^imgbuild build$/);
    expect(t.threads.get(build.tid)).toBe('build');
    expect(build.args).toMatchObject({ image: r.stdout.trim(), tags: ['traced'] });
    for (const s of t.slices) expect(within(s, build), s.name).toBe(true);

    const steps = t.slices.filter((s) => s.cat === 'step');
    expect(steps.map((s) => s.name.replace(/^#\d+ /, '')).sort()).toEqual([
      '[a 1/3] FROM docker.io/library/busybox:latest', '[a 2/3] COPY src /src', '[a 3/3] RUN cat /src/* > /all && sleep 0.3',
      '[b 1/2] FROM docker.io/library/busybox:latest', '[b 2/2] RUN echo b > /b',
      '[stage-2 1/4] FROM docker.io/library/busybox:latest', '[stage-2 2/4] COPY --from=a /all /all', '[stage-2 3/4] COPY --from=b /b /b', '[stage-2 4/4] RUN ls /all /b',
    ].sort());
    // Each stage is a track of its own (a and b run at once).
    for (const s of steps) expect(t.threads.get(s.tid)).toBe(`stage ${/\[(\S+) /.exec(s.name)![1]}`);
    expect(new Set(steps.map((s) => s.tid)).size).toBe(3);
    // The step numbers are the plain progress's.
    for (const s of steps) expect(r.stderr).toContain(`${s.name}\n`);

    // Every phase lies inside a step (or a task) of its thread.
    for (const p of t.slices.filter((s) => s.cat === 'phase' || s.cat === 'group')) {
      if (p.tid === build.tid) continue;
      expect(steps.some((s) => s.tid === p.tid && within(p, s)), p.name).toBe(true);
    }
    const copy = t.slice(/COPY src \/src$/);
    const copyPhases = phasesOf(t, copy).map((p) => p.name);
    expect(copyPhases).toEqual(expect.arrayContaining(['context', 'snapshot', 'copy', 'diff', 'pack', 'hash', 'sync']));
    // The totals too (with --write-layers the write time, which has no span, is among them).
    expect(Object.keys(copy.args?.phases_ms as object)).toEqual(expect.arrayContaining(['context', 'copy', 'pack', 'hash', 'sync']));
    const diff = phasesOf(t, copy).find((p) => p.name === 'diff')!;
    for (const p of phasesOf(t, copy).filter((p) => p.name === 'pack' || p.name === 'hash')) expect(within(p, diff), p.name).toBe(true);

    // A RUN: its network and the sandbox's set-up, then the command (which holds the sleep).
    const run = t.slice(/RUN cat /);
    expect(phasesOf(t, run).map((p) => p.name)).toEqual(expect.arrayContaining(['snapshot', 'isolation', 'network', 'sandbox', 'command', 'diff']));
    const sandbox = phasesOf(t, run).find((p) => p.name === 'sandbox')!;
    const command = phasesOf(t, run).find((p) => p.name === 'command')!;
    expect(command.ts).toBeGreaterThanOrEqual(sandbox.ts + sandbox.dur);
    expect(command.dur).toBeGreaterThanOrEqual(300_000);
    expect(command.dur).toBeLessThanOrEqual(run.dur);
    expect(r.stderr).toMatch(/^#\d+ times: .*sandbox \d+\.\d\ds, command \d+\.\d\ds/m);

    // The build's own phases: reading the inputs and the context, then the export.
    expect(t.slices.filter((s) => s.tid === build.tid).map((s) => s.name)).toEqual(expect.arrayContaining(['inputs', 'context', expect.stringMatching(/exporting to image$/)]));

    // The slowest steps that ran, at the end of the plain progress.
    const slowest = /\nslowest steps: (.*)\n/.exec(r.stderr)?.[1];
    expect(slowest).toMatch(/#\d+ RUN cat \/src\/\* > \/all && sleep 0\.3 \d+\.\ds/);
    expect(slowest!.split(', ').length).toBeLessThanOrEqual(5);

    const again = join(tmp.dir, 'again.json');
    const r2 = await runCli(['build', '--progress=plain', '--trace', again, '-t', 'traced', ctx], { root });
    expect(r2.code, r2.stderr).toBe(0);
    const t2 = await readTrace(again);
    const steps2 = t2.slices.filter((s) => s.cat === 'step' && !/FROM/.test(s.name));
    expect(steps2).toHaveLength(6);
    for (const s of steps2) expect(s.args, s.name).toMatchObject({ cached: true });
    // A cached COPY still walked and hashed its sources: that is its time.
    expect(phasesOf(t2, t2.slice(/COPY src \/src$/)).map((p) => p.name)).toEqual(['context']);
    expect(r2.stderr).not.toMatch(/slowest steps: .*(COPY|RUN)/);
  });

  it('shows each layer\'s compression for --compression inside the compressing task', async () => {
    const ctx = await writeContext(tmp.dir, 'gz', { Dockerfile: 'FROM busybox\nRUN echo gz > /gz\n' });
    const file = join(tmp.dir, 'gz.json');
    const r = await runCli(['build', '-q', '--no-cache', '--compression', 'gzip', '--trace', file, ctx], { root });
    expect(r.code, r.stderr).toBe(0);
    const t = await readTrace(file);
    const compress = t.slices.filter((s) => s.name === 'compress');
    expect(compress).toHaveLength(2);
    const task = t.slice(/compressing 2 layers \(gzip\)$/);
    for (const c of compress) {
      expect(t.threads.get(c.tid)).toMatch(/^build( \(\d+\))?$/);
      expect(within(c, task)).toBe(true);
    }
  });

  it('writes the trace of a failed build, then the one-line error', async () => {
    const ctx = await writeContext(tmp.dir, 'fails', { Dockerfile: 'FROM busybox\nRUN echo one > /one\nRUN exit 3\n' });
    const file = join(tmp.dir, 'fails.json');
    const r = await runCli(['build', '-q', '--no-cache', '--trace', file, ctx], { root });
    expectOneLineError(r, /^imgbuild: [A-Z_]+: .*exit code: 3/);
    const t = await readTrace(file);
    const failed = t.slice(/RUN exit 3$/);
    expect(failed.args?.error).toMatch(/exit code: 3/);
    expect(phasesOf(t, failed).map((p) => p.name)).toEqual(expect.arrayContaining(['sandbox', 'command']));
    expect(t.slice(/RUN echo one/).args?.error).toBeUndefined();
    expect(t.slice(/^imgbuild build$/).args?.error).toMatch(/exit code: 3/);

    // Failing before any step (a Dockerfile that does not parse): the build's span and its error.
    const bad = await writeContext(tmp.dir, 'unparsed', { Dockerfile: 'FROM busybox\nRUNN x\n' });
    const r2 = await runCli(['build', '-q', '--trace', file, bad], { root });
    expectOneLineError(r2, /unknown instruction: RUNN/);
    const t2 = await readTrace(file);
    expect(t2.slices.filter((s) => s.cat === 'step')).toEqual([]);
    expect(t2.slice(/^imgbuild build$/).args?.error).toMatch(/unknown instruction: RUNN/);

    // A trace that could not be written is said before the build.
    const r3 = await runCli(['build', '-q', '--trace', join(tmp.dir, 'missing', 'x.json'), bad], { root });
    expectOneLineError(r3, /^imgbuild: INVALID_ARGUMENT: --trace .*missing\/x\.json: no directory .*missing to write it in$/);
  });

  it('writes the trace of a build interrupted by SIGINT in a RUN', async () => {
    const ctx = await writeContext(tmp.dir, 'interrupted', { Dockerfile: 'FROM busybox\nRUN echo started && sleep 60\n' });
    const file = join(tmp.dir, 'interrupted.json');
    const child = spawn(CLI_EXE, ['--root', root, 'build', '--progress=plain', '--no-cache', '--trace', file, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const started = new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/#\d+ \d+\.\d+ started/.test(err)) resolve();
      });
    });
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await started;
    child.kill('SIGINT');
    expect(await done).not.toBe(0);
    expect(err.trim().split('\n').at(-1)).toMatch(/^imgbuild: ABORTED: /);
    const t = await readTrace(file);
    const run = t.slice(/RUN echo started && sleep 60$/);
    expect(run.args?.error ?? run.args?.unfinished).toBeTruthy();
    expect(phasesOf(t, run).map((p) => p.name)).toContain('command');
    expect(t.slice(/^imgbuild build$/).args?.error).toMatch(/aborted/);
    // The moment of the signal, inside the interrupted step.
    const mark = t.instants.find((i) => i.name === 'interrupted')!;
    expect(mark.args?.reason).toMatch(/SIGINT/);
    expect(mark.ts).toBeGreaterThanOrEqual(run.ts);
    expect(mark.ts).toBeLessThanOrEqual(run.ts + run.dur);
  }, 60_000);
});

describe('build --trace --push', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'none' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('shows each tag\'s push: the layers compressed and the blobs uploaded, in the build', async () => {
    const ctx = await writeContext(tmp.dir, 'pushed', { Dockerfile: 'FROM busybox\nRUN echo pushed > /p\n' });
    const file = join(tmp.dir, 'pushed.json');
    const ref = `${reg.host}/trace/x:1`;
    const r = await runCli(['build', '--progress=quiet', '--push', '--trace', file, '-t', ref, ctx], { root });
    expect(r.code, r.stderr).toBe(0);
    const t = await readTrace(file);
    const push = t.slice(new RegExp(`^push ${ref.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`));
    expect(t.threads.get(push.tid)).toBe(`push ${ref}`);
    expect(within(push, t.slice(/^imgbuild build$/))).toBe(true);
    const uploads = t.slices.filter((s) => /^upload (layer|config) /.test(s.name));
    // Two layers (busybox's and the RUN's) and the config.
    expect(uploads.length).toBe(3);
    for (const u of uploads) {
      expect(within(u, push), u.name).toBe(true);
      expect(['uploaded', 'exists', 'mounted']).toContain(u.args?.result);
    }
    expect(t.slices.filter((s) => /^compress /.test(s.name)).length).toBe(2);
  });
});
