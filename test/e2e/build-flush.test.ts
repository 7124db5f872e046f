/**
 * The flush before a step's snapshot is committed (builder/dispatch/layer-step.ts,
 * snapshots/sync.ts): a step written into its upper dir without a mount makes one syncfs of it
 * (`sync -f`), started beside the layer's hashing and waited for before the commit; so does a RUN,
 * whose overlay the sandbox mounted `volatile` (its umount flushed nothing). A `sync` first on
 * PATH records its calls here, and one that fails stands for a file system that cannot be
 * flushed: the build fails with one line and leaves neither the step's snapshot nor a cache
 * record behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { tmpBusyboxStore } from '../helpers/base-image.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let root: string;
let ctx: string;
let bin: string;

beforeAll(async () => {
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-flush-'));
  ctx = join(tmp.dir, 'ctx');
  bin = join(tmp.dir, 'bin');
  await mkdir(ctx);
  await mkdir(bin);
  await writeFile(join(ctx, 'a'), 'a\n');
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a /a\nRUN echo x > /x\n');
});
afterAll(async () => {
  await tmp.cleanup();
});

async function fakeSync(script: string): Promise<NodeJS.ProcessEnv> {
  await writeFile(join(bin, 'sync'), `#!/bin/sh\n${script}\n`);
  await chmod(join(bin, 'sync'), 0o755);
  return { PATH: `${bin}:${process.env.PATH ?? ''}` };
}

/** The overlay snapshotter's snapshot keys, and the step cache's records. */
async function storeState(): Promise<{ keys: string[]; steps: number }> {
  const meta = JSON.parse((await readFile(join(root, 'overlay', 'metadata.json'), 'utf8')).replace(/^[^{]*/, '')) as { snapshots: Record<string, unknown> };
  const steps = await readdir(join(root, 'cache', 'build', 'steps')).catch(() => []);
  return { keys: Object.keys(meta.snapshots).sort(), steps: steps.length };
}

describe('flush before commit', () => {
  it('a COPY written into its upper dir and a RUN on a volatile overlay each make one syncfs of their upper dir', async () => {
    const log = join(tmp.dir, 'sync.log');
    const env = await fakeSync(`echo "$*" >> ${log}\nexec /bin/sync "$@"`);
    const r = await runCli(['build', '--no-cache', '-q', ctx], { root, env });
    expect(r.code, r.stderr).toBe(0);
    const calls = (await readFile(log, 'utf8')).trim().split('\n');
    expect(calls).toHaveLength(2);
    for (const c of calls) expect(c).toMatch(new RegExp(`^-f ${root}/overlay/snapshots/\\d+/fs$`));
    expect(calls[1]).not.toBe(calls[0]);
  });

  it('a flush that fails fails the build with one line and keeps nothing of the step', async () => {
    const before = await storeState();
    const env = await fakeSync('echo "sync: error syncing $2: Input/output error" >&2\nexit 1');
    const r = await runCli(['build', '--no-cache', '-q', ctx], { root, env });
    expectOneLineError(r, /cannot flush the file system of \S+\/fs: sync -f exited 1: sync: error syncing \S+: Input\/output error$/);
    // A build that fails exits 1, as docker build does.
    expect(r.code).toBe(1);
    const after = await storeState();
    expect(after).toEqual(before);
    expect(after.keys.filter((k) => k.startsWith('build-'))).toEqual([]);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).includes(root)).toBe(false);
  });
});
