/**
 * Build semantics real Dockerfiles rely on, through the CLI against BuildKit's and buildah's
 * behaviour: RUN --mount without a target (the mount lines of docker/cli, buildx, compose,
 * buildkit and moby), a mount `from=` an image, moby's TestBuildPreserveOwnership, Docker's
 * default PATH on a base without one, layers with device nodes (a crafted one, and a Debian base
 * made by debootstrap when it can be made here), and the plain progress output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeContext } from '../helpers/context.js';
import { makeTmp, unmountAll } from '../helpers/tmp.js';
import { CLI_EXE, REPO_ROOT, expectOneLineError, runCli, type CliResult } from '../helpers/cli.js';
import { BUSYBOX_REF, ensureBusybox } from '../helpers/base-image.js';
import { startRegistry } from '../helpers/registry.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const MOBY_DATA = join(REPO_ROOT, 'test', 'conformance', 'data', 'moby-build');

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let bRoot: string;
let bRun: string;

function sh(cmd: string, args: string[], o: { input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: o.input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * buildah, tried once more when its re-exec fails sealing its memfd copy of itself (EBUSY): a
 * transient of the peer's own start-up under load, not an answer about the Dockerfile.
 */
function buildah(args: string[]): string {
  const argv = ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, ...args];
  try {
    return sh('buildah', argv);
  } catch (e) {
    if (!/sealing memfd copy: Device or resource busy/.test(String(e))) throw e;
    return sh('buildah', argv);
  }
}

/** Copies an image of our store into buildah's (vfs) store. */
function toBuildah(ref: string): void {
  sh('skopeo', ['copy', '-q', `oci:${root}:${ref}`, `containers-storage:[vfs@${bRoot}+${bRun}]${ref}`]);
}

const cli = (args: string[], r = root): Promise<CliResult> => runCli(args, { root: r, timeoutMs: 300_000 });

async function buildOk(args: string[], r = root): Promise<CliResult> {
  const res = await cli(['build', '--progress=plain', ...args], r);
  if (res.code !== 0) throw new Error(`build failed (${res.code}):\n${res.stderr}`);
  return res;
}

async function runOut(ref: string, script: string, r = root): Promise<string> {
  const res = await cli(['run', '--rm', ref, 'sh', '-c', script], r);
  if (res.code !== 0) throw new Error(`run failed (${res.code}): ${res.stderr}`);
  return res.stdout;
}

async function configOf(ref: string, r = root): Promise<{ Env?: string[] }> {
  const res = await cli(['inspect', '-f', '{{json .Config}}', ref], r);
  if (res.code !== 0) throw new Error(res.stderr);
  return JSON.parse(res.stdout) as { Env?: string[] };
}

/** Imports the busybox rootfs with no config at all (so no PATH), plus `extra` run on the dir first. */
async function importRootfs(name: string, ref: string, extra?: (dir: string) => void, r = root): Promise<string> {
  const dir = join(tmp.dir, name);
  sh('sh', [join(REPO_ROOT, 'scripts', 'busybox-rootfs.sh'), dir]);
  extra?.(dir);
  const res = await cli(['import', dir, ref], r);
  if (res.code !== 0) throw new Error(res.stderr);
  return dir;
}

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-semantics-');
  root = join(tmp.dir, 'root');
  bRoot = join(tmp.dir, 'buildah-root');
  bRun = join(tmp.dir, 'buildah-run');
  await ensureBusybox(root);
  toBuildah(BUSYBOX_REF);
}, 120_000);

afterAll(async () => {
  spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'umount', '--all']);
  await tmp.cleanup();
});

