/**
 * The system commands on real containers: events from the journal (history with --since/--until,
 * filters, --format, and following until interrupted), version and info (--format), system df
 * (counts and sizes that move as containers and images come and go), the prunes, and the command
 * groups as aliases of the flat commands.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpBusyboxStore } from '../helpers/base-image.js';
import { CLI_EXE, REPO_ROOT, runCli } from '../helpers/cli.js';

let env: Awaited<ReturnType<typeof tmpBusyboxStore>>;
const cli = (args: string[], input?: string) => runCli(args, { root: env.root, ...(input !== undefined ? { input } : {}) });

beforeAll(async () => {
  env = await tmpBusyboxStore('imgbuild-e2e-system-');
});
afterAll(async () => {
  await cli(['rm', '-f', 'sys-up']);
  await env.tmp.cleanup();
});

interface Ev {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

const events = async (args: string[]): Promise<Ev[]> => {
  const r = await cli(['events', ...args, '--format', '{{json .}}']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev);
};

describe('events', () => {
  it('records a container\'s life and image changes; --since/--until bound it, filters pick', async () => {
    const since = String(Date.now() / 1000);
    expect((await cli(['run', '--name', 'sys-a', 'busybox', 'sh', '-c', 'exit 3'])).code).toBe(3);
    expect((await cli(['tag', 'busybox', 'sys/tagged:1'])).code).toBe(0);
    expect((await cli(['rm', 'sys-a'])).code).toBe(0);
    expect((await cli(['rmi', 'sys/tagged:1'])).code).toBe(0);
    const until = String(Date.now() / 1000 + 0.001);

    const all = await events(['--since', since, '--until', until]);
    const ctr = all.filter((e) => e.Type === 'container');
    expect(ctr.map((e) => e.Action)).toEqual(['create', 'start', 'die', 'destroy']);
    expect(ctr[0]!.Actor.Attributes).toEqual({ image: 'busybox', name: 'sys-a' });
    expect(ctr[2]!.Actor.Attributes.exitCode).toBe('3');
    expect(new Set(ctr.map((e) => e.Actor.ID)).size).toBe(1);
    const img = all.filter((e) => e.Type === 'image');
    expect(img.map((e) => `${e.Action} ${e.Actor.Attributes.name}`)).toEqual(['tag sys/tagged:1', 'untag sys/tagged:1']);
    expect(img[0]!.Actor.ID).toMatch(/^sha256:[0-9a-f]{64}$/);
    // time and timeNano agree, and the order is the order things happened.
    for (const e of all) expect(Math.floor(e.timeNano / 1e9)).toBe(e.time);

    expect((await events(['--since', since, '--until', until, '--filter', 'type=image'])).map((e) => e.Action)).toEqual(['tag', 'untag']);
    expect((await events(['--since', since, '--until', until, '--filter', 'event=die', '--filter', 'event=create'])).map((e) => e.Action)).toEqual(['create', 'die']);
    expect((await events(['--since', since, '--until', until, '--filter', 'container=sys-a', '--filter', 'event=destroy'])).map((e) => e.Action)).toEqual(['destroy']);
    expect(await events(['--since', since, '--until', until, '--filter', 'container=nosuch'])).toEqual([]);
    expect((await events(['--since', since, '--until', until, '--filter', 'image=busybox', '--filter', 'type=container'])).length).toBe(4);
    // An --until before them shows none of them.
    expect(await events(['--since', since, '--until', since])).toEqual([]);

    // Docker's plain line: time, type, action, id, sorted attributes.
    const plain = await cli(['events', '--since', since, '--until', until, '--filter', 'event=create']);
    expect(plain.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container create [0-9a-f]{64} \(image=busybox, name=sys-a\)\n$/);
    const tpl = await cli(['events', '--since', since, '--until', until, '--filter', 'type=image', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}']);
    expect(tpl.stdout).toBe('image tag sys/tagged:1\nimage untag sys/tagged:1\n');
    const bad = await cli(['events', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^imgbuild: INVALID_ARGUMENT: invalid --since/);
  });

  it('a detached container: stop records kill (the signal), die and stop; exec its own events', async () => {
    const since = String(Date.now() / 1000);
    expect((await cli(['run', '-d', '--name', 'sys-d', 'busybox', 'sleep', '60'])).code).toBe(0);
    expect((await cli(['exec', 'sys-d', 'sh', '-c', 'exit 4'])).code).toBe(4);
    expect((await cli(['stop', '-t', '1', 'sys-d'])).code).toBe(0);
    expect((await cli(['rm', 'sys-d'])).code).toBe(0);
    const evs = await events(['--since', since, '--until', String(Date.now() / 1000 + 0.001), '--filter', 'container=sys-d']);
    // sleep as pid 1 has no handler for SIGTERM, so the kernel ignores it: SIGKILL after the timeout.
    expect(evs.map((e) => e.Action.split(':')[0])).toEqual(['create', 'start', 'exec_create', 'exec_start', 'exec_die', 'kill', 'kill', 'die', 'stop', 'destroy']);
    expect(evs[3]!.Action).toBe('exec_start: sh -c exit 4');
    expect(evs[4]!.Actor.Attributes.exitCode).toBe('4');
    expect([evs[5]!.Actor.Attributes.signal, evs[6]!.Actor.Attributes.signal]).toEqual(['15', '9']);
    expect(evs[7]!.Actor.Attributes.exitCode).toBe('137');
  });

  it('follows new events until interrupted', async () => {
    const child = spawn(CLI_EXE, ['--root', env.root, 'events', '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.Attributes.name}}'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const closed = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    try {
      // Give it time to start, then make events; it prints only those after its start.
      for (let i = 0; i < 50 && !out.includes('follow/one:1'); i++) {
        await cli(['tag', 'busybox', `follow/one:1`]);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(out).toContain('tag follow/one:1');
      expect(out).not.toContain('sys/tagged');
      child.kill('SIGINT');
      expect(await closed).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('events | head -1', () => {
  it('ends when its reader goes away', async () => {
    const child = spawn(CLI_EXE, ['--root', env.root, 'events', '--filter', 'type=image'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    let seen = false;
    child.stdout.once('data', () => {
      seen = true;
      child.stdout.destroy(); // as `head -1` exits after its line
    });
    try {
      // The first event is read; the next one meets a closed pipe and ends the command.
      for (let i = 0; i < 50 && child.exitCode === null; i++) {
        await cli(['tag', 'busybox', `gone/one:${i}`]);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(seen).toBe(true);
      expect(await closed).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('version and info', () => {
  it('version: Client and Server blocks, --format', async () => {
    const r = await cli(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Client:\n Version: +0\.1\.0\n/);
    expect(r.stdout).toMatch(/\nServer: imgbuild/);
    expect((await cli(['version', '--format', '{{.Client.Version}} {{.Server.Os}}'])).stdout).toBe('0.1.0 linux\n');
    const j = JSON.parse((await cli(['version', '--format', '{{json .}}'])).stdout) as { Server: { Components: { Name: string }[] } };
    expect(j.Server.Components.map((c) => c.Name)).toContain('Engine');
  });

  it('info: counts by state, storage, cgroups, kernel, rootless, registries; --format', async () => {
    expect((await cli(['run', '-d', '--name', 'sys-up', 'busybox', 'sleep', '60'])).code).toBe(0);
    expect((await cli(['run', '--name', 'sys-down', 'busybox', 'true'])).code).toBe(0);
    const j = JSON.parse((await cli(['info', '--format', '{{json .}}'])).stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ Containers: 2, ContainersRunning: 1, ContainersPaused: 0, ContainersStopped: 1, Images: 1, Driver: 'overlay', Snapshotter: 'overlayfs', CgroupDriver: 'cgroupfs', CgroupVersion: '1', OSType: 'linux', Rootless: false, RootDir: env.root });
    expect(j.Registries).toContain('docker.io');
    expect(j.InsecureRegistries).toContain('127.0.0.0/8');
    expect((await cli(['system', 'info', '--format', '{{.Containers}} {{.ContainersRunning}}'])).stdout).toBe('2 1\n');
    const text = (await cli(['info'])).stdout;
    for (const l of [' Containers: 2', '  Running: 1', '  Stopped: 1', ' Images: 1', ' Storage Driver: overlay', ' Cgroup Version: 1', ' Rootless: false']) expect(text).toContain(`${l}\n`);
    // Which isolation, snapshotter and network the store and a container use.
    expect(j).toMatchObject({ Isolation: 'namespaces', DefaultNetwork: 'bridge', RootlessNetworkCmd: '', SecurityOptions: ['name=seccomp,profile=default'] });
    expect(text).toContain(' Isolation: namespaces\n Default Network: bridge\n Security Options:\n  seccomp\n   Profile: default\n');
    const insp = await cli(['inspect', '-f', '{{.GraphDriver.Name}} {{.Driver}} {{.HostConfig.Isolation}} [{{.HostConfig.UsernsMode}}] {{.HostConfig.NetworkMode}}', 'sys-up']);
    expect(insp.stdout).toBe('overlay overlay namespaces [] default\n');
  });
});

describe('system df and prune', () => {
  it('df counts images, containers and the build cache; the prunes give space back', async () => {
    const df = async (): Promise<Record<string, Record<string, string | number>>> => {
      const r = await cli(['system', 'df', '--format', '{{json .}}']);
      expect(r.code, r.stderr).toBe(0);
      return Object.fromEntries(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string | number>).map((o) => [o.Type, o]));
    };
    // The stopped one gets a writable layer with something in it.
    // The stopped one gets a writable layer with something in it, and a named volume.
    expect((await cli(['run', '--name', 'sys-fat', '-v', 'sysvol:/data', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/fat bs=1k count=2000 2>/dev/null; echo hi > /data/x'])).code).toBe(0);
    const before = await df();
    expect(before.Images).toMatchObject({ TotalCount: 1, Active: 1 });
    expect(before.Containers).toMatchObject({ TotalCount: 3, Active: 1 });
    expect(String(before.Containers!.Size)).toMatch(/^2\.\d+MB$/);
    expect(String(before.Containers!.Reclaimable)).toMatch(/^2\.\d+MB \(\d+%\)$/);
    expect(before['Local Volumes']).toMatchObject({ TotalCount: 1, Active: 1 });
    expect(before['Local Volumes']!.Size).not.toBe('0B');
    expect(before['Build Cache']).toMatchObject({ TotalCount: 0, Size: '0B' });
    const table = (await cli(['system', 'df'])).stdout.split('\n');
    expect(table[0]).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    expect(table[1]).toMatch(/^Images\s+1\s+1\s+\S+B\s+0B \(0%\)$/);
    const v = (await cli(['system', 'df', '-v'])).stdout;
    expect(v).toMatch(/Images space usage:\n\nREPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+SHARED SIZE\s+UNIQUE SIZE\s+CONTAINERS\nbusybox\s+latest\s+[0-9a-f]{12}\s+.*\s+3\n/);
    expect(v).toMatch(/sys-fat\n/);

    // A dangling image (a build with no tag) for the prunes.
    const built = await runCli(['build', '-q', '-'], { root: env.root, input: 'FROM busybox\nRUN echo x > /x\n' });
    expect(built.code, built.stderr).toBe(0);
    const withCache = await df();
    expect(Number(withCache['Build Cache']!.TotalCount)).toBeGreaterThan(0);

    const cp = await cli(['container', 'prune', '-f']);
    expect(cp.code, cp.stderr).toBe(0);
    expect(cp.stdout).toMatch(/^Deleted Containers:\n[0-9a-f]{64}\n[0-9a-f]{64}\n\nTotal reclaimed space: 2\.\d+MB\n$/);
    expect((await cli(['container', 'ls', '-a', '-q'])).stdout.trim().split('\n')).toHaveLength(1);

    const sp = await cli(['system', 'prune', '-f']);
    expect(sp.code, sp.stderr).toBe(0);
    expect(sp.stdout).toMatch(/Deleted Images:\ndeleted: sha256:[0-9a-f]{64}\n/);
    expect(sp.stdout).toMatch(/Deleted build cache objects:\n[0-9a-f]{64}\n/);
    expect(sp.stdout).toMatch(/Total reclaimed space: \S+B\n$/);
    const after = await df();
    expect(after.Images).toMatchObject({ TotalCount: 1 });
    expect(after['Build Cache']).toMatchObject({ TotalCount: 0 });
    expect(after.Containers).toMatchObject({ TotalCount: 1, Active: 1 });
    // Its container gone, the named volume is unused (reclaimable) but kept: --volumes takes anonymous ones only.
    expect(after['Local Volumes']).toMatchObject({ TotalCount: 1, Active: 0 });
    expect(String(after['Local Volumes']!.Reclaimable)).toMatch(/\(100%\)$/);
    expect((await cli(['system', 'prune', '-f', '--volumes'])).code).toBe(0);
    expect((await cli(['volume', 'ls', '-q'])).stdout).toBe('sysvol\n');
    // The image a container uses stays, even with -a.
    expect((await cli(['image', 'prune', '-a', '-f'])).stdout).toBe('Total reclaimed space: 0B\n');
    expect((await cli(['image', 'ls', '-q'])).stdout.trim().split('\n')).toHaveLength(1);
  });
});

describe('command groups', () => {
  it('are the flat commands under other names, with their flags', async () => {
    // (CREATED and STATUS move with the clock: the ids and the header are compared.)
    expect((await cli(['container', 'ls', '-a', '-q', '--no-trunc'])).stdout).toBe((await cli(['ps', '-a', '-q', '--no-trunc'])).stdout);
    const header = async (args: string[]): Promise<string> => (await cli(args)).stdout.split('\n')[0]!.replace(/ +/g, ' ');
    expect(await header(['container', 'ls'])).toBe(await header(['ps']));
    expect((await cli(['container', 'ps', '-q'])).stdout).toBe((await cli(['ps', '-q'])).stdout);
    expect((await cli(['image', 'ls'])).stdout).toBe((await cli(['images'])).stdout);
    expect((await cli(['image', 'list', '-q'])).stdout).toBe((await cli(['images', '-q'])).stdout);
    const run = await cli(['container', 'run', '--rm', 'busybox', 'sh', '-c', 'echo $((6*7))']);
    expect(run.stdout).toBe('42\n');
    expect((await cli(['image', 'tag', 'busybox', 'grp/x:1'])).code).toBe(0);
    expect((await cli(['image', 'rm', 'grp/x:1'])).stdout).toBe('Untagged: grp/x:1\n');
    // container inspect looks for containers only; image inspect for images only.
    const ci = await cli(['container', 'inspect', 'busybox']);
    expect(ci.code).toBe(1);
    expect(ci.stderr).toMatch(/no such container: busybox/);
    expect(JSON.parse((await cli(['image', 'inspect', '--format', '{{json .RepoTags}}', 'busybox'])).stdout)).toContain('busybox:latest');
    expect((await cli(['network', 'ls', '--format', '{{.Name}} {{.Driver}}'])).stdout).toBe('bridge bridge\nhost host\nnone null\n');
    const help = await cli(['container', '--help']);
    expect(help.stdout).toMatch(/^ {2}ls\|ps /m);
    expect(help.stdout).toMatch(/^ {2}prune /m);
    const top = await cli(['--help']);
    for (const g of ['container', 'image', 'network', 'system']) expect(top.stdout).toMatch(new RegExp(`^  ${g} `, 'm'));
  });
});
