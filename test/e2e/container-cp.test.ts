/**
 * `cp` on real containers (busybox), running and stopped: Docker's path rules (moby's
 * integration-cli/docker_cli_cp_to_container_test.go and _from_container_test.go cases), `-`, `-a`,
 * `-L`, and confinement: symlinks inside the container resolve inside it, a hostile tar on stdin is
 * refused, a container swapping a directory for a symlink while cp runs cannot redirect a write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setupEnv, waitFor, type Env } from './containers-env.js';
import { CLI_EXE, REPO_ROOT, expectOneLineError, runCli } from '../helpers/cli.js';
import { TarBuilder } from '../helpers/tar.js';

let env: Env;
let host: string;
const tag = randomBytes(4).toString('hex');

/** Runs the CLI with binary stdout (a tar). */
function cliBuffer(root: string, args: string[]): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(CLI_EXE, ['--root', root, ...args], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr.toString() };
}

const sh = async (ctr: string, script: string): Promise<string> => {
  const r = await env.cli(['exec', ctr, 'sh', '-c', script]);
  expect(r.stderr).toBe('');
  return r.stdout;
};

/** Nothing imgbuild mounted for cp is left on the host. */
function tempMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => /imgbuild-(rootfs|export)-/.test(l));
}

beforeAll(async () => {
  env = await setupEnv();
  host = join(env.dir, 'host');
  mkdirSync(join(host, 'dir', 'sub'), { recursive: true });
  writeFileSync(join(host, 'file.txt'), 'from the host\n');
  writeFileSync(join(host, 'dir', 'a'), 'a\n');
  writeFileSync(join(host, 'dir', 'sub', 'b'), 'b\n');
  chownSync(join(host, 'file.txt'), 1234, 5678);
  expect((await env.cli(['run', '-d', '--name', 'live', 'busybox', 'sleep', '300'])).code).toBe(0);
});
afterAll(async () => {
  await env?.cli(['rm', '-f', 'live', 'stopped', 'stopped-links', 'racer', 'ro']);
  await env?.cleanup();
});