describe('RUN --mount without a target lands at WORKDIR (BuildKit)', () => {
  it('the mount lines of docker/cli, buildx, compose, buildkit and moby build', async () => {
    const ctx = await writeContext(tmp.dir, 'mount-lines', {
      VERSION: '28.0.0\n',
      'scripts/build': '#!/bin/sh\necho built\n',
      'cmd/docker/winresources/winresources.go': 'package winresources\n',
      Dockerfile: [
        'FROM busybox AS binaries',
        'RUN echo bin > /tool && echo v0.20.0 > /tmp/.version && echo 2025-01-01 > /tmp/.commit_date',
        'FROM busybox AS delve-src',
        'WORKDIR /usr/src/delve',
        "RUN echo 'package main' > main.go",
        'FROM busybox',
        'WORKDIR /go/src/github.com/docker/cli',
        // docker/cli: the context at WORKDIR (read-only), beside a cache; a relative tmpfs target
        'RUN --mount=ro --mount=type=cache,target=/root/.cache cat VERSION > /cli-version && sh ./scripts/build > /cli-built',
        'RUN --mount=type=bind,target=.,ro --mount=type=tmpfs,target=cmd/docker/winresources test -d cmd/docker/winresources && cat VERSION > /cli-version2',
        'RUN --mount=type=bind,target=.,rw touch written-into-the-bind',
        'WORKDIR /work',
        // buildx, compose, buildkit: a stage's rootfs at WORKDIR, and one of its files at its own path
        'RUN --mount=from=binaries --mount=type=bind,from=binaries,source=/tmp/.version,target=/tmp/.version cp tool /copied-tool && cat /tmp/.version > /version',
        'RUN --mount=source=/tmp/.commit_date,target=/tmp/.commit_date,from=binaries cat /tmp/.commit_date > /commit-date',
        // moby: another stage's directory at a new WORKDIR, writable (the writes are discarded)
        // a mount below an earlier WORKDIR still to be made
        'WORKDIR /opt/first',
        'WORKDIR /opt/second',
        'RUN --mount=type=tmpfs,target=/opt/first/tmp true',
        'WORKDIR /usr/src/delve',
        'RUN --mount=from=delve-src,src=/usr/src/delve,rw cat main.go > /delve-main && echo changed > main.go',
      ].join('\n'),
    });
    await buildOk(['-t', 'mount-lines', ctx]);
    const out = await runOut('mount-lines', [
      'cat /cli-version /cli-built /cli-version2 /copied-tool /version /commit-date /delve-main',
      'for d in /go/src/github.com/docker/cli /usr/src/delve /opt/first /opt/second /work; do test -d $d && test -z "$(ls -A $d)" || echo "$d: not an empty dir"; done; echo end',
      'test -e /tmp/.version && echo leftover-mount-point; test -e /go/src/github.com/docker/cli/cmd && echo leftover-tmpfs-point; true',
    ].join('; '));
    // WORKDIRs exist (empty: the binds were mount points, their writes discarded), nothing left over.
    expect(out).toBe('28.0.0\nbuilt\n28.0.0\nbin\nv0.20.0\n2025-01-01\npackage main\nend\n');
  });

  it('refuses a mount at / (an explicit one, or none with WORKDIR /), naming the line', async () => {
    for (const [name, line] of [['root-target', 'RUN --mount=type=bind,target=/ true'], ['root-workdir', 'RUN --mount=type=cache true']] as const) {
      const ctx = await writeContext(tmp.dir, name, { Dockerfile: `FROM busybox\n${line}\n` });
      expectOneLineError(await cli(['build', '-q', ctx]), /^imgbuild: INVALID_ARGUMENT: .*Dockerfile:2:1: invalid mount target "\/"$/);
    }
  });

  it('from= names an image: one in the store, and one that must be pulled (as COPY --from)', async () => {
    const reg = await startRegistry({ mode: 'none' });
    try {
      const remote = `${reg.host}/lib/tools:1`;
      const tools = await writeContext(tmp.dir, 'tools', { Dockerfile: 'FROM busybox\nRUN mkdir -p /opt/tools && echo remote > /opt/tools/t\n' });
      await buildOk(['-t', remote, tools]);
      expect((await cli(['push', '-q', remote])).code).toBe(0);
      const fresh = join(tmp.dir, 'fresh-root');
      await ensureBusybox(fresh);
      const ctx = await writeContext(tmp.dir, 'mount-image', {
        Dockerfile: [
          'FROM busybox',
          'RUN --mount=type=bind,from=busybox,source=/bin,target=/bb test -x /bb/busybox && echo store > /from-store',
          `RUN --mount=type=bind,from=${remote},source=/opt/tools,target=/tools cat /tools/t > /from-remote`,
        ].join('\n'),
      });
      await buildOk(['-t', 'mount-image', ctx], fresh);
      expect(await runOut('mount-image', 'cat /from-store /from-remote', fresh)).toBe('store\nremote\n');
      expect((await cli(['images', '-q', remote], fresh)).stdout.trim()).not.toBe('');
    } finally {
      await reg.stop();
    }
  });
});

