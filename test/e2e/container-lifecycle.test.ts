/**
 * The container lifecycle without a daemon, through the CLI on real containers: create, start
 * (again and again on the same writable layer), start -a, restart, wait, stop/kill after a
 * restart, pause/unpause, update, rename, --cidfile/--stop-signal/--stop-timeout, and a start that
 * fails leaving the container as it was with nothing of the attempt behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { leftovers, NOTHING, setupEnv, waitFor, type Env } from './containers-env.js';
import { expectOneLineError } from '../helpers/cli.js';
import { readEvents } from '../../src/store/events.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage, writeImage } from '../../src/store/images.js';
import { BUSYBOX_REF } from '../helpers/base-image.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

interface Inspected {
  Id: string;
  Name?: string;
  State: { Status: string; Running: boolean; Paused: boolean; ExitCode: number; Error: string; Pid: number };
}
async function inspect(name: string): Promise<Inspected> {
  const r = await env.cli(['inspect', name]);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as Inspected[])[0]!;
}
const status = async (name: string): Promise<string> => (await inspect(name)).State.Status;

describe('container lifecycle', () => {
  it('create makes a container that start runs, and runs again on the same writable layer', async () => {
    const c = await env.cli(['create', '--name', 'again', 'busybox', 'sh', '-c', 'echo run >> /count; wc -l < /count; exit 3']);
    expect(c.code).toBe(0);
    const id = c.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await env.cli(['ps', '-a'])).stdout).toMatch(/again\n?$/m);
    expect(await status('again')).toBe('created');
    expect(leftovers(id)).toEqual(NOTHING); // nothing runs or is held before start

    expect((await env.cli(['start', 'again'])).stdout).toBe('again\n');
    // wait is another process than the one that started it; it prints the exit code.
    expect((await env.cli(['wait', 'again'])).stdout).toBe('3\n');
    expect((await env.cli(['logs', 'again'])).stdout).toBe('1\n');
    // Started again: the file written by the first run is there (same upper dir).
    const a = await env.cli(['start', '-a', 'again']);
    expect(a.code).toBe(3);
    expect(a.stdout).toBe('2\n');
    expect((await env.cli(['start', id.slice(0, 12)])).code).toBe(0);
    expect((await env.cli(['wait', 'again'])).stdout).toBe('3\n');
    expect((await env.cli(['logs', 'again'])).stdout).toBe('1\n2\n3\n');
    const i = await inspect('again');
    expect(i.State).toMatchObject({ Status: 'exited', ExitCode: 3, Running: false });
    expect((await env.cli(['rm', 'again'])).code).toBe(0);
    expect(leftovers(id)).toEqual(NOTHING);
  });

  it('start -i passes stdin to a container created with -i', async () => {
    expect((await env.cli(['create', '-i', '--name', 'reader', 'busybox', 'sh', '-c', 'read l; echo got:$l'])).code).toBe(0);
    const r = await env.cli(['start', '-a', '-i', 'reader'], { input: 'hello\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'got:hello\n' });
    await env.cli(['rm', 'reader']);
  });

  it('restart stops (after --stop-timeout) and starts again; stop and kill work on the restarted container', async () => {
    const script = 'trap "" TERM; trap "exit 5" USR1; echo up >> /starts; while true; do sleep 0.1; done';
    const id = (await env.cli(['run', '-d', '--name', 'stubborn', '--stop-timeout', '1', 'busybox', 'sh', '-c', script])).stdout.trim();
    await waitFor(async () => (await env.cli(['exec', 'stubborn', 'cat', '/starts'])).stdout === 'up\n' || undefined);
    const pid1 = (await inspect('stubborn')).State.Pid;
    expect((await env.cli(['restart', 'stubborn'])).stdout).toBe('stubborn\n');
    const after = await inspect('stubborn');
    expect(after.State.Running).toBe(true);
    expect(after.State.Pid).not.toBe(pid1);
    await waitFor(async () => (await env.cli(['exec', 'stubborn', 'cat', '/starts'])).stdout === 'up\nup\n' || undefined);
    // stop -s with a signal it handles ends it without waiting for the timeout's SIGKILL.
    expect((await env.cli(['stop', '-s', 'SIGUSR1', 'stubborn'])).code).toBe(0);
    expect((await env.cli(['wait', 'stubborn'])).stdout).toBe('5\n');
    expect(await status('stubborn')).toBe('exited');
    expect((await env.cli(['start', 'stubborn'])).code).toBe(0);
    expect((await env.cli(['kill', 'stubborn'])).code).toBe(0);
    expect((await env.cli(['wait', 'stubborn'])).stdout).toBe('137\n');
    // The exited container held its last run's cgroup until now; rm leaves nothing.
    expect((await env.cli(['rm', 'stubborn'])).code).toBe(0);
    expect(leftovers(id)).toEqual(NOTHING);
  });

  it('a start that fails leaves the container created or exited, with nothing of the attempt behind', async () => {
    const id = (await env.cli(['create', '--network', 'bridge', '--name', 'broken', 'busybox', 'no-such-command'])).stdout.trim();
    const s = await env.cli(['start', 'broken']);
    expect(s.code).toBe(127);
    expectOneLineError(s, /^imgbuild: .*no-such-command/);
    const i = await inspect('broken');
    expect(i.State).toMatchObject({ Status: 'created', ExitCode: 127, Running: false });
    expect(i.State.Error).toMatch(/no-such-command/);
    expect(leftovers(id)).toEqual(NOTHING);
    await env.cli(['rm', 'broken']);

    // An exited container whose bind source went away: start fails (125) and it stays exited.
    const src = join(env.dir, 'bind-src');
    await mkdir(src, { recursive: true });
    const id2 = (await env.cli(['run', '-d', '--name', 'bound', '-v', `${src}:/src`, 'busybox', 'true'])).stdout.trim();
    expect((await env.cli(['wait', 'bound'])).stdout).toBe('0\n');
    await rm(src, { recursive: true });
    const s2 = await env.cli(['start', 'bound']);
    expect(s2.code).toBe(125);
    expectOneLineError(s2, /^imgbuild: /);
    expect((await inspect('bound')).State).toMatchObject({ Status: 'exited', Running: false });
    expect(leftovers(id2)).toEqual(NOTHING);
    await env.cli(['rm', 'bound']);
  });

  it('pause freezes a container, exec and unpause behave as Docker, stop kills a paused container', async () => {
    const id = (await env.cli(['run', '-d', '--name', 'frosty', 'busybox', 'sh', '-c', 'while true; do date +%s%N > /tick; sleep 0.05; done'])).stdout.trim();
    await waitFor(async () => (await env.cli(['exec', 'frosty', 'cat', '/tick'])).code === 0 || undefined);
    expect((await env.cli(['pause', 'frosty'])).stdout).toBe('frosty\n');
    expect(readFileSync(`/sys/fs/cgroup/freezer/imgbuild/${id}/freezer.state`, 'utf8').trim()).toBe('FROZEN');
    expect((await env.cli(['ps'])).stdout).toMatch(/Up .* \(Paused\)\s+frosty/);
    expect((await inspect('frosty')).State).toMatchObject({ Status: 'paused', Paused: true, Running: true });
    const ex = await env.cli(['exec', 'frosty', 'true']);
    expect(ex.code).toBe(125);
    expectOneLineError(ex, /is paused, unpause the container before exec/);
    expectOneLineError(await env.cli(['pause', 'frosty']), /already paused/);
    // A reader of its state (ps above, inspect) never thaws a paused container.
    expect(readFileSync(`/sys/fs/cgroup/freezer/imgbuild/${id}/freezer.state`, 'utf8').trim()).toBe('FROZEN');
    expect((await env.cli(['unpause', 'frosty'])).stdout).toBe('frosty\n');
    expectOneLineError(await env.cli(['unpause', 'frosty']), /is not paused/);
    expect((await inspect('frosty')).State).toMatchObject({ Status: 'running', Paused: false });
    expect((await env.cli(['exec', 'frosty', 'true'])).code).toBe(0);
    // Paused again, stop's signal waits in the frozen group; after -t the group is killed.
    expect((await env.cli(['pause', 'frosty'])).code).toBe(0);
    expect((await env.cli(['stop', '-t', '1', 'frosty'])).code).toBe(0);
    expect((await inspect('frosty')).State).toMatchObject({ Status: 'exited', Paused: false, ExitCode: 137 });
    expect((await env.cli(['rm', 'frosty'])).code).toBe(0);
    expect(leftovers(id)).toEqual(NOTHING);
  });

  it('update changes the live cgroup and a restart keeps the new limits', async () => {
    const id = (await env.cli(['run', '-d', '--name', 'limited', '-m', '64m', 'busybox', 'sleep', '300'])).stdout.trim();
    const mem = `/sys/fs/cgroup/memory/imgbuild/${id}/memory.limit_in_bytes`;
    const pids = `/sys/fs/cgroup/pids/imgbuild/${id}/pids.max`;
    const quota = `/sys/fs/cgroup/cpu/imgbuild/${id}/cpu.cfs_quota_us`;
    expect(readFileSync(mem, 'utf8').trim()).toBe(String(64 << 20));
    expect((await env.cli(['update', '-m', '96m', '--pids-limit', '40', '--cpus', '0.5', 'limited'])).stdout).toBe('limited\n');
    expect(readFileSync(mem, 'utf8').trim()).toBe(String(96 << 20));
    expect(readFileSync(pids, 'utf8').trim()).toBe('40');
    expect(readFileSync(quota, 'utf8').trim()).toBe('50000');
    expect((await env.cli(['update', '-m', '32m', 'limited'])).code).toBe(0); // lowering as well
    expect(readFileSync(mem, 'utf8').trim()).toBe(String(32 << 20));
    expect((await env.cli(['restart', '-t', '0', 'limited'])).code).toBe(0);
    expect(readFileSync(mem, 'utf8').trim()).toBe(String(32 << 20));
    expect(readFileSync(pids, 'utf8').trim()).toBe('40');
    expect(readFileSync(quota, 'utf8').trim()).toBe('50000');
    expect((await env.cli(['update', '--pids-limit', '-1', 'limited'])).code).toBe(0);
    expect(readFileSync(pids, 'utf8').trim()).toBe('max');
    expectOneLineError(await env.cli(['update', 'limited']), /provide one or more flags/);
    // --memory-swap: memory plus swap (v1 memsw), kept across a restart; without -m it is refused.
    const memsw = `/sys/fs/cgroup/memory/imgbuild/${id}/memory.memsw.limit_in_bytes`;
    expect(readFileSync(memsw, 'utf8').trim()).toBe(String(32 << 20)); // no swap by default
    expect((await env.cli(['update', '--memory-swap', '80m', 'limited'])).code).toBe(0);
    expect(readFileSync(memsw, 'utf8').trim()).toBe(String(80 << 20));
    expect((await env.cli(['restart', '-t', '0', 'limited'])).code).toBe(0);
    expect(readFileSync(memsw, 'utf8').trim()).toBe(String(80 << 20));
    expectOneLineError(await env.cli(['update', '--memory-swap', '16m', 'limited']), /at least the memory limit/);
    const noMem = await env.cli(['create', '--memory-swap', '64m', 'busybox']);
    expect(noMem.code).toBe(125);
    expectOneLineError(noMem, /needs -m/);
    expect((await env.cli(['rm', '-f', 'limited'])).code).toBe(0);
    expect(leftovers(id)).toEqual(NOTHING);
  });

  it('rename gives a container a new name, unique per store', async () => {
    expect((await env.cli(['create', '--name', 'first', 'busybox', 'true'])).code).toBe(0);
    expect((await env.cli(['create', '--name', 'second', 'busybox', 'true'])).code).toBe(0);
    expect((await env.cli(['rename', 'first', 'third'])).code).toBe(0);
    expect((await env.cli(['inspect', 'first'])).code).not.toBe(0);
    expect((await env.cli(['start', '-a', 'third'])).code).toBe(0);
    expectOneLineError(await env.cli(['rename', 'third', 'second']), /"second" is already in use/);
    expectOneLineError(await env.cli(['rename', 'third', 'bad name']), /invalid container name/);
    expect((await env.cli(['rm', 'third', 'second'])).code).toBe(0);
  });

  it('exec -d runs a command in the background and returns at once', async () => {
    const id = (await env.cli(['run', '-d', '--name', 'bg', 'busybox', 'sleep', '300'])).stdout.trim();
    const r = await env.cli(['exec', '-d', 'bg', 'sh', '-c', 'echo out; echo err >&2; sleep 0.3; echo done > /bg']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    await waitFor(async () => (await env.cli(['exec', 'bg', 'cat', '/bg'])).stdout === 'done\n' || undefined);
    // Its output went nowhere (not into the container's log).
    expect((await env.cli(['logs', 'bg'])).stdout).toBe('');
    const bad = await env.cli(['exec', '-d', 'bg', 'no-such-command']);
    expect(bad.code).toBe(127);
    expectOneLineError(bad, /no-such-command/);
    expect((await env.cli(['rm', '-f', 'bg'])).code).toBe(0);
    expect(leftovers(id)).toEqual(NOTHING);
  });

  it('container prune removes stopped containers (with until= and label= filters), image prune dangling images', async () => {
    await env.cli(['run', '--name', 'p-keep', '-l', 'keep=yes', 'busybox', 'sh', '-c', 'head -c 200000 /dev/zero > /f']);
    await env.cli(['create', '--name', 'p-created', 'busybox', 'true']);
    const running = (await env.cli(['run', '-d', '--name', 'p-running', 'busybox', 'sleep', '300'])).stdout.trim();
    const created = (await inspect('p-created')).Id;
    // Created an hour ago? None are: until=1h removes nothing.
    expect((await env.cli(['container', 'prune', '-f', '--filter', 'until=1h'])).stdout).toBe('Total reclaimed space: 0B\n');
    const r = await env.cli(['container', 'prune', '-f', '--filter', 'label!=keep']);
    expect(r.stdout).toBe(`Deleted Containers:\n${created}\n\nTotal reclaimed space: ${r.stdout.split('space: ')[1]}`);
    const kept = (await inspect('p-keep')).Id;
    const r2 = await env.cli(['container', 'prune', '--filter', 'label=keep=yes']);
    expect(r2.stdout).toMatch(new RegExp(`^Deleted Containers:\n${kept}\n\nTotal reclaimed space: 2\\d\\dkB\n$`));
    expect((await env.cli(['ps', '-aq', '--no-trunc'])).stdout).toBe(`${running}\n`);
    expectOneLineError(await env.cli(['container', 'prune', '--filter', 'name=x']), /invalid filter 'name'/);

    // An untagged image (as a build without -t leaves): image prune removes only that one.
    const committed = (await env.cli(['commit', 'p-running', 'junk:1'])).stdout.trim();
    const st = await OciStore.open(env.root);
    const base = await loadImage(st, (await st.resolve(BUSYBOX_REF))!);
    const dangling = await writeImage(st, { ...base.config, created: '2024-02-02T00:00:00Z' }, base.manifest.layers);
    await st.keepUntagged(dangling);
    await st.release();
    const ip = await env.cli(['image', 'prune', '-f']);
    expect(ip.stdout).toMatch(/^Deleted Images:\ndeleted: sha256:[0-9a-f]{64}\n\nTotal reclaimed space: \S+\n$/);
    expect(ip.stdout).not.toContain(committed);
    // -a: every image no container uses (busybox is p-running's).
    const all = await env.cli(['image', 'prune', '-a', '-f']);
    expect(all.stdout).toMatch(/untagged: junk:1\ndeleted: /);
    expect(all.stdout).not.toMatch(/busybox/);
    expect((await env.cli(['images', '-q'])).stdout.trim().split('\n')).toHaveLength(1);
    expect((await env.cli(['image', 'prune'])).stdout).toBe('Total reclaimed space: 0B\n');
    await env.cli(['rm', '-f', 'p-running']);
  });

  it('attach follows the output from now on and ends with the exit status; Ctrl-C is passed on unless --sig-proxy=false', async () => {
    await env.cli(['run', '-d', '--name', 'talky', 'busybox', 'sh', '-c', 'echo before; until [ -f /go ]; do sleep 0.05; done; echo after; echo err >&2; exit 4']);
    await waitFor(async () => (await env.cli(['logs', 'talky'])).stdout === 'before\n' || undefined);
    const child = env.spawnCli(['attach', 'talky']);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    // Once attach follows (its event is in the journal), the container goes on.
    await waitFor(async () => {
      for await (const e of readEvents(env.root)) if (e.Action === 'attach' && e.Actor.Attributes.name === 'talky') return true;
      return undefined;
    });
    await env.cli(['exec', 'talky', 'touch', '/go']);
    expect(await closed).toBe(4);
    expect(out).toBe('after\nerr\n');
    expectOneLineError(await env.cli(['attach', 'talky']), /cannot attach to a stopped container/);
    await env.cli(['rm', 'talky']);

    const script = 'trap "echo got-int; exit 3" INT; touch /ready; while true; do sleep 0.1; done';
    await env.cli(['run', '-d', '--name', 'proxied', 'busybox', 'sh', '-c', script]);
    await waitFor(async () => (await env.cli(['exec', 'proxied', 'test', '-f', '/ready'])).code === 0 || undefined);
    const attachOnce = async (args: string[]): Promise<{ code: number | null; out: string }> => {
      const child = env.spawnCli(['attach', ...args]);
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      // attach records its event once it follows the log; then the signal finds it attached.
      await waitFor(async () => {
        for await (const e of readEvents(env.root)) if (e.Action === 'attach' && e.Actor.Attributes.name === 'proxied' && !seenAttach.has(e.timeNano)) return seenAttach.add(e.timeNano);
        return undefined;
      });
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      return { code, out };
    };
    const seenAttach = new Set<string>();
    // --sig-proxy=false: Ctrl-C detaches, the container runs on.
    expect((await attachOnce(['--sig-proxy=false', 'proxied'])).code).toBe(130);
    expect((await inspect('proxied')).State.Running).toBe(true);
    // By default it is passed on: the container's trap ends it, and attach ends with its status.
    expect(await attachOnce(['proxied'])).toEqual({ code: 3, out: 'got-int\n' });
    expect((await inspect('proxied')).State).toMatchObject({ Running: false, ExitCode: 3 });
    await env.cli(['rm', 'proxied']);
  });

  it('attach passes stdin to a container run with -d -i, and ctrl-p ctrl-q detaches from a -t one', async () => {
    const id = (await env.cli(['run', '-d', '-i', '--name', 'listener', 'busybox', 'sh', '-c', 'while read l; do echo got:$l; [ "$l" = bye ] && exit 6; done'])).stdout.trim();
    const a = await env.cli(['attach', 'listener'], { input: 'hi\nbye\n' });
    expect(a).toMatchObject({ code: 6, stdout: 'got:hi\ngot:bye\n' });
    // Started again, it reads from a new FIFO; --no-stdin attaches the output only.
    expect((await env.cli(['start', 'listener'])).code).toBe(0);
    const b = await env.cli(['attach', 'listener'], { input: 'bye\n' });
    expect(b).toMatchObject({ code: 6, stdout: 'got:bye\n' });
    await env.cli(['rm', 'listener']);
    expect(leftovers(id)).toEqual(NOTHING);

    await env.cli(['run', '-d', '-i', '-t', '--name', 'term', 'busybox', 'sh']);
    const d = await env.cli(['attach', 'term'], { input: 'echo one\n\x10\x11' });
    expect(d.code).toBe(0);
    expect((await inspect('term')).State.Running).toBe(true);
    // A ctrl-p not followed by ctrl-q reaches the container.
    const e = await env.cli(['attach', 'term'], { input: 'echo \x10x\nexit 5\n' });
    expect(e.code).toBe(5);
    expect((await env.cli(['logs', 'term'])).stdout).toContain('one');
    await env.cli(['rm', 'term']);
  });

  it('records its actions in the event journal', async () => {
    expect((await env.cli(['run', '-d', '--name', 'told', 'busybox', 'sleep', '300'])).code).toBe(0);
    for (const args of [['pause', 'told'], ['unpause', 'told'], ['update', '--pids-limit', '30', 'told'], ['rename', 'told', 'retold'], ['restart', '-t', '0', 'retold']]) {
      expect((await env.cli(args)).code).toBe(0);
    }
    expect((await env.cli(['rm', '-f', 'retold'])).code).toBe(0);
    const seen: string[] = [];
    for await (const e of readEvents(env.root)) if (e.Type === 'container' && /told/.test(e.Actor.Attributes.name ?? '')) seen.push(e.Action);
    for (const a of ['create', 'start', 'pause', 'unpause', 'update', 'rename', 'kill', 'die', 'stop', 'restart', 'destroy']) expect(seen).toContain(a);
    expect(seen.indexOf('pause')).toBeLessThan(seen.indexOf('unpause'));
    expect(seen.lastIndexOf('start')).toBeLessThan(seen.indexOf('restart'));
  });

  it('--cidfile and --stop-signal', async () => {
    const cid = join(env.dir, 'cid');
    const id = (await env.cli(['run', '-d', '--cidfile', cid, '--name', 'usr', '--stop-signal', 'USR1', 'busybox', 'sh', '-c', 'trap "echo usr1; exit 7" USR1; touch /ready; while true; do sleep 0.1; done'])).stdout.trim();
    expect(readFileSync(cid, 'utf8')).toBe(id);
    const again = await env.cli(['create', '--cidfile', cid, 'busybox', 'true']);
    expect(again.code).toBe(125);
    expectOneLineError(again, /container ID file found/);
    // (pid 1 ignores a signal it has no handler for: wait until the trap is set)
    await waitFor(async () => (await env.cli(['exec', 'usr', 'test', '-f', '/ready'])).code === 0 || undefined);
    expect((await env.cli(['stop', 'usr'])).code).toBe(0);
    expect((await env.cli(['logs', 'usr'])).stdout).toBe('usr1\n');
    expect((await inspect('usr')).State.ExitCode).toBe(7);
    await env.cli(['rm', 'usr']);
    await rm(cid);
    // A creation that fails leaves no cidfile behind.
    expect((await env.cli(['create', '--cidfile', cid, 'no-such-image:x'])).code).toBe(125);
    expect(existsSync(cid)).toBe(false);
    expectOneLineError(await env.cli(['create', '--stop-signal', 'SIGNOPE', 'busybox']), /invalid signal/);
  });
});