describe('cp into a running container', () => {
  it('copies a file into a directory under its own name, owned by root unless -a', async () => {
    expect((await env.cli(['cp', join(host, 'file.txt'), 'live:/tmp'])).code).toBe(0);
    expect(await sh('live', 'cat /tmp/file.txt; stat -c %u:%g /tmp/file.txt')).toBe('from the host\n0:0\n');
    expect((await env.cli(['cp', '-a', join(host, 'file.txt'), 'live:/tmp/kept.txt'])).code).toBe(0);
    expect(await sh('live', 'stat -c %u:%g /tmp/kept.txt')).toBe('1234:5678\n');
  });

  it('copies a host symlink as a link, or what it points to with -L', async () => {
    symlinkSync(join(host, 'file.txt'), join(host, 'link'));
    expect((await env.cli(['cp', join(host, 'link'), 'live:/tmp/aslink'])).code).toBe(0);
    expect(await sh('live', 'readlink /tmp/aslink')).toBe(`${join(host, 'file.txt')}\n`);
    expect((await env.cli(['cp', '-L', join(host, 'link'), 'live:/tmp/followed'])).code).toBe(0);
    expect(await sh('live', 'cat /tmp/followed; test -L /tmp/followed || echo regular')).toBe('from the host\nregular\n');
  });

  it('follows Docker\'s rules for directories, trailing / and /.', async () => {
    // DEST missing: the directory is copied as DEST.
    expect((await env.cli(['cp', join(host, 'dir'), 'live:/tmp/newdir'])).code).toBe(0);
    expect(await sh('live', 'cd /tmp/newdir && find . | sort')).toBe('.\n./a\n./sub\n./sub/b\n');
    // DEST an existing directory: copied inside it.
    expect((await env.cli(['cp', join(host, 'dir'), 'live:/tmp/newdir'])).code).toBe(0);
    expect(await sh('live', 'test -f /tmp/newdir/dir/sub/b && echo ok')).toBe('ok\n');
    // SRC/. : the contents.
    await sh('live', 'mkdir /tmp/contents');
    expect((await env.cli(['cp', `${join(host, 'dir')}/.`, 'live:/tmp/contents'])).code).toBe(0);
    expect(await sh('live', 'cd /tmp/contents && find . | sort')).toBe('.\n./a\n./sub\n./sub/b\n');
    // A file onto an existing file replaces it.
    expect((await env.cli(['cp', join(host, 'file.txt'), 'live:/tmp/newdir/a'])).code).toBe(0);
    expect(await sh('live', 'cat /tmp/newdir/a')).toBe('from the host\n');
  });

  it('fails as Docker does, in one line', async () => {
    expectOneLineError(await env.cli(['cp', join(host, 'dir'), 'live:/etc/passwd']), /cannot copy directory/);
    expectOneLineError(await env.cli(['cp', join(host, 'file.txt'), 'live:/nonexistent/']), /no such directory/);
    expectOneLineError(await env.cli(['cp', join(host, 'file.txt'), 'live:/no/such/parent']), /Could not find the file \/no\/such in container live/);
    // Docker 20.10's words for each case (checked against its daemon).
    expectOneLineError(await env.cli(['cp', join(host, 'file.txt'), 'live:/etc/passwd/']), /no such directory/);
    expectOneLineError(await env.cli(['cp', `${join(host, 'file.txt')}/`, 'live:/tmp']), /not a directory/);
    expectOneLineError(await env.cli(['cp', join(host, 'missing'), 'live:/tmp']), /no such file or directory/);
    expectOneLineError(await env.cli(['cp', join(host, 'file.txt'), 'nosuchctr:/tmp']), /no such container/);
    // A directory inside the archive does not replace a file of the container (NoOverwriteDirNonDir).
    await sh('live', 'mkdir -p /tmp/clash && echo x > /tmp/clash/sub');
    expectOneLineError(await env.cli(['cp', `${join(host, 'dir')}/.`, 'live:/tmp/clash']), /cannot overwrite non-directory "\/tmp\/clash\/sub" with directory/);
  });

  it('extracts a tar from stdin into a directory, and refuses one that climbs out of it', async () => {
    const tar = await new TarBuilder().dir('in').file('in/x', 'x\n', { uid: 7, gid: 8 }).buffer();
    expect((await runCli(['cp', '-', 'live:/tmp'], { root: env.root, input: tar })).code).toBe(0);
    expect(await sh('live', 'cat /tmp/in/x; stat -c %u:%g /tmp/in/x')).toBe('x\n0:0\n');
    expect((await runCli(['cp', '-a', '-', 'live:/tmp/contents'], { root: env.root, input: tar })).code).toBe(0);
    expect(await sh('live', 'stat -c %u:%g /tmp/contents/in/x')).toBe('7:8\n');
    expectOneLineError(await runCli(['cp', '-', 'live:/etc/passwd'], { root: env.root, input: tar }), /destination "live:\/etc\/passwd" must be a directory/);
    const climb = await new TarBuilder().file(`../escaped-${tag}`, 'no\n').buffer();
    expectOneLineError(await runCli(['cp', '-', 'live:/tmp'], { root: env.root, input: climb }), /leads outside the root/);
    expect(await sh('live', `ls /escaped-${tag} 2>/dev/null; echo end`)).toBe('end\n');
    const link = await new TarBuilder().hardlink('l', '../../../../etc/shadow').buffer();
    expectOneLineError(await runCli(['cp', '-', 'live:/tmp'], { root: env.root, input: link }), /outside the root/);
    // An absolute symlink in the archive, then a file through it: lands in the container's root.
    const abs = await new TarBuilder().symlink('rootlink', '/').file(`rootlink/through-${tag}`, 'in\n').buffer();
    expect((await runCli(['cp', '-', 'live:/tmp'], { root: env.root, input: abs })).code).toBe(0);
    expect(await sh('live', `cat /through-${tag}`)).toBe('in\n');
    expect(existsSync(`/through-${tag}`)).toBe(false);
  });

  it('resolves symlinked destinations inside the container', async () => {
    await sh('live', 'ln -s / /tmp/toroot && ln -s ../../../../../../.. /tmp/up && ln -s /tmp/hostonly-' + tag + ' /tmp/abs');
    mkdirSync(`/tmp/hostonly-${tag}`);
    try {
      expect((await env.cli(['cp', join(host, 'file.txt'), `live:/tmp/toroot/via-root-${tag}`])).code).toBe(0);
      expect((await env.cli(['cp', join(host, 'file.txt'), `live:/tmp/up/via-up-${tag}`])).code).toBe(0);
      expect(await sh('live', `cat /via-root-${tag} /via-up-${tag}`)).toBe('from the host\nfrom the host\n');
      expect(existsSync(`/via-root-${tag}`) || existsSync(`/via-up-${tag}`)).toBe(false);
      // A link to a path that exists on the host only: the container has no such directory.
      expectOneLineError(await env.cli(['cp', join(host, 'file.txt'), 'live:/tmp/abs/']), /no such/);
      expect(readdirSync(`/tmp/hostonly-${tag}`)).toEqual([]);
    } finally {
      rmSync(`/tmp/hostonly-${tag}`, { recursive: true, force: true });
    }
  });

  it('cannot be redirected by a container swapping a directory for a symlink meanwhile', async () => {
    expect((await env.cli(['run', '-d', '--name', 'racer', 'busybox', 'sh', '-c',
      'mkdir -p /r; while :; do mkdir -p /r/d; rmdir /r/d 2>/dev/null || rm -rf /r/d; ln -s / /r/d; rm /r/d; done'])).code).toBe(0);
    for (let i = 0; i < 15; i++) await env.cli(['cp', join(host, 'file.txt'), `racer:/r/d/race-${tag}-${i}`]);
    const leaked = readdirSync('/').filter((n) => n.startsWith(`race-${tag}`));
    expect(leaked).toEqual([]);
    // What makes it so: the container is frozen from the first resolution to the last write.
    const id = (await env.cli(['inspect', '-f', '{{.Id}}', 'racer'])).stdout.trim();
    const state = (): string => readFileSync(`/sys/fs/cgroup/freezer/imgbuild/${id}/freezer.state`, 'utf8').trim();
    const child = spawn(CLI_EXE, ['--root', env.root, 'cp', '-', 'racer:/tmp'], { cwd: REPO_ROOT, stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<number | null>((res) => child.on('exit', res));
    await waitFor(() => state() === 'FROZEN' || undefined, 20_000);
    child.stdin.end(await new TarBuilder().file('late', 'x').buffer());
    expect(await exited).toBe(0);
    expect(state()).toBe('THAWED');
    expect((await env.cli(['rm', '-f', 'racer'])).code).toBe(0);
  });
});

describe('cp out of a container', () => {
  it('copies a file, a directory and its contents to the host by Docker\'s rules', async () => {
    await sh('live', 'mkdir -p /srv/out/sub && echo one > /srv/out/one && echo two > /srv/out/sub/two && ln -s /etc/hostname /srv/hn');
    const dest = join(env.dir, 'from');
    mkdirSync(dest);
    expect((await env.cli(['cp', 'live:/srv/out/one', dest])).code).toBe(0);
    expect(readFileSync(join(dest, 'one'), 'utf8')).toBe('one\n');
    expect((await env.cli(['cp', 'live:/srv/out', join(dest, 'copy')])).code).toBe(0);
    expect(readFileSync(join(dest, 'copy', 'sub', 'two'), 'utf8')).toBe('two\n');
    expect((await env.cli(['cp', 'live:/srv/out/.', dest])).code).toBe(0);
    expect(readFileSync(join(dest, 'sub', 'two'), 'utf8')).toBe('two\n');
    expectOneLineError(await env.cli(['cp', 'live:/srv/out', join(dest, 'one')]), /cannot copy directory/);
    expectOneLineError(await env.cli(['cp', 'live:/srv/nope', dest]), /Could not find the file \/srv\/nope in container live/);
    expectOneLineError(await env.cli(['cp', 'live:/srv/out/one', join(dest, 'no', 'such')]), /invalid output path: directory ".*\/no" does not exist/);
    expectOneLineError(await env.cli(['cp', 'live:/srv/out/one', `${join(dest, 'one')}/`]), /stat .*\/one\/: not a directory/);
    expectOneLineError(await env.cli(['cp', 'live:/srv/out/one/', dest]), /not a directory/);
  });

  it('copies a symlink as a link, and its target (inside the container) with -L', async () => {
    const dest = join(env.dir, 'links');
    mkdirSync(dest);
    expect((await env.cli(['cp', 'live:/srv/hn', join(dest, 'plain')])).code).toBe(0);
    expect(spawnSync('readlink', [join(dest, 'plain')]).stdout.toString()).toBe('/etc/hostname\n');
    expect((await env.cli(['cp', '-L', 'live:/srv/hn', join(dest, 'followed')])).code).toBe(0);
    // The container's hostname file, not the host's.
    const inside = await sh('live', 'cat /etc/hostname');
    expect(readFileSync(join(dest, 'followed'), 'utf8')).toBe(inside);
    expect(inside).not.toBe(readFileSync('/etc/hostname', 'utf8'));
  });

  it('writes a tar to stdout with - (names from the source\'s base name), without /proc or /sys', async () => {
    const r = cliBuffer(env.root, ['cp', 'live:/srv/out', '-']);
    expect(r.code).toBe(0);
    const list = spawnSync('tar', ['-tf', '-'], { input: r.stdout }).stdout.toString().split('\n').filter(Boolean).sort();
    expect(list).toEqual(['out/', 'out/one', 'out/sub/', 'out/sub/two']);
    const all = cliBuffer(env.root, ['cp', 'live:/', '-']);
    expect(all.code).toBe(0);
    const names = spawnSync('tar', ['-tf', '-'], { input: all.stdout, maxBuffer: 64 * 1024 * 1024 }).stdout.toString().split('\n');
    expect(names).toContain('./bin/busybox');
    // The kernel's filesystems are archived as their (empty) mount points, as in Docker's archive.
    expect(names).toEqual(expect.arrayContaining(['./proc/', './sys/', './dev/']));
    expect(names.filter((n) => /^\.\/(proc|sys|dev)\/./.test(n))).toEqual([]);
  });
});

describe('cp and the container\'s own mounts', () => {
  it('reads through a symlink to / inside the container, not the host', async () => {
    const dest = join(env.dir, 'through');
    expect((await env.cli(['cp', 'live:/tmp/toroot/etc/hostname', dest])).code).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe(await sh('live', 'cat /etc/hostname'));
  });

  it('writes into a running container\'s tmpfs, and refuses a read-only rootfs in Docker\'s words', async () => {
    expect((await env.cli(['run', '-d', '--name', 'ro', '--read-only', '--tmpfs', '/scratch', 'busybox', 'sleep', '300'])).code).toBe(0);
    expect((await env.cli(['cp', join(host, 'file.txt'), 'ro:/scratch/'])).code).toBe(0);
    expect(await sh('ro', 'cat /scratch/file.txt; grep " /scratch " /proc/mounts | cut -d" " -f3')).toBe('from the host\ntmpfs\n');
    expectOneLineError(await env.cli(['cp', join(host, 'file.txt'), 'ro:/etc/']), /container ro rootfs is marked read-only/);
    expect((await env.cli(['rm', '-f', 'ro'])).code).toBe(0);
  });
});

describe('cp with a stopped container', () => {
  it('copies both ways through a temporary mount that is gone afterwards', async () => {
    expect((await env.cli(['run', '--name', 'stopped', 'busybox', 'sh', '-c', 'echo made > /made'])).code).toBe(0);
    const dest = join(env.dir, 'stopped-out');
    expect((await env.cli(['cp', 'stopped:/made', dest])).code).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe('made\n');
    expect((await env.cli(['cp', join(host, 'dir'), 'stopped:/copied'])).code).toBe(0);
    // Its symlinks resolve inside its own root on the temporary mount as well.
    expect((await env.cli(['run', '--name', 'stopped-links', 'busybox', 'ln', '-s', '/', '/esc'])).code).toBe(0);
    expect((await env.cli(['cp', join(host, 'file.txt'), `stopped-links:/esc/stopped-${tag}`])).code).toBe(0);
    expect(existsSync(`/stopped-${tag}`)).toBe(false);
    expect((await env.cli(['diff', 'stopped-links'])).stdout).toContain(`A /stopped-${tag}\n`);
    expect(tempMounts()).toEqual([]);
    const diff = await env.cli(['diff', 'stopped']);
    expect(diff.stdout).toContain('A /copied/sub/b\n');
    expect(tempMounts()).toEqual([]);
  });

  it('undoes the temporary mount of a cp that was killed, at the next cp', async () => {
    const cp = spawn(CLI_EXE, ['--root', env.root, 'cp', '-', 'stopped-links:/'], { cwd: REPO_ROOT, stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    const gone = new Promise((res) => cp.on('exit', res));
    await waitFor(() => (tempMounts().length > 0 ? true : undefined), 20_000);
    // The whole process group: the CLI's node process is a child of its shell script.
    process.kill(-cp.pid!, 'SIGKILL');
    await gone;
    expect(tempMounts().length).toBeGreaterThan(0);
    expect((await env.cli(['cp', join(host, 'file.txt'), 'stopped-links:/after-kill'])).code).toBe(0);
    expect(tempMounts()).toEqual([]);
  });

  it('holds off a start until the copy is done, so the writable layer is never mounted twice', async () => {
    const cp = spawn(CLI_EXE, ['--root', env.root, 'cp', '-', 'stopped:/'], { cwd: REPO_ROOT, stdio: ['pipe', 'ignore', 'pipe'] });
    const order: string[] = [];
    const cpDone = new Promise<number | null>((res) => cp.on('exit', (c) => (order.push('cp'), res(c))));
    await waitFor(() => (tempMounts().length > 0 ? true : undefined), 20_000);
    const start = spawn(CLI_EXE, ['--root', env.root, 'start', 'stopped'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    const startDone = new Promise<number | null>((res) => start.on('exit', (c) => (order.push('start'), res(c))));
    await new Promise((r) => setTimeout(r, 1500));
    cp.stdin.end(await new TarBuilder().file('before-start', 'b\n').buffer());
    expect(await cpDone).toBe(0);
    expect(await startDone).toBe(0);
    expect(order).toEqual(['cp', 'start']);
    expect((await env.cli(['diff', 'stopped'])).stdout).toContain('A /before-start\n');
    expect(tempMounts()).toEqual([]);
  });
});