describe("moby's TestBuildPreserveOwnership", () => {
  for (const target of ['copy_from', 'copy_from_chowned']) {
    it(`${target}: COPY --from makes a missing directory as root (or --chown) and keeps the contents' owners; buildah agrees`, async () => {
      const ctx = join(tmp.dir, `preserve-${target}`);
      await mkdir(ctx, { recursive: true });
      sh('cp', [join(MOBY_DATA, 'Dockerfile.TestBuildPreserveOwnership'), join(ctx, 'Dockerfile')]);
      // The stage's last RUN checks every owner and fails the build on the first wrong one.
      await buildOk(['--target', target, '-t', `preserve-${target}`, ctx]);
      buildah(['build', '--isolation', 'chroot', '--pull=never', '-q', '--target', target, '-t', `preserve-${target}`, ctx]);
      const owners = await runOut(`preserve-${target}`, 'stat -c "%n %u:%g %a" /dir /dir/subdir /dir/subdir/nestedfile /existingdir /existingdir/subdir');
      const own = target === 'copy_from' ? ['0:0 755', '101:201 755', '102:202 644', '500:600 755', '101:201 755'] : ['300:400 755', '300:400 755', '300:400 644', '500:600 755', '300:400 755'];
      const names = ['/dir', '/dir/subdir', '/dir/subdir/nestedfile', '/existingdir', '/existingdir/subdir'];
      expect(owners).toBe(names.map((n, i) => `${n} ${own[i]!}\n`).join(''));
    }, 120_000);
  }
});

describe("Docker's default PATH on a base without one", () => {
  it('ENV PATH=/venv/bin:$PATH extends it, in RUN and in the config, as buildah does', async () => {
    await importRootfs('nopath-rootfs', 'nopath:1');
    expect((await configOf('nopath:1')).Env).toBeUndefined();
    const ctx = await writeContext(tmp.dir, 'nopath', {
      Dockerfile: 'FROM nopath:1\nENV FOO=bar\nENV PATH=/venv/bin:$PATH\nRUN echo "$PATH" > /path-seen\n',
    });
    await buildOk(['-t', 'nopath-built', ctx]);
    const env = (await configOf('nopath-built')).Env;
    expect(env).toEqual([`PATH=/venv/bin:${DEFAULT_PATH}`, 'FOO=bar']);
    expect(await runOut('nopath-built', 'cat /path-seen')).toBe(`/venv/bin:${DEFAULT_PATH}\n`);
    toBuildah('docker.io/library/nopath:1');
    buildah(['build', '--isolation', 'chroot', '--pull=never', '-q', '-t', 'nopath-built', ctx]);
    const theirs = JSON.parse(buildah(['inspect', 'nopath-built'])) as { OCIv1: { config: { Env?: string[] } } };
    expect(env).toEqual(theirs.OCIv1.config.Env);
  });
});

