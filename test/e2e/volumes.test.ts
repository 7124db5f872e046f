/**
 * Volumes on real containers: named and anonymous volumes, an image's VOLUMEs and Docker's
 * copy-up, `--mount`, `--read-only`, removal with `rm -v` / `run --rm`, the `volume` commands, and
 * `volume rm` racing a starting container.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setupEnv, type Env } from './containers-env.js';
import { expectOneLineError, okOut } from '../helpers/cli.js';
import { mountsUnder } from '../helpers/tmp.js';
import { listVolumeUsage } from '../../src/containers/volumes.js';

let env: Env;
const vols = async (): Promise<string[]> => (await env.cli(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean);

beforeAll(async () => {
  env = await setupEnv();
  // An image with a VOLUME whose directory has content, an owner and a mode of its own.
  const seed = await env.cli(['run', '--name', 'seed', 'busybox', 'sh', '-c', 'mkdir -p /data/sub && echo seed > /data/seed && ln -s seed /data/link && chown -R 1000:1001 /data && chmod 0750 /data']);
  expect(seed.code).toBe(0);
  expect((await env.cli(['commit', '-c', 'VOLUME /data', 'seed', 'vimg'])).code).toBe(0);
  expect((await env.cli(['rm', 'seed'])).code).toBe(0);
}, 60_000);
afterAll(async () => env?.cleanup());

describe('volumes', () => {
  it('a bind of a host file onto a path the image lacks gets a file to mount on, kept out of diff and commit', async () => {
    const f = join(env.dir, 'bound-file');
    await writeFile(f, 'from the host\n');
    const r = await env.cli(['run', '--name', 'fb1', '-v', `${f}:/new/dir/conf:ro`, '-v', `${f}:/etc/passwd`, 'busybox', 'sh', '-c', 'cat /new/dir/conf /etc/passwd; test -f /new/dir/conf && echo file']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('from the host\nfrom the host\nfile\n');
    expect(okOut(await env.cli(['diff', 'fb1']))).toBe('');
    // The image's own /etc/passwd is not shadowed by a placeholder: an export shows it.
    const tar = join(env.dir, 'fb1.tar');
    expect((await env.cli(['export', '-o', tar, 'fb1'])).code).toBe(0);
    const passwd = spawnSync('tar', ['-xOf', tar, 'etc/passwd'], { encoding: 'utf8' });
    expect(passwd.stdout).toMatch(/^root:/);
    expect((await env.cli(['commit', 'fb1', 'fb1img'])).code).toBe(0);
    const back = await env.cli(['run', '--rm', 'fb1img', 'sh', '-c', 'ls /new 2>&1; grep -c root /etc/passwd']);
    expect(back.stdout).toMatch(/No such file or directory\n1\n$/);
    expect((await env.cli(['rm', 'fb1'])).code).toBe(0);
    // Through a symlink of the image the file lands at the link's target inside the rootfs, and
    // the link stays a link (no placeholder hides it).
    expect((await env.cli(['run', '--name', 'fbl', 'busybox', 'sh', '-c', 'mkdir /real && ln -s /real /lnk'])).code).toBe(0);
    expect((await env.cli(['commit', 'fbl', 'fblimg'])).code).toBe(0);
    const through = await env.cli(['run', '--rm', '-v', `${f}:/lnk/conf`, 'fblimg', 'sh', '-c', 'readlink /lnk; cat /real/conf']);
    expect(through.code, through.stderr).toBe(0);
    expect(through.stdout).toBe('/real\nfrom the host\n');
    expect((await env.cli(['rm', 'fbl'])).code).toBe(0);
  });

  it('a named volume is made on first use, outlives its containers and is shared between them', async () => {
    const w = await env.cli(['run', '--name', 'w1', '-v', 'shared:/d', 'busybox', 'sh', '-c', 'echo kept > /d/f']);
    expect(w.code).toBe(0);
    expect(await vols()).toContain('shared');
    const ins = JSON.parse(okOut(await env.cli(['inspect', '--format', '{{json .Mounts}}', 'w1']))) as unknown[];
    expect(ins).toEqual([
      { Type: 'volume', Name: 'shared', Source: join(env.root, 'volumes', 'shared', '_data'), Destination: '/d', Driver: 'local', Mode: 'z', RW: true, Propagation: '' },
    ]);
    // Removed with -v: a named volume stays all the same.
    expect((await env.cli(['rm', '-v', 'w1'])).code).toBe(0);
    expect((await env.cli(['run', '--rm', '-v', 'shared:/d:ro', 'busybox', 'cat', '/d/f'])).stdout).toBe('kept\n');
    // Two containers at once see each other's writes.
    const d = await env.cli(['run', '-d', '--name', 'w2', '-v', 'shared:/d', 'busybox', 'sh', '-c', 'echo live > /d/g; sleep 30']);
    expect(d.code).toBe(0);
    let seen = '';
    for (let i = 0; i < 50 && seen !== 'live\n'; i++) seen = (await env.cli(['run', '--rm', '-v', 'shared:/d', 'busybox', 'sh', '-c', 'cat /d/g 2>/dev/null'])).stdout;
    expect(seen).toBe('live\n');
    const ro = await env.cli(['run', '--rm', '--mount', 'src=shared,dst=/d,readonly', 'busybox', 'sh', '-c', 'echo x > /d/h']);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/Read-only file system/);
    // In use: refused with Docker's message, and the data is still there.
    const id = d.stdout.trim();
    const busy = await env.cli(['volume', 'rm', 'shared']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toBe(`imgbuild: FAILED_PRECONDITION: remove shared: volume is in use - [${id}]\n`);
    expect((await env.cli(['volume', 'ls', '--filter', 'dangling=false', '--format', '{{.Name}} {{.Driver}} {{.Links}}'])).stdout).toBe('shared local N/A\n');
    const usage = await listVolumeUsage(env.root);
    expect(usage.find((u) => u.Name === 'shared')).toMatchObject({ users: [id], size: 'kept\n'.length + 'live\n'.length });
    // cp reaches a running container's volume; a stopped one's is refused, not written under it.
    const f = join(env.dir, 'cpin');
    await writeFile(f, 'copied\n');
    expect((await env.cli(['cp', f, 'w2:/d/cpin'])).code).toBe(0);
    expect(await readFile(join(env.root, 'volumes', 'shared', '_data', 'cpin'), 'utf8')).toBe('copied\n');
    expect((await env.cli(['run', '--name', 'w3', '-v', 'shared:/d', 'busybox', 'true'])).code).toBe(0);
    expectOneLineError(await env.cli(['cp', f, 'w3:/d/cpin2']), /a volume of the stopped container w3/);
    expect((await env.cli(['rm', 'w3'])).code).toBe(0);
    expect((await env.cli(['rm', '-f', '-v', 'w2'])).code).toBe(0);
    expect((await env.cli(['volume', 'rm', 'shared'])).stdout).toBe('shared\n');
    expect(await vols()).not.toContain('shared');
  }, 60_000);

  it("an image's VOLUME gets an anonymous volume filled from the image, never part of a commit", async () => {
    const r = await env.cli(['run', '--name', 'a1', 'vimg', 'sh', '-c', 'stat -c "%u:%g %a" /data /data/seed; readlink /data/link; echo mine > /data/mine; echo up > /up']);
    expect(r.stdout).toBe('1000:1001 750\n1000:1001 644\nseed\n');
    const [m] = JSON.parse(okOut(await env.cli(['inspect', '--format', '{{json .Mounts}}', 'a1']))) as { Name: string; Source: string; Mode: string; Type: string }[];
    expect(m).toMatchObject({ Type: 'volume', Mode: '', Source: join(env.root, 'volumes', m!.Name, '_data') });
    expect(m!.Name).toMatch(/^[0-9a-f]{64}$/);
    expect((await readFile(join(m!.Source, 'mine'), 'utf8'))).toBe('mine\n');
    const st = await stat(m!.Source);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1000, 1001, 0o750]);
    // The volume's content is not the container's: commit takes /up, not /data/mine.
    expect((await env.cli(['commit', 'a1', 'a1img'])).code).toBe(0);
    expect((await env.cli(['run', '--rm', '-v', '/tmp/x', '--mount', 'type=tmpfs,dst=/data', 'a1img', 'sh', '-c', 'cat /up; ls /data'])).stdout).toBe('up\n');
    const inspected = JSON.parse((await env.cli(['volume', 'inspect', m!.Name])).stdout) as object[];
    expect(inspected).toEqual([{ CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), Driver: 'local', Labels: { 'com.docker.volume.anonymous': '' }, Mountpoint: m!.Source, Name: m!.Name, Options: null, Scope: 'local' }]);
    // rm without -v keeps it; prune (anonymous, unused) takes it.
    expect((await env.cli(['rm', 'a1'])).code).toBe(0);
    expect(await vols()).toContain(m!.Name);
    const p = await env.cli(['volume', 'prune', '-f']);
    expect(p.stdout).toMatch(new RegExp(`^Deleted Volumes:\\n${m!.Name}\\n\\nTotal reclaimed space: \\d+B\\n$`));
    expect(await vols()).not.toContain(m!.Name);
  }, 60_000);

  it('run --rm and rm -v remove anonymous volumes, a mount over a VOLUME replaces it, nocopy keeps a new volume empty', async () => {
    const before = await vols();
    expect((await env.cli(['run', '--rm', '-v', '/anon', 'vimg', 'sh', '-c', 'touch /anon/x /data/y'])).code).toBe(0);
    expect(await vols()).toEqual(before);
    expect((await env.cli(['run', '--name', 'k1', '-v', '/anon', 'vimg', 'true'])).code).toBe(0);
    expect((await vols()).length).toBe(before.length + 2);
    // As docker's CLI does, -v /anon is a VOLUME of the container's config: commit keeps it.
    expect(JSON.parse(okOut(await env.cli(['inspect', '--format', '{{json .Config.Volumes}}', 'k1'])))).toEqual({ '/data': {}, '/anon': {} });
    expect((await env.cli(['commit', 'k1', 'k1img'])).code).toBe(0);
    expect(JSON.parse(okOut(await env.cli(['inspect', '--format', '{{json .Config.Volumes}}', 'k1img'])))).toEqual({ '/data': {}, '/anon': {} });
    expect((await env.cli(['rm', '-v', 'k1'])).code).toBe(0);
    expect(await vols()).toEqual(before);
    // A named volume over the image's VOLUME: no anonymous one; nocopy leaves it empty.
    const n = await env.cli(['run', '--rm', '-v', 'over:/data:nocopy', 'vimg', 'ls', '-A', '/data']);
    expect(n).toMatchObject({ code: 0, stdout: '' });
    expect((await env.cli(['run', '--rm', '--mount', 'src=over2,dst=/data,volume-nocopy', 'vimg', 'ls', '-A', '/data'])).stdout).toBe('');
    expect((await env.cli(['run', '--rm', '-v', 'over3:/data', 'vimg', 'ls', '/data'])).stdout).toBe('link\nseed\nsub\n');
    expect((await vols()).sort()).toEqual([...before, 'over', 'over2', 'over3'].sort());
    // prune without -a keeps named volumes; -a takes the unused ones.
    expect((await env.cli(['volume', 'prune', '-f'])).stdout).toBe('Total reclaimed space: 0B\n');
    const all = await env.cli(['volume', 'prune', '-f', '--filter', 'all=true', '--filter', 'label!=keep']);
    expect(all.stdout).toMatch(/^Deleted Volumes:\n(over\d?\n){3}\nTotal reclaimed space: [\d.]+k?B\n$/);
  }, 60_000);

  it('volumes stay writable under --read-only; --mount bind and tmpfs as docker has them', async () => {
    const r = await env.cli(['run', '--rm', '--read-only', 'vimg', 'sh', '-c', 'echo w > /data/w && cat /data/w; touch /nope 2>/dev/null || echo ro']);
    expect(r.stdout).toBe('w\nro\n');
    const host = join(env.dir, 'bindsrc');
    await mkdir(host);
    const b = await env.cli(['run', '--rm', '--mount', `type=bind,src=${host},dst=/b`, '--mount', 'type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770', 'busybox', 'sh', '-c', 'echo hi > /b/f; stat -c %a /t; grep " /t " /proc/mounts']);
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/^1770\ntmpfs \/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770/);
    expect(await readFile(join(host, 'f'), 'utf8')).toBe('hi\n');
    const c = await env.cli(['run', '--name', 'm1', '--mount', `type=bind,src=${host},dst=/b,readonly,bind-propagation=rslave`, '--mount', 'type=tmpfs,dst=/t,tmpfs-size=1m', '--mount', 'src=mv,dst=/v,volume-nocopy,volume-label=a=b', 'busybox', 'true']);
    expect(c.code).toBe(0);
    expect(JSON.parse(okOut(await env.cli(['inspect', '--format', '{{json .HostConfig.Mounts}}', 'm1'])))).toEqual([
      { Type: 'bind', Source: host, Target: '/b', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1048576 } },
      { Type: 'volume', Source: 'mv', Target: '/v', VolumeOptions: { NoCopy: true, Labels: { a: 'b' } } },
    ]);
    const mounts = JSON.parse(okOut(await env.cli(['inspect', '--format', '{{json .Mounts}}', 'm1']))) as { Type: string; Propagation: string; RW: boolean }[];
    expect(mounts.map((m) => [m.Type, m.RW, m.Propagation])).toEqual([['bind', false, 'rslave'], ['volume', true, ''], ['tmpfs', true, '']]);
    expect((await env.cli(['volume', 'inspect', '--format', '{{json .Labels}}', 'mv'])).stdout).toBe('{"a":"b"}\n');
    expect((await env.cli(['rm', '-v', 'm1'])).code).toBe(0);
    expect((await env.cli(['volume', 'rm', 'mv'])).code).toBe(0);
    expectOneLineError(await env.cli(['run', '--rm', '--mount', 'type=bind,src=/no/such/dir,dst=/b', 'busybox', 'true']), /^imgbuild: INVALID_ARGUMENT: invalid mount config for type "bind": bind source path does not exist: \/no\/such\/dir$/);
    const bad = await env.cli(['run', '--rm', '--mount', 'type=volume', 'busybox', 'true']);
    expect(bad.code).toBe(125);
    expectOneLineError(bad, /invalid argument "type=volume" for "--mount" flag: target is required$/);
    expectOneLineError(await env.cli(['run', '--rm', '-v', 'a:/x', 'busybox', 'true']), /create a: volume name is too short, names should be at least two alphanumeric characters$/);
    expectOneLineError(await env.cli(['run', '--rm', '-v', 'a*b:/x', 'busybox', 'true']), /create a\*b: "a\*b" includes invalid characters for a local volume name/);
    expectOneLineError(await env.cli(['run', '--rm', '-v', 'v1:/x', '--tmpfs', '/x', 'busybox', 'true']), /Duplicate mount point: \/x$/);
  }, 60_000);

  it('the local driver: -o type=tmpfs and o=bind, labels and filters', async () => {
    const src = join(env.dir, 'device');
    await mkdir(src);
    await writeFile(join(src, 'here'), 'dev\n');
    expect((await env.cli(['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=2m', '--label', 'kind=mem', 'memvol'])).stdout).toBe('memvol\n');
    expect((await env.cli(['volume', 'create', '-o', 'type=none', '-o', `device=${src}`, '-o', 'o=bind', 'bindvol'])).stdout).toBe('bindvol\n');
    const t = await env.cli(['run', '--rm', '-v', 'memvol:/m', '-v', 'bindvol:/b', 'busybox', 'sh', '-c', 'grep " /m " /proc/mounts; cat /b/here; echo w > /b/w']);
    expect(t.stdout).toMatch(/^tmpfs \/m tmpfs rw,(nodev,)?relatime,size=2048k/);
    expect(t.stdout).toMatch(/\ndev\n$/);
    expect(await readFile(join(src, 'w'), 'utf8')).toBe('w\n');
    expectOneLineError(await env.cli(['volume', 'create', '-o', 'type=tmpfs', 'x1']), /^imgbuild: INVALID_ARGUMENT: create x1: missing required option: "device"$/);
    expectOneLineError(await env.cli(['volume', 'create', '-o', 'colour=red', 'x2']), /create x2: invalid option: "colour"$/);
    expectOneLineError(await env.cli(['volume', 'create', '-d', 'nfs', 'x3']), /plugin "nfs" not found$/);
    const anon = (await env.cli(['volume', 'create'])).stdout.trim();
    expect(anon).toMatch(/^[0-9a-f]{64}$/);
    expect((await env.cli(['volume', 'ls', '--filter', 'label=kind=mem'])).stdout).toBe('DRIVER    VOLUME NAME\nlocal     memvol\n');
    expect((await env.cli(['volume', 'ls', '-q', '--filter', 'name=vol'])).stdout).toBe('bindvol\nmemvol\n');
    expect((await env.cli(['volume', 'rm', 'memvol', 'bindvol', anon])).code).toBe(0);
    expect(await readFile(join(src, 'here'), 'utf8')).toBe('dev\n'); // a bind volume's device is the user's
    expectOneLineError(await env.cli(['volume', 'rm', 'memvol']), /^imgbuild: NOT_FOUND: no such volume: memvol$/);
    expect((await env.cli(['volume', 'rm', '-f', 'memvol'])).code).toBe(0);
    const events = (await readFile(join(env.root, 'events.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { Type: string; Action: string; Actor: { ID: string } });
    expect(events.filter((e) => e.Type === 'volume' && e.Actor.ID === 'memvol').map((e) => e.Action)).toEqual(['create', 'mount', 'unmount', 'destroy']);
    // As docker events shows them: the mount just before the container's start, the unmount after its die.
    const around = events.filter((e) => (e.Type === 'volume' && e.Actor.ID === 'memvol') || (e.Type === 'container' && ['start', 'die'].includes(e.Action)));
    const i = around.findIndex((e) => e.Action === 'mount');
    expect(around.slice(i, i + 4).map((e) => `${e.Type} ${e.Action}`)).toEqual(['volume mount', 'container start', 'container die', 'volume unmount']);
    expectOneLineError(await env.cli(['volume', 'inspect', 'memvol']), /no such volume: memvol$/);
  }, 60_000);

  it('volume rm racing containers that start with the volume never takes data from under one', async () => {
    const dataOf = join(env.root, 'volumes', 'race', '_data');
    let refused = 0;
    let removed = 0;
    for (let i = 0; i < 8; i++) {
      expect((await env.cli(['volume', 'create', 'race'])).code).toBe(0);
      await writeFile(join(dataOf, 'seed'), 'seed\n');
      const run = env.cli(['run', '--rm', '-v', 'race:/d', 'busybox', 'sh', '-c', 'cat /d/seed 2>/dev/null || echo none; sleep 0.2; cat /d/seed 2>/dev/null || echo none']);
      await new Promise((r) => setTimeout(r, i * 15));
      const rm = await env.cli(['volume', 'rm', 'race']);
      const out = (await run).stdout;
      if (rm.code === 0) {
        removed++;
        // Removed before the container asked for it: it got a new, empty volume.
        expect(out).toBe('none\nnone\n');
      } else {
        refused++;
        expect(rm.stderr).toMatch(/remove race: volume is in use - \[[0-9a-f]{64}\]/);
        expect(out).toBe('seed\nseed\n');
      }
      await env.cli(['volume', 'rm', '-f', 'race']);
    }
    expect(refused + removed).toBe(8);
    // Nothing is left behind: no mounts, no half-made or half-removed volumes, no copy-up dirs.
    expect(await mountsUnder(env.root)).toEqual([]);
    expect((await readdir(join(env.root, 'volumes'))).filter((n) => n.startsWith('.') && !n.endsWith('.lock'))).toEqual([]);
  }, 90_000);

  it('a run killed at any moment leaves nothing a later rm, prune or volume rm trips over', async () => {
    for (let i = 0; i < 5; i++) {
      const child = env.spawnCli(['run', '--rm', '-v', 'killvol:/k', 'vimg', 'sh', '-c', 'echo x > /k/x; echo y > /data/y']);
      // Listened for at once: a run that ends before the kill has closed already.
      const closed = new Promise((r) => child.once('close', r));
      await new Promise((r) => setTimeout(r, 40 + i * 60));
      child.kill('SIGKILL');
      await closed;
    }
    // What the killed runs left: containers (removed by ps for --rm ones, or rm -f -v) and
    // half-made ones (prune); their anonymous volumes are then unused.
    await env.cli(['ps', '-a']);
    const ids = (await env.cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) expect((await env.cli(['rm', '-f', '-v', ...ids])).code).toBe(0);
    expect((await env.cli(['prune'])).code).toBe(0);
    const left = await env.cli(['volume', 'ls', '--filter', 'dangling=false', '-q']);
    expect(left.stdout).toBe('');
    expect((await env.cli(['volume', 'rm', '-f', 'killvol'])).code).toBe(0);
    expect((await env.cli(['volume', 'prune', '-f'])).code).toBe(0);
    expect((await env.cli(['volume', 'ls', '-q', '--filter', 'label=com.docker.volume.anonymous'])).stdout).toBe('');
    expect(await mountsUnder(env.root)).toEqual([]);
    expect((await readdir(join(env.root, 'volumes'))).filter((n) => n.startsWith('.') && !n.endsWith('.lock'))).toEqual([]);
    expect((await readdir(join(env.root, 'containers'))).filter((n) => !n.endsWith('.lock'))).toEqual([]);
  }, 120_000);
});
