/**
 * Real builds through the CLI on the local busybox base: RUN in the sandbox, overlay snapshots,
 * the step cache, multi-stage builds, secrets, exports. Privileged (root), like all of test/e2e.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, writeFile, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeContext } from '../helpers/context.js';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, REPO_ROOT } from '../helpers/cli.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { startRegistry } from '../helpers/registry.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import type { Descriptor } from '../../src/image/types.js';
import { validateImage } from '../conformance/validate-image.js';
import { openLayerTar } from '../../src/store/layers.js';
import { readTar } from '../../src/tar/reader.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-build-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
});
afterAll(async () => {
  await tmp.cleanup();
});

const context = (name: string, files: Record<string, string>): Promise<string> => writeContext(tmp.dir, name, files);

async function imgbuild(args: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { root, ...(o.env ? { env: o.env } : {}), ...(o.input !== undefined ? { input: o.input } : {}) });
}

async function buildOk(args: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ id: string; stderr: string }> {
  const r = await imgbuild(['build', '--progress=plain', ...args], o);
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return { id: r.stdout.trim(), stderr: r.stderr };
}

async function image(ref: string): Promise<{ store: OciStore; desc: Descriptor; config: import('../../src/image/types.js').ImageConfig }> {
  const store = await OciStore.open(root);
  const img = await findImage(store, ref);
  await validateImage(store, img.descriptor);
  return { store, desc: img.descriptor, config: img.config };
}

/** Every layer's entries: name → content (files) or type marker. */
async function layerEntries(store: OciStore, desc: Descriptor): Promise<Map<string, string>[]> {
  const manifest = JSON.parse((await store.read(desc)).toString('utf8')) as { layers: Descriptor[] };
  const out: Map<string, string>[] = [];
  for (const l of manifest.layers) {
    const m = new Map<string, string>();
    for await (const e of readTar(await openLayerTar(store, l))) {
      const chunks: Buffer[] = [];
      if (e.body) for await (const c of e.body) chunks.push(c as Buffer);
      m.set(e.header.name.replace(/\/$/, ''), e.header.type === 'file' ? Buffer.concat(chunks).toString('utf8') : `<${e.header.type}>`);
    }
    out.push(m);
  }
  return out;
}