describe('layers with device nodes, fifos and sockets', () => {
  it('apply as root (inert under nodev), in run and build; a socket is left out as tar does', async () => {
    await importRootfs('crafted-rootfs', 'crafted:1', (dir) => {
      sh('mkdir', [join(dir, 'nodes')]);
      sh('mknod', [join(dir, 'nodes', 'mem'), 'c', '1', '1']);
      sh('mknod', [join(dir, 'nodes', 'zero'), 'c', '1', '5']);
      sh('mknod', [join(dir, 'nodes', 'loop9'), 'b', '7', '9']);
      sh('mknod', [join(dir, 'nodes', 'fifo'), 'p']);
      sh('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(dir, 'nodes', 'sock')]);
    });
    const list = 'for f in /nodes/*; do stat -c "%n %F %t:%T" $f; done; head -c1 /nodes/zero 2>&1 >/dev/null | sed "s/.*: //"';
    const want = [
      '/nodes/fifo fifo 0:0', '/nodes/loop9 block special file 7:9', '/nodes/mem character special file 1:1',
      '/nodes/zero character special file 1:5', 'Permission denied', '',
    ].join('\n');
    expect(await runOut('crafted:1', list)).toBe(want);
    const ctx = await writeContext(tmp.dir, 'crafted', { Dockerfile: `FROM crafted:1\nRUN (${list}) > /seen\n` });
    await buildOk(['-t', 'crafted-built', ctx]);
    expect(await runOut('crafted-built', 'cat /seen')).toBe(want);
  });

  it('load as root takes them; in a user namespace the refusal says why and what would do', async () => {
    const arc = join(tmp.dir, 'crafted.tar');
    expect((await cli(['save', '-o', arc, 'crafted:1'])).code).toBe(0);
    const asRoot = join(tmp.dir, 'load-root');
    expect((await cli(['load', '-q', '-i', arc], asRoot)).code).toBe(0);
    expect(await runOut('crafted:1', 'stat -c %F /nodes/mem', asRoot)).toBe('character special file\n');
    const r = spawnSync('unshare', ['-Ur', CLI_EXE, '--root', join(tmp.dir, 'load-userns'), 'load', '-i', arc], { encoding: 'utf8' });
    expectOneLineError({ code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr }, new RegExp(
      '^imgbuild: INVALID_ARGUMENT: layer sha256:[0-9a-f]{64} refused: refused tar entry "nodes/(loop9|mem|zero)": a device node \\((char|block) \\d+:\\d+\\), '
      + 'and no process in a user namespace may make device nodes \\(hint: run as root outside a user namespace to use an image with device nodes\\)$',
    ));
  });
});

describe('a Debian base made by debootstrap', () => {
  let rootfsTar: string | undefined;
  let why = '';
  beforeAll(async () => {
    if (spawnSync('sh', ['-c', 'command -v debootstrap']).status !== 0) {
      why = 'debootstrap is not installed (apt-get install debootstrap)';
      return;
    }
    const dir = join(tmp.dir, 'bookworm');
    const r = spawnSync('debootstrap', ['--variant=minbase', 'bookworm', dir, 'http://deb.debian.org/debian'], { encoding: 'utf8', timeout: 600_000 });
    // debootstrap mounts /proc (and more) in the target while it works, and a failed or timed-out
    // one leaves them: never archive a live /proc, never leave it for the cleanup to find.
    await unmountAll(dir);
    if (r.status !== 0) {
      why = `debootstrap could not make a bookworm rootfs (is deb.debian.org reachable?): ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-2).join(' ')}`;
      return;
    }
    rootfsTar = join(tmp.dir, 'bookworm.tar');
    sh('tar', ['-C', dir, '--numeric-owner', '-cf', rootfsTar, '.']);
  }, 660_000);

  it('imports (its /dev nodes with it) and builds: apt-get and dpkg run', async (t) => {
    if (!rootfsTar) return t.skip(why);
    expect((await cli(['import', rootfsTar, 'bookworm-minbase:1'])).code).toBe(0);
    const ctx = await writeContext(tmp.dir, 'debian', {
      Dockerfile: 'FROM bookworm-minbase:1\nRUN apt-get --version | head -1 > /apt && dpkg -l | head -5 > /dpkg\n',
    });
    await buildOk(['-t', 'debian-built', ctx]);
    expect(await runOut('debian-built', 'cat /apt')).toMatch(/^apt \d+\.\d+/);
    expect(await runOut('debian-built', 'cat /dpkg')).toMatch(/Desired=Unknown\/Install\/Remove\/Purge\/Hold/);
  }, 300_000);

  it('FROM scratch + ADD of the rootfs tarball (how Debian images are made) builds too', async (t) => {
    if (!rootfsTar) return t.skip(why);
    const ctx = join(tmp.dir, 'debian-add');
    await mkdir(ctx, { recursive: true });
    sh('cp', [rootfsTar, join(ctx, 'rootfs.tar')]);
    sh('sh', ['-c', `printf 'FROM scratch\nADD rootfs.tar /\nRUN apt-get --version | head -1 > /apt\n' > ${join(ctx, 'Dockerfile')}`]);
    await buildOk(['-t', 'debian-added', ctx]);
    expect(await runOut('debian-added', 'cat /apt')).toMatch(/^apt \d+\.\d+/);
  }, 300_000);
});

describe('plain progress', () => {
  it("lines carry their step as '#N 0.123 line', titles are expanded, the image id is printed once", async () => {
    const ctx = await writeContext(tmp.dir, 'progress', {
      Dockerfile: [
        'FROM --platform=$BUILDPLATFORM busybox AS a',
        'ARG GREETING=hello',
        'RUN echo "a: $GREETING"; sleep 0.3; echo a-done',
        'FROM --platform=$BUILDPLATFORM busybox AS b',
        'RUN sleep 0.1; echo b-line; sleep 0.3; echo b-done',
        'FROM busybox',
        'COPY --from=a /bin/sh /a',
        'COPY --from=b /bin/sh /b',
      ].join('\n'),
    });
    const r = await buildOk(['--no-cache', '-t', 'progress', ctx]);
    const id = r.stdout.trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const titles = new Map<string, string>();
    for (const m of r.stderr.matchAll(/^#(\d+) (\[.*)$/gm)) titles.set(m[1]!, m[2]!);
    const stepOf = (line: string): string | undefined => {
      const m = new RegExp(`^#(\\d+) \\d+\\.\\d{3} ${line}$`, 'm').exec(r.stderr);
      return m ? titles.get(m[1]!) : undefined;
    };
    expect(stepOf('a: hello')).toBe('[a 3/3] RUN echo "a: hello"; sleep 0.3; echo a-done');
    expect(stepOf('a-done')).toBe('[a 3/3] RUN echo "a: hello"; sleep 0.3; echo a-done');
    expect(stepOf('b-line')).toBe('[b 2/2] RUN sleep 0.1; echo b-line; sleep 0.3; echo b-done');
    expect(stepOf('b-done')).toBe('[b 2/2] RUN sleep 0.1; echo b-line; sleep 0.3; echo b-done');
    expect(titles.get('1')).toBe('[a 1/3] FROM docker.io/library/busybox:latest');
    expect(r.stderr).not.toContain('$BUILDPLATFORM');
    expect(r.stderr).toMatch(/^#(\d+) exporting to image\n#\1 naming to docker\.io\/library\/progress:latest done\n#\1 DONE \d+\.\ds\n$/m);
    // The id once, on stdout; progress does not repeat it.
    expect(r.stderr).not.toContain(id.slice(7, 19));
    expect(r.stderr).not.toMatch(/DONE sha256/);
  });

  it('the tty view puts each output line after its step', async () => {
    const ctx = join(tmp.dir, 'progress');
    const r = await cli(['build', '--no-cache', '--progress=tty', '-t', 'progress', ctx]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('[a 3/3] a: hello\n');
    expect(r.stderr).toContain('[b 2/2] b-line\n');
  });
});
