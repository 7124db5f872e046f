/** Container lifecycle through the CLI: ps, logs, stop, kill, rm, commit, inspect (privileged). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setupEnv, waitFor, type Env } from './containers-env.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { openLayerTar } from '../../src/store/layers.js';
import tar from 'tar-stream';
import { pruneContainers } from '../../src/containers/list.js';
import { okOut } from '../helpers/cli.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

async function layerNames(root: string, image: string): Promise<string[]> {
  const store = await OciStore.open(root);
  try {
    const img = await findImage(store, image);
    const top = img.manifest.layers[img.manifest.layers.length - 1]!;
    const ex = tar.extract();
    const names: string[] = [];
    ex.on('entry', (h, s, next) => {
      names.push(h.name);
      s.resume();
      s.on('end', next);
    });
    const done = new Promise<void>((r, j) => {
      ex.on('finish', () => r());
      ex.on('error', j);
    });
    (await openLayerTar(store, top)).pipe(ex);
    await done;
    return names;
  } finally {
    await store.release();
  }
}

describe('lifecycle', () => {
  it('lists containers with ps, ps -a and ps -q; names are unique', async () => {
    const id = (await env.cli(['run', '-d', '--name', 'lister', 'busybox', 'sleep', '300'])).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ps = await env.cli(['ps']);
    expect(ps.stdout).toMatch(/CONTAINER ID\s+IMAGE\s+COMMAND/);
    expect(ps.stdout).toMatch(new RegExp(`${id.slice(0, 12)}\\s+busybox\\s+"sleep 300"`));
    expect(ps.stdout).toMatch(/Up /);
    expect((await env.cli(['ps', '-q'])).stdout).toBe(`${id.slice(0, 12)}\n`);
    const dup = await env.cli(['run', '-d', '--name', 'lister', 'busybox', 'true']);
    expect(dup.code).toBe(125);
    expect(dup.stderr).toMatch(/already in use/);
    expect((await env.cli(['rm', 'lister'])).code).not.toBe(0); // running: needs -f
    expect((await env.cli(['rm', '-f', 'lister'])).code).toBe(0);
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');
  });

  it('logs a detached container and follows it until it exits', async () => {
    await env.cli(['run', '-d', '--name', 'talker', 'busybox', 'sh', '-c', 'echo one; echo two >&2; sleep 1; echo three']);
    const f = await env.cli(['logs', '-f', 'talker']);
    expect(f.stdout).toBe('one\ntwo\nthree\n');
    expect((await env.cli(['logs', '--tail', '1', 'talker'])).stdout).toBe('three\n');
    const ps = await env.cli(['ps', '-a']);
    expect(ps.stdout).toMatch(/Exited \(0\)/);
    await env.cli(['rm', 'talker']);
    // A foreground run is logged too (unless --rm).
    const fg = await env.cli(['run', '--name', 'fg', 'busybox', 'sh', '-c', 'echo a; echo b >&2']);
    expect(fg.stdout).toBe('a\n');
    expect((await env.cli(['logs', 'fg'])).stdout).toBe('a\nb\n');
    await env.cli(['rm', 'fg']);
  });

  it('stop sends the STOPSIGNAL (default SIGTERM) and SIGKILLs after -t', async () => {
    await env.cli(['run', '-d', '--name', 'polite', 'busybox', 'sh', '-c', 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done']);
    await waitFor(async () => (await env.cli(['exec', 'polite', 'true'])).code === 0 || undefined);
    expect((await env.cli(['stop', 'polite'])).stdout).toBe('polite\n');
    expect((await env.cli(['logs', 'polite'])).stdout).toBe('got-term\n');
    const insp = JSON.parse(okOut(await env.cli(['inspect', 'polite']))) as { State: { ExitCode: number; Status: string } }[];
    expect(insp[0]!.State).toMatchObject({ Status: 'exited', ExitCode: 0 });

    await env.cli(['run', '-d', '--name', 'stubborn', 'busybox', 'sleep', '300']);
    const t0 = Date.now();
    await env.cli(['stop', '-t', '1', 'stubborn']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const s = JSON.parse(okOut(await env.cli(['inspect', 'stubborn']))) as { State: { ExitCode: number } }[];
    expect(s[0]!.State.ExitCode).toBe(137);
    await env.cli(['rm', 'polite', 'stubborn']);
  });

  it('uses the image STOPSIGNAL', async () => {
    await env.cli(['run', '--name', 'base', 'busybox', 'true']);
    expect((await env.cli(['commit', '-c', 'STOPSIGNAL SIGUSR1', 'base', 'usr1:latest'])).code).toBe(0);
    await env.cli(['run', '-d', '--name', 'usr1', 'usr1', 'sh', '-c', 'trap "echo got-usr1; exit 0" USR1; while true; do sleep 0.1; done']);
    await waitFor(async () => (await env.cli(['exec', 'usr1', 'true'])).code === 0 || undefined);
    await env.cli(['stop', '-t', '5', 'usr1']);
    expect((await env.cli(['logs', 'usr1'])).stdout).toBe('got-usr1\n');
    await env.cli(['rm', 'base', 'usr1']);
  });

  it('kill sends a signal; the default SIGKILL ends the container', async () => {
    await env.cli(['run', '-d', '--name', 'victim', 'busybox', 'sh', '-c', 'trap "echo hup" HUP; while true; do sleep 0.1; done']);
    await waitFor(async () => (await env.cli(['exec', 'victim', 'true'])).code === 0 || undefined);
    expect((await env.cli(['kill', '-s', 'HUP', 'victim'])).code).toBe(0);
    await waitFor(async () => (await env.cli(['logs', 'victim'])).stdout.includes('hup') || undefined);
    expect((await env.cli(['kill', 'victim'])).code).toBe(0);
    await waitFor(async () => (await env.cli(['ps', '-a'])).stdout.includes('Exited (137)') || undefined);
    expect((await env.cli(['kill', 'victim'])).stderr).toMatch(/not running/);
    expect((await env.cli(['kill', '-s', 'NOPE', 'victim'])).code).not.toBe(0);
    await env.cli(['rm', 'victim']);
  });

  it('inspect shows state, config, mounts and the namespaces of a running container', async () => {
    const host = join(env.dir, 'insp');
    await mkdir(host);
    const id = (await env.cli(['run', '-d', '--name', 'looked', '-v', `${host}:/v:ro`, '-e', 'K=V', 'busybox', 'sleep', '300'])).stdout.trim();
    const doc = JSON.parse(okOut(await env.cli(['inspect', 'looked']))) as Record<string, any>[];
    const c = doc[0]!;
    expect(c.Id).toBe(id);
    expect(c.Name).toBe('/looked');
    expect(c.State).toMatchObject({ Status: 'running', Running: true, OOMKilled: false });
    expect(c.State.Pid).toBeGreaterThan(1);
    expect(c.Config.Env).toContain('K=V');
    expect(c.Config.Cmd).toEqual(['sleep', '300']);
    expect(c.Mounts).toEqual([expect.objectContaining({ Type: 'bind', Source: host, Destination: '/v', RW: false })]);
    for (const ns of ['mnt', 'pid', 'uts', 'ipc', 'net', 'cgroup']) expect(c.Namespaces[ns]).toMatch(new RegExp(`^${ns}:\\[\\d+\\]$`));
    const { readlinkSync } = await import('node:fs');
    for (const ns of ['pid', 'cgroup']) expect(c.Namespaces[ns]).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    expect(c.Namespaces.mnt).toBe(readlinkSync(`/proc/${c.State.Pid}/ns/mnt`));
    await env.cli(['rm', '-f', 'looked']);
  });

  it('inspect finds a container before an image whose id its name also prefixes, as docker inspect does', async () => {
    const imageIdOf = okOut(await env.cli(['inspect', '--type', 'image', '--format', '{{.Id}}', 'busybox'])).trim();
    const name = imageIdOf.slice('sha256:'.length, 'sha256:'.length + 4);
    expect((await env.cli(['create', '--name', name, 'busybox', 'true'])).code).toBe(0);
    expect(okOut(await env.cli(['inspect', '--format', '{{.Name}}', name]))).toBe(`/${name}\n`);
    expect(okOut(await env.cli(['inspect', '--type', 'image', '--format', '{{.Id}}', name]))).toBe(`${imageIdOf}\n`);
    // A name no container has still finds the image.
    expect(okOut(await env.cli(['inspect', '--format', '{{.Id}}', imageIdOf.slice(7, 19)]))).toBe(`${imageIdOf}\n`);
    expect((await env.cli(['rm', name])).code).toBe(0);
  });

  it('commit makes an image of the container changes with config changes and history', async () => {
    const host = join(env.dir, 'vol-commit');
    await mkdir(host);
    await env.cli(['run', '--name', 'builder', '-v', `${host}:/mnt/vol`, '-e', 'RUNENV=1', 'busybox', 'sh', '-c',
      'echo hi > /greeting; echo vol > /mnt/vol/x; rm /bin/vi; echo 1.2.3.4 x >> /etc/hosts']);
    const r = await env.cli(['commit', '-m', 'say hi', '-c', 'CMD ["cat", "/greeting"]', '-c', 'ENV A=b', '-c', 'WORKDIR /srv', 'builder', 'greeter:v1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await env.cli(['run', '--rm', 'greeter:v1'])).stdout).toBe('hi\n');
    expect((await env.cli(['run', '--rm', 'greeter:v1', 'sh', '-c', 'echo $A $RUNENV $(pwd); test -e /bin/vi || echo vi-gone'])).stdout).toBe('b 1 /srv\nvi-gone\n');
    const names = await layerNames(env.root, 'greeter:v1');
    expect(names).toContain('greeting');
    expect(names).toContain('bin/.wh.vi');
    // Neither the bind-mounted volume nor the init placeholders (hosts, hostname, resolv.conf) are in the layer.
    expect(names.filter((n) => n.startsWith('mnt') || n.startsWith('etc/'))).toEqual([]);
    const hist = await env.cli(['history', 'greeter:v1']);
    expect(hist.stdout).toMatch(/say hi/);
    await env.cli(['rm', 'builder']);
  });

  it('pruneContainers removes stopped containers and keeps running ones', async () => {
    await env.cli(['run', '--name', 'stopped1', 'busybox', 'true']);
    const live = (await env.cli(['run', '-d', '--name', 'running1', 'busybox', 'sleep', '300'])).stdout.trim();
    const removed = await pruneContainers(env.root);
    expect(removed).toHaveLength(1);
    expect((await env.cli(['ps', '-aq', '--no-trunc'])).stdout).toBe(`${live}\n`);
    await env.cli(['rm', '-f', 'running1']);
  });

  it('commits a running container (frozen while its layer is read) and leaves it running', async () => {
    await env.cli(['run', '-d', '--name', 'live', 'busybox', 'sh', '-c', 'echo live > /state; while true; do sleep 0.1; done']);
    await waitFor(async () => (await env.cli(['exec', 'live', 'cat', '/state'])).stdout === 'live\n' || undefined);
    expect((await env.cli(['commit', 'live', 'snap:1'])).code).toBe(0);
    expect((await env.cli(['run', '--rm', 'snap:1', 'cat', '/state'])).stdout).toBe('live\n');
    expect((await env.cli(['exec', 'live', 'true'])).code).toBe(0);
    await env.cli(['rm', '-f', 'live']);
  });
});