async function runImage(ref: string, cmd: string[] = []): Promise<string> {
  const r = await imgbuild(['run', '--rm', ref, ...cmd]);
  if (r.code !== 0) throw new Error(`run failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

describe('imgbuild build (e2e)', () => {
  it('builds the demo image, which then runs', async () => {
    const { id, stderr } = await buildOk(['-t', 'demo', join(REPO_ROOT, 'fixtures', 'demo')]);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(stderr).toMatch(/#\d+ \[stage-0 \d+\/\d+\] RUN chmod/);
    const { config } = await image('demo');
    expect(config.config?.Cmd).toEqual(['/app/hello.sh']);
    const out = await runImage('demo');
    expect(out).toContain('Hello from imgbuild');
    expect(out).toContain('version 1.0');
  });

  it('applies every instruction to the config', async () => {
    const ctx = await context('config', {
      Dockerfile: [
        'FROM busybox',
        'ARG PORT=80',
        'ARG UNUSED',
        'ENV APP=/srv/app NAME="a b"',
        'ENV DERIVED=${APP}/bin',
        'LABEL com.example.a=1 "com.example.b"="two words"',
        'WORKDIR $APP',
        'WORKDIR sub',
        'USER 1000:1000',
        'EXPOSE $PORT 53/udp 8000-8001',
        'VOLUME ["/data", "/logs"]',
        'STOPSIGNAL SIGQUIT',
        'HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1',
        'SHELL ["/bin/sh", "-ec"]',
        'CMD echo hi',
        'ENTRYPOINT ["/bin/sh"]',
        'ONBUILD RUN echo triggered > /tmp/onbuild.txt',
        'MAINTAINER someone',
      ].join('\n'),
    });
    await buildOk(['-t', 'cfg', ctx]);
    const { config, store, desc } = await image('cfg');
    const c = config.config!;
    expect(c.Env).toEqual(expect.arrayContaining(['APP=/srv/app', 'NAME=a b', 'DERIVED=/srv/app/bin']));
    expect(c.Env!.some((e) => e.startsWith('PORT='))).toBe(false);
    expect(c.Labels).toMatchObject({ 'com.example.a': '1', 'com.example.b': 'two words' });
    expect(c.WorkingDir).toBe('/srv/app/sub');
    expect(c.User).toBe('1000:1000');
    expect(Object.keys(c.ExposedPorts!).sort()).toEqual(['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
    expect(Object.keys(c.Volumes!).sort()).toEqual(['/data', '/logs']);
    expect(c.StopSignal).toBe('SIGQUIT');
    expect(c.Healthcheck).toMatchObject({ Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 5_000_000_000, Retries: 3 });
    expect(c.Shell).toEqual(['/bin/sh', '-ec']);
    // ENTRYPOINT after CMD in the same stage keeps CMD; CMD shell form used SHELL.
    expect(c.Cmd).toEqual(['/bin/sh', '-ec', 'echo hi']);
    expect(c.Entrypoint).toEqual(['/bin/sh']);
    expect(c.OnBuild).toEqual(['RUN echo triggered > /tmp/onbuild.txt']);
    expect(config.author).toBe('someone');
    const hist = config.history!.slice(1);
    expect(hist.every((h) => h.empty_layer === true || h.created_by?.startsWith('WORKDIR'))).toBe(true);
    // The trailing WORKDIR created its directory.
    const layers = await layerEntries(store, desc);
    expect(layers[layers.length - 1]!.has('srv/app/sub')).toBe(true);

    // A child image: ENTRYPOINT resets the inherited CMD; the ONBUILD trigger runs after FROM.
    const child = await context('child', { Dockerfile: 'FROM cfg\nENTRYPOINT ["/bin/true"]\n' });
    await buildOk(['-t', 'cfg-child', child]);
    const ch = await image('cfg-child');
    expect(ch.config.config?.Cmd ?? null).toBeNull();
    expect(ch.config.config?.OnBuild ?? null).toBeNull();
    const chLayers = await layerEntries(ch.store, ch.desc);
    expect(chLayers[chLayers.length - 1]!.get('tmp/onbuild.txt')).toBe('triggered\n');
  });

  it('runs RUN with the stage env, user and workdir, shows its output, and uses build args', async () => {
    const ctx = await context('run', {
      Dockerfile: [
        'FROM busybox',
        'ARG GREETING=hello',
        'ENV TARGET=world',
        "RUN echo 'app:x:1500:1500::/w:/bin/sh' >> /etc/passwd && echo 'app:x:1500:' >> /etc/group && mkdir /w && chown app /w",
        'WORKDIR /w',
        'USER app',
        'RUN echo "$GREETING $TARGET from $(id -u):$(id -g) in $(pwd) on $(hostname)" | tee out.txt',
        'RUN ["/bin/sh", "-c", "echo exec-form > exec.txt"]',
        'USER root',
        // The default network has the host's nameservers (no loopback ones: see test/e2e/build-network.test.ts).
        'RUN cat /etc/hosts > /hosts-seen && grep -q nameserver /etc/resolv.conf',
      ].join('\n'),
    });
    const { stderr } = await buildOk(['-t', 'runner', '--build-arg', 'GREETING=hi', ctx]);
    // BuildKit's sandbox hostname.
    expect(stderr).toMatch(/#\d+ \d+\.\d{3} hi world from 1500:1500 in \/w on buildkitsandbox/);
    const { store, desc, config } = await image('runner');
    const layers = await layerEntries(store, desc);
    const all = new Map(layers.flatMap((m) => [...m]));
    expect(all.get('w/out.txt')).toBe('hi world from 1500:1500 in /w on buildkitsandbox\n');
    expect(all.get('w/exec.txt')).toBe('exec-form\n');
    expect(all.get('hosts-seen')).toContain('localhost');
    // /etc/hosts etc. are bind-mounted from outside and never land in a layer.
    for (const l of layers.slice(1)) for (const n of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) expect(l.has(n)).toBe(false);
    expect(config.history!.some((h) => h.created_by?.includes('|1 GREETING=hi'))).toBe(true);

    // A failing RUN fails the build with its exit code and location.
    const bad = await context('run-bad', { Dockerfile: 'FROM busybox\nRUN echo boom >&2 && exit 3\n' });
    const r = await imgbuild(['build', '--progress=plain', bad]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('boom');
    expect(r.stderr).toMatch(/2:1.*exit code: 3/);
  });

  it('builds only the stages the target needs, copying between stages', async () => {
    const ctx = await context('multi', {
      Dockerfile: [
        'FROM busybox AS base',
        'RUN echo base > /base.txt',
        'FROM base AS builder',
        'RUN mkdir /out && echo built > /out/artifact && chown 33:44 /out/artifact',
        'FROM busybox AS never',
        'RUN echo SHOULD-NOT-RUN && exit 1',
        'FROM busybox AS final',
        'COPY --from=builder /out/ /opt/',
        'COPY --from=0 /base.txt /base-copy.txt',
        'FROM final AS other',
        'RUN echo other',
      ].join('\n'),
    });
    const { stderr } = await buildOk(['--target', 'final', '-t', 'multi', ctx]);
    expect(stderr).not.toContain('SHOULD-NOT-RUN');
    expect(stderr).not.toContain('echo other');
    const { store, desc } = await image('multi');
    const layers = await layerEntries(store, desc);
    const all = new Map(layers.flatMap((m) => [...m]));
    expect(all.get('opt/artifact')).toBe('built\n');
    expect(all.get('base-copy.txt')).toBe('base\n');
    expect(all.has('base.txt')).toBe(false);
    const out = await runImage('multi', ['stat', '-c', '%u:%g', '/opt/artifact']);
    expect(out.trim()).toBe('33:44');
  });

  it('reuses the cache on rebuild and invalidates from a changed file', async () => {
    const ctx = await context('cache', {
      Dockerfile: 'FROM busybox\nRUN echo step1 > /s1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /s3\n',
      'a.txt': 'v1\n',
    });
    const first = await buildOk(['-t', 'cached', ctx]);
    const second = await buildOk(['-t', 'cached', ctx]);
    expect(second.id).toBe(first.id);
    expect(second.stderr.match(/CACHED/g)?.length).toBe(3);
    await writeFile(join(ctx, 'a.txt'), 'v2\n');
    const third = await buildOk(['-t', 'cached', ctx]);
    expect(third.stderr.match(/CACHED/g)?.length).toBe(1);
    expect(third.id).not.toBe(first.id);
    expect((await runImage('cached', ['cat', '/s3'])).trim()).toBe('v2');
    const nocache = await buildOk(['--no-cache', '-t', 'cached', ctx]);
    expect(nocache.stderr).not.toContain('CACHED');
  });

  it('gives the same digest twice with SOURCE_DATE_EPOCH', async () => {
    const ctx = await context('repro', {
      Dockerfile: 'FROM busybox\nRUN mkdir /d && echo fixed > /d/f && touch /d/g\nCOPY x /x\nLABEL a=b\n',
      x: 'x\n',
    });
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const a = await buildOk(['--no-cache', '-t', 'repro:a', ctx], { env });
    const b = await buildOk(['--no-cache', '-t', 'repro:b', ctx], { env });
    expect(b.id).toBe(a.id);
    const { config } = await image('repro:a');
    expect(config.created).toBe('2023-11-14T22:13:20Z');
    const ra = await image('repro:a');
    const rb = await image('repro:b');
    expect(rb.desc.digest).toBe(ra.desc.digest);
  });

  it('keeps secrets out of layers and cache keys; cache, bind and tmpfs mounts work', async () => {
    const secretFile = join(tmp.dir, 'token');
    await writeFile(secretFile, 'SUPERSECRET-1\n');
    const ctx = await context('secret', {
      Dockerfile: [
        'FROM busybox',
        'RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /secret-len && grep -q SECRET- /run/secrets/tok',
        'RUN --mount=type=secret,id=tok,env=TOK test -n "$TOK" && echo ok > /env-ok',
        'RUN --mount=type=cache,target=/cache echo x >> /cache/log && wc -l < /cache/log > /cache-count',
        'RUN --mount=type=bind,source=data,target=/mnt/d cat /mnt/d/in > /from-bind',
        'RUN --mount=type=tmpfs,target=/t echo t > /t/x && ls /t > /tmpfs-ls',
      ].join('\n'),
      'data/in': 'bound\n',
    });
    const first = await buildOk(['-t', 'sec', '--secret', `id=tok,src=${secretFile}`, ctx]);
    const { store, desc } = await image('sec');
    const layers = await layerEntries(store, desc);
    const all = new Map(layers.flatMap((m) => [...m]));
    expect(all.get('secret-len')?.trim()).toBe('14');
    expect(all.get('env-ok')).toBe('ok\n');
    expect(all.get('cache-count')?.trim()).toBe('1');
    expect(all.get('from-bind')).toBe('bound\n');
    expect(all.get('tmpfs-ls')).toBe('x\n');
    for (const l of layers.slice(1)) {
      expect(l.has('run/secrets/tok')).toBe(false);
      expect(l.has('cache/log')).toBe(false);
      expect(l.has('t/x')).toBe(false);
    }
    // The secret's bytes appear in no layer (packed from its snapshot: a build writes no layer
    // blob, store/lazy.ts), no blob and no cache file.
    for (const m of layers) for (const v of m.values()) expect(v.includes('SUPERSECRET')).toBe(false);
    const needle = Buffer.from('SUPERSECRET');
    for (const dir of [join(root, 'blobs', 'sha256'), join(root, 'cache', 'build', 'steps')]) {
      for (const f of await readdir(dir)) expect((await readFile(join(dir, f))).includes(needle)).toBe(false);
    }
    // A changed secret does not invalidate the cache.
    await writeFile(secretFile, 'SUPERSECRET-2-longer\n');
    const second = await buildOk(['-t', 'sec', '--secret', `id=tok,src=${secretFile}`, ctx]);
    expect(second.id).toBe(first.id);
    // A required secret that is missing fails the build.
    const r = await imgbuild(['build', '--no-cache', ctx]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('tok');
  });

  it('isolates RUN from the network with --network none, unless RUN --network=host (allowed)', async () => {
    // Asserted on the namespaces themselves, not on the host's interface list, which other test
    // files change while this runs (bridges and veths of network tests).
    const ctx = await context('net', {
      Dockerfile: [
        'FROM busybox',
        'RUN ls /sys/class/net | sort > /isolated-ifaces && readlink /proc/self/ns/net > /isolated-ns',
        'RUN --network=host readlink /proc/self/ns/net > /host-ns',
      ].join('\n'),
    });
    await buildOk(['-t', 'net', '--network', 'none', '--allow', 'network.host', ctx]);
    const { store, desc } = await image('net');
    const all = new Map((await layerEntries(store, desc)).flatMap((m) => [...m]));
    const hostNs = `${await readlink('/proc/self/ns/net')}\n`;
    expect(all.get('isolated-ifaces')).toBe('lo\n');
    expect(all.get('isolated-ns')).toMatch(/^net:\[\d+\]\n$/);
    expect(all.get('isolated-ns')).not.toBe(hostNs);
    expect(all.get('host-ns')).toBe(hostNs);
  });

  it('runs independent stages concurrently', async () => {
    const ctx = await context('parallel', {
      Dockerfile: [
        'FROM busybox AS a',
        "RUN cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end",
        'FROM busybox AS b',
        "RUN cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end",
        'FROM busybox',
        'COPY --from=a /start /a-start',
        'COPY --from=a /end /a-end',
        'COPY --from=b /start /b-start',
        'COPY --from=b /end /b-end',
      ].join('\n'),
    });
    await buildOk(['-t', 'parallel', ctx]);
    const { store, desc } = await image('parallel');
    const all = new Map((await layerEntries(store, desc)).flatMap((m) => [...m]));
    const n = (k: string): number => Number(all.get(k)!.trim());
    // The two sleeps overlap: each stage started before the other finished.
    expect(n('a-start') < n('b-end') && n('b-start') < n('a-end')).toBe(true);
  });

  it('pulls a missing base image from a registry (and again with --pull)', async () => {
    const reg = await startRegistry();
    try {
      const r1 = spawnSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${root}:${BUSYBOX_REF}`, `docker://${reg.host}/lib/busybox:1`], { encoding: 'utf8' });
      expect(r1.status, r1.stderr).toBe(0);
      const other = join(tmp.dir, 'root-pull');
      const ctx = await context('pull', { Dockerfile: `FROM ${reg.host}/lib/busybox:1\nRUN echo pulled > /p\n` });
      const run = (extra: string[]) => runCli(['build', '--progress=plain', ...extra, '-t', 'pulled', ctx], { root: other });
      const a = await run([]);
      expect(a.code, a.stderr).toBe(0);
      expect(a.stderr).toMatch(/pull 127\.0\.0\.1/);
      const b = await run([]);
      expect(b.stderr).not.toMatch(/pull 127/);
      const c = await run(['--pull']);
      expect(c.code, c.stderr).toBe(0);
      expect(c.stderr).toMatch(/pull 127\.0\.0\.1/);
      const store = await OciStore.open(other);
      await validateImage(store, (await findImage(store, 'pulled')).descriptor);
    } finally {
      await reg.stop();
    }
  });

  it('serialises steps sharing a cache mount with sharing=locked', async () => {
    const step = "RUN --mount=type=cache,id=shared-log,target=/c,sharing=locked echo start >> /c/log && sleep 1 && echo end >> /c/log && cp /c/log /seen";
    const ctx = await context('locked', {
      Dockerfile: ['FROM busybox AS a', step, 'FROM busybox AS b', step, 'FROM busybox', 'COPY --from=a /seen /a', 'COPY --from=b /seen /b'].join('\n'),
    });
    await buildOk(['-t', 'locked', ctx]);
    const { store, desc } = await image('locked');
    const all = new Map((await layerEntries(store, desc)).flatMap((m) => [...m]));
    const logs = [all.get('a')!, all.get('b')!].sort((x, y) => x.length - y.length);
    expect(logs).toEqual(['start\nend\n', 'start\nend\nstart\nend\n']);
  });

  it('writes --iidfile and --output type=oci, compresses on request, and reads a Dockerfile from stdin', async () => {
    const ctx = await context('out', { Dockerfile: 'FROM busybox\nRUN echo out > /out.txt\n' });
    const iid = join(tmp.dir, 'iid');
    const layout = join(tmp.dir, 'layout');
    const { id } = await buildOk(['--iidfile', iid, '--output', `type=oci,dest=${layout}`, '--compression', 'gzip', '-t', 'outimg', ctx]);
    expect((await readFile(iid, 'utf8')).trim()).toBe(id);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    expect(index.manifests).toHaveLength(1);
    const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: Descriptor[] };
    expect(manifest.layers.every((l) => l.mediaType.endsWith('+gzip'))).toBe(true);
    for (const l of manifest.layers) expect((await stat(join(layout, 'blobs', 'sha256', l.digest.slice(7)))).size).toBe(l.size);
    await image('outimg');

    // Tarballs: docker-archive (docker save format) and an OCI layout tar, both readable by skopeo.
    const dockerTar = join(tmp.dir, 'img-docker.tar');
    const ociTar = join(tmp.dir, 'img-oci.tar');
    await buildOk(['--output', `type=docker,dest=${dockerTar}`, '-t', 'outimg', ctx]);
    await buildOk(['--output', `type=oci,dest=${ociTar}`, '-t', 'outimg', ctx]);
    for (const src of [`docker-archive:${dockerTar}`, `oci-archive:${ociTar}`]) {
      const r2 = spawnSync('skopeo', ['inspect', '--raw', src], { encoding: 'utf8' });
      expect(r2.status, r2.stderr).toBe(0);
      expect((JSON.parse(r2.stdout) as { layers: unknown[] }).layers.length).toBe(2);
    }

    const r = await imgbuild(['build', '--progress=plain', '-t', 'stdin-img', '-'], { input: 'FROM busybox\nRUN echo from-stdin > /s\n' });
    expect(r.code).toBe(0);
    const s = await image('stdin-img');
    const all = new Map((await layerEntries(s.store, s.desc)).flatMap((m) => [...m]));
    expect(all.get('s')).toBe('from-stdin\n');
  });
});
