/**
 * Issue outcome "a missing image, a corrupt blob (flip a byte in blobs/), a malformed reference or
 * a store from a newer version each give a one-line error naming the problem, and exit non-zero",
 * checked across the commands that read images (run, build, history, tag, rmi, save), not only
 * images/inspect.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import type { Manifest } from '../../src/image/types.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let ctx: string;

beforeEach(async () => {
  tmp = await makeTmp('imgbuild-cli-errors-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  ctx = join(tmp.dir, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN true\n');
});
afterEach(async () => {
  await tmp.cleanup();
});

const cli = (args: string[]) => runCli(args, { root });
const out = () => join(tmp.dir, 'out.tar');

/** Flips one byte in the middle of the busybox layer blob; returns its digest. */
async function corruptLayer(): Promise<string> {
  const store = await OciStore.open(root);
  try {
    const desc = (await store.resolve(BUSYBOX_REF))!;
    const manifest = JSON.parse((await store.read(desc)).toString('utf8')) as Manifest;
    const layer = manifest.layers[0]!;
    const p = join(root, 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
    const b = await readFile(p);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0xff;
    await writeFile(p, b);
    return layer.digest;
  } finally {
    await store.release();
  }
}

describe('one-line errors', () => {
  it('a missing image, for every command that reads one', async () => {
    for (const args of [['run', '--rm', '--pull', 'never', 'nosuch:1', 'true'], ['history', 'nosuch:1'], ['tag', 'nosuch:1', 'x:1'], ['rmi', 'nosuch:1'], ['save', '-o', out(), 'nosuch:1']]) {
      const r = await cli(args);
      expectOneLineError(r, /nosuch:1/);
      expect(r.stderr, args.join(' ')).toMatch(/NOT_FOUND|not found/i);
    }
    // save left no partial archive
    expect(await readdir(tmp.dir)).not.toContain('out.tar');
  });

  it('a malformed reference', async () => {
    for (const args of [['run', '--rm', 'UPPER/Case::x', 'true'], ['history', 'a:b:c'], ['tag', 'busybox', 'bad ref'], ['rmi', 'x//y:'], ['build', '-q', '-t', 'Bad:Name', ctx]]) {
      const r = await cli(args);
      expectOneLineError(r, /reference|INVALID/i);
    }
  });

  it('a store from a newer version', async () => {
    await writeFile(join(root, 'imgbuild.json'), JSON.stringify({ version: 99 }));
    for (const args of [['run', '--rm', 'busybox', 'true'], ['build', '-q', ctx], ['history', 'busybox'], ['tag', 'busybox', 'x:1'], ['rmi', 'busybox'], ['prune']]) {
      expectOneLineError(await cli(args), /format version 99/);
    }
  });

  it('a corrupt layer blob: run and build name the blob', async () => {
    const digest = await corruptLayer();
    const hex = digest.slice('sha256:'.length, 'sha256:'.length + 12);
    const run = await cli(['run', '--rm', 'busybox', 'true']);
    expectOneLineError(run, new RegExp(hex));
    expect(run.code).toBe(125);
    const build = await cli(['build', '-q', ctx]);
    expectOneLineError(build, new RegExp(hex));
    // Nothing was unpacked from the bad blob: a later run still fails the same way.
    expectOneLineError(await cli(['run', '--rm', 'busybox', 'true']), new RegExp(hex));
  });
});

describe('one line with a code, for usage, limits and system errors', () => {
  it('build: a missing or wrong context or Dockerfile is named, with NOT_FOUND or INVALID_ARGUMENT', async () => {
    const file = join(tmp.dir, 'a-file');
    await writeFile(file, 'x');
    const missing = await cli(['build', '-q', join(tmp.dir, 'nosuch')]);
    expectOneLineError(missing, /^imgbuild: NOT_FOUND: build context "[^"]*nosuch" not found$/);
    expect(missing.code).toBe(1);
    expectOneLineError(await cli(['build', '-q', file]), /^imgbuild: INVALID_ARGUMENT: build context "[^"]*a-file" is not a directory$/);
    expectOneLineError(await cli(['build', '-q', '-f', join(tmp.dir, 'nosuch', 'Dockerfile'), ctx]), /^imgbuild: NOT_FOUND: Dockerfile "[^"]*nosuch\/Dockerfile" not found$/);
    expectOneLineError(await cli(['build', '-q', '-f', ctx, ctx]), /^imgbuild: INVALID_ARGUMENT: Dockerfile "[^"]*" is a directory$/);
    const wd = join(tmp.dir, 'wd');
    await mkdir(wd);
    await writeFile(join(wd, 'Dockerfile'), 'FROM busybox\nWORKDIR /etc/passwd/x\nRUN true\n');
    // Named inside the image, without Node's errno prefix or the host path of the build's mount.
    expectOneLineError(await cli(['build', '-q', wd]), /^imgbuild: FAILED_PRECONDITION: \S*Dockerfile:\d+:1: WORKDIR \/etc\/passwd\/x: a part of it is not a directory in the image$/);
    // Node's recursive mkdir spins forever under /proc (mkdir gives ENOENT beside an existing parent).
    const iid = await runCli(['build', '-q', '--iidfile', '/proc/nosuch-imgbuild/id', ctx], { root, timeoutMs: 30_000 });
    expectOneLineError(iid, /^imgbuild: NOT_FOUND: mkdir \/proc\/nosuch-imgbuild: no such file or directory$/);
    const epoch = await runCli(['build', '-q', ctx], { root, env: { SOURCE_DATE_EPOCH: '99999999999999999999' } });
    expectOneLineError(epoch, /^imgbuild: INVALID_ARGUMENT: SOURCE_DATE_EPOCH "99999999999999999999" is after the year 9999$/);
    // A build that could not start made no store.
    const fresh = join(tmp.dir, 'fresh-root');
    expectOneLineError(await runCli(['build', '-q', join(tmp.dir, 'nosuch')], { root: fresh }), /NOT_FOUND/);
    expect(await readdir(tmp.dir)).not.toContain('fresh-root');
  });

  it('usage errors are one line in Docker\'s words naming the help to read, and exit 125 for every command', async () => {
    const run = await cli(['run', '--rm', '--bogus', 'busybox', 'true']);
    expectOneLineError(run, /^imgbuild: INVALID_ARGUMENT: unknown flag: --bogus\. See 'imgbuild run --help'\.$/);
    expect(run.code).toBe(125);
    const exec = await cli(['exec']);
    expectOneLineError(exec, /^imgbuild: INVALID_ARGUMENT: 'imgbuild exec' requires at least 2 arguments\. See 'imgbuild exec --help'\.$/);
    expect(exec.code).toBe(125);
    const images = await cli(['images', '--bogus']);
    expectOneLineError(images, /^imgbuild: INVALID_ARGUMENT: unknown flag: --bogus\. See 'imgbuild images --help'\.$/);
    expect(images.code).toBe(125);
    const rm = await cli(['rm', '--x']);
    expectOneLineError(rm, /^imgbuild: INVALID_ARGUMENT: unknown flag: --x\. See 'imgbuild rm --help'\.$/);
    expect(rm.code).toBe(125);
    const ps = await cli(['ps', 'extra']);
    expectOneLineError(ps, /^imgbuild: INVALID_ARGUMENT: 'imgbuild ps' accepts no arguments\. See 'imgbuild ps --help'\.$/);
    expect(ps.code).toBe(125);
    const name = await cli(['run', '--name']);
    expectOneLineError(name, /^imgbuild: INVALID_ARGUMENT: flag needs an argument: --name\. See 'imgbuild run --help'\.$/);
    expect(name.code).toBe(125);
    const unknown = await cli(['rn', 'busybox']);
    expectOneLineError(unknown, /^imgbuild: INVALID_ARGUMENT: unknown command: imgbuild rn \(did you mean one of rm, run\?\)\. See 'imgbuild --help'\.$/);
    expect(unknown.code).toBe(125);
    // In a group, the help named is the subcommand's.
    const grouped = await cli(['container', 'rm', '--x']);
    expectOneLineError(grouped, /^imgbuild: INVALID_ARGUMENT: unknown flag: --x\. See 'imgbuild container rm --help'\.$/);
    expect(grouped.code).toBe(125);
    const sub = await cli(['image', 'nosuch']);
    expectOneLineError(sub, /^imgbuild: INVALID_ARGUMENT: unknown command: imgbuild image nosuch\. See 'imgbuild image --help'\.$/);
    expect(sub.code).toBe(125);
  });

  it('run: limits are checked before anything is made, one line naming flag and value, status 125', async () => {
    for (const [args, re] of [
      [['-m', '99999999999999999999g'], /^imgbuild: INVALID_ARGUMENT: invalid --memory "99999999999999999999g": larger than the largest limit, 8 PiB$/],
      [['--memory', '4m'], /^imgbuild: INVALID_ARGUMENT: invalid --memory "4m": Minimum memory limit allowed is 6MB$/],
      [['--memory', '1e9'], /^imgbuild: INVALID_ARGUMENT: invalid --memory "1e9": expected a size/],
      [['--cpus', '1e400'], /^imgbuild: INVALID_ARGUMENT: invalid --cpus "1e400": expected a decimal/],
      [['--cpus', '0.001'], /^imgbuild: INVALID_ARGUMENT: invalid --cpus "0.001": range of CPUs is from 0\.01 to \d+\.00/],
      [['--cpus', '100000'], /^imgbuild: INVALID_ARGUMENT: invalid --cpus "100000": range of CPUs/],
      [['--pids-limit', '1.5'], /^imgbuild: INVALID_ARGUMENT: invalid --pids-limit "1.5"/],
      [['--pids-limit', '99999999999999999999'], /^imgbuild: INVALID_ARGUMENT: invalid --pids-limit "99999999999999999999": the kernel allows at most 4194304$/],
      [['--ulimit', 'nofile=99999999999999999999'], /^imgbuild: INVALID_ARGUMENT: invalid --ulimit "nofile=99999999999999999999"/],
      [['--ulimit', 'nofile=2048:1024'], /^imgbuild: INVALID_ARGUMENT: invalid --ulimit "nofile=2048:1024": soft limit above hard limit \(2048 > 1024\)$/],
    ] as const) {
      const r = await cli(['run', '--rm', ...args, 'busybox', 'true']);
      expectOneLineError(r, re);
      expect(r.code, args.join(' ')).toBe(125);
    }
    // Nothing was made for them: no container is left.
    expect((await cli(['ps', '-aq'])).stdout).toBe('');
    // Valid limits still run, exactly as given.
    const ok = await cli(['run', '--rm', '-m', '6291456', '--cpus', '0.5', '--pids-limit', '-1', '--ulimit', 'nofile=100:200', 'busybox', 'sh', '-c', 'ulimit -n; ulimit -Hn']);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('100\n200\n');
  });

  it('system errors carry their code and no doubled errno prefix; several operands fail a line each', async () => {
    const envFile = await cli(['run', '--rm', '--env-file', join(tmp.dir, 'nosuch.env'), 'busybox', 'true']);
    expectOneLineError(envFile, /^imgbuild: INVALID_ARGUMENT: --env-file: open \S*nosuch\.env: no such file or directory$/);
    expect(envFile.code).toBe(125);
    const save = await cli(['save', '-o', join(tmp.dir, 'nodir', 'x.tar'), 'busybox']);
    expectOneLineError(save, /^imgbuild: NOT_FOUND: invalid output path: directory "\S*nodir" does not exist$/);
    const load = await cli(['load', '-i', join(tmp.dir, 'nosuch.tar')]);
    expectOneLineError(load, /^imgbuild: NOT_FOUND: open \S*nosuch\.tar: no such file or directory$/);
    // Paths the user names under /proc: Node's recursive mkdir would spin there forever.
    const vol = await runCli(['run', '--rm', '-v', '/proc/nosuch-imgbuild/v:/v', 'busybox', 'true'], { root, timeoutMs: 30_000 });
    expectOneLineError(vol, /^imgbuild: NOT_FOUND: mkdir \/proc\/nosuch-imgbuild: no such file or directory$/);
    const procRoot = await runCli(['images'], { root: '/proc/nosuch-imgbuild/root', timeoutMs: 30_000 });
    expectOneLineError(procRoot, /^imgbuild: NOT_FOUND: mkdir \/proc\/nosuch-imgbuild: no such file or directory$/);
    expectOneLineError(await cli(['kill', '-s', 'BOGUS', 'nosuch-a']), /^imgbuild: INVALID_ARGUMENT: invalid signal: BOGUS$/);
    for (const cmd of [['rm'], ['stop'], ['kill'], ['rmi']]) {
      const r = await cli([...cmd, 'nosuch-a', 'nosuch-b']);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, cmd[0]).toHaveLength(2);
      expect(lines[0]).toMatch(/^imgbuild: NOT_FOUND: .*nosuch-a$/);
      expect(lines[1]).toMatch(/^imgbuild: NOT_FOUND: .*nosuch-b$/);
    }
  });
});
