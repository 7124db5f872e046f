/**
 * The tools on a rootless container's filesystem and processes, as the unprivileged `imgbuild-ci`
 * user (test/helpers/rootless.ts): `cp` both ways, `diff`, `export`, `top` and `commit` of a
 * RUNNING container, whose files only its own user namespace may reach, and of a stopped one.
 * Owners inside (root, 1000) must come out as the container sees them, never as the host's
 * subordinate ids; nothing may stay mounted or running afterwards (cleanup checks).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useUserEnv, type TestUser, type UserEnv } from '../helpers/rootless.js';

let user: TestUser;
let env: UserEnv;
useUserEnv((u, e) => {
  user = u;
  env = e;
});

/** `path uid/gid` of every entry of a tar file (GNU tar's numeric listing). */
function owners(tarFile: string): Map<string, string> {
  const l = spawnSync('tar', ['--numeric-owner', '-tvf', tarFile], { encoding: 'utf8' });
  expect(l.status).toBe(0);
  const out = new Map<string, string>();
  for (const line of l.stdout.split('\n')) {
    const m = /^\S+\s+(\d+\/\d+)\s.*\s(\S+)$/.exec(line);
    if (m) out.set(m[2]!.replace(/^\.\//, '').replace(/\/$/, ''), m[1]!);
  }
  return out;
}

describe('rootless container tools', () => {
  it('cp both ways, diff, export, top and commit of a running container, then of the stopped one', async () => {
    await env.importBusybox();
    const run = await env.cli(['run', '-d', '--name', 't1', 'busybox', 'sh', '-c', 'mkdir -p /home/app && echo hi > /home/app/f && chown -R 1000:1000 /home/app && rm /etc/group && touch /ready && exec sleep 100']);
    expect(run.stderr).toBe('');
    for (let i = 0; i < 100 && (await env.cli(['exec', 't1', 'test', '-e', '/ready'])).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));

    // Into the running container: a tar on stdin whose file belongs to 1000 keeps it with -a.
    const src = join(env.dir, 'src');
    spawnSync('mkdir', ['-p', src]);
    spawnSync('sh', ['-c', `echo in > ${src}/in.txt`]);
    const tar = spawnSync('tar', ['-C', src, '--owner=1000', '--group=1001', '-cf', '-', 'in.txt']).stdout;
    const into = await env.cli(['cp', '-a', '-', 't1:/home/app'], { input: tar });
    expect(into.stderr).toBe('');
    expect(into.code).toBe(0);
    const hostFile = await env.file('host.txt', 'from host\n');
    expect((await env.cli(['cp', hostFile, 't1:/host.txt'])).code).toBe(0);
    const seen = await env.cli(['exec', 't1', 'stat', '-c', '%n %u:%g', '/home/app/in.txt', '/host.txt', '/home/app/f']);
    expect(seen.stdout).toBe('/home/app/in.txt 1000:1001\n/host.txt 0:0\n/home/app/f 1000:1000\n');

    // Out of it: to a file, and as a tar with the owners inside.
    const out = join(env.dir, 'out.txt');
    const o = await env.cli(['cp', 't1:/home/app/f', out]);
    expect(o.stderr).toBe('');
    expect(readFileSync(out, 'utf8')).toBe('hi\n');
    // The copy on the host belongs to the user who asked for it.
    expect(statSync(out).uid).toBe(user.uid);
    const asTar = join(env.dir, 'app.tar');
    // (The tar holds ASCII only: headers and text files, so the text round trip keeps its bytes.)
    const t = await env.cli(['cp', 't1:/home/app', '-']);
    expect(t.stderr).toBe('');
    writeFileSync(asTar, t.stdout);
    expect(Object.fromEntries(owners(asTar))).toEqual({ app: '1000/1000', 'app/f': '1000/1000', 'app/in.txt': '1000/1001' });

    // diff and export while it runs.
    const d = await env.cli(['diff', 't1']);
    expect(d.stderr).toBe('');
    expect(d.stdout.split('\n')).toEqual(expect.arrayContaining(['D /etc/group', 'A /home/app', 'A /home/app/f', 'A /home/app/in.txt', 'A /host.txt']));
    const exported = join(env.dir, 'running.tar');
    const e = await env.cli(['export', '-o', exported, 't1']);
    expect(e.stderr).toBe('');
    const ex = owners(exported);
    expect([ex.get('home/app'), ex.get('home/app/in.txt'), ex.get('bin/busybox'), ex.get('host.txt'), ex.has('etc/group')]).toEqual(['1000/1000', '1000/1001', '0/0', '0/0', false]);
    expect([...ex.values()].filter((v) => !/^(0|1000)\/(0|1000|1001)$/.test(v))).toEqual([]);

    const top = await env.cli(['top', 't1']);
    expect(top.stderr).toBe('');
    expect(top.stdout).toMatch(/^UID\s+PID\s+PPID/);
    expect(top.stdout).toMatch(/\n\S+\s+\d+\s+\d+\s.*sleep 100\n/);

    const c = await env.cli(['commit', 't1', 'tools:1']);
    expect(c.stderr).toBe('');
    const check = await env.cli(['run', '--rm', 'tools:1', 'sh', '-c', 'stat -c "%u:%g" /home/app/in.txt; test -e /etc/group || echo gone']);
    expect(check.stdout).toBe('1000:1001\ngone\n');

    // Stopped: the same commands mount its layers in a namespace of their own.
    expect((await env.cli(['stop', '-t', '0', 't1'])).code).toBe(0);
    const o2 = join(env.dir, 'out2.txt');
    expect((await env.cli(['cp', 't1:/host.txt', o2])).stderr).toBe('');
    expect(readFileSync(o2, 'utf8')).toBe('from host\n');
    const stopped = join(env.dir, 'stopped.tar');
    expect((await env.cli(['export', '-o', stopped, 't1'])).stderr).toBe('');
    expect(owners(stopped).get('home/app/in.txt')).toBe('1000/1001');
    expect((await env.cli(['rm', 't1'])).code).toBe(0);
  });

  it('top and stats count every process of a container without a cgroup, exec\'s included, with the users inside', async () => {
    await env.importBusybox();
    const run = await env.cli(['run', '-d', '--name', 't2', 'busybox', 'sh', '-c', 'sleep 101 & exec sleep 100']);
    expect(run.stderr).toBe('');
    expect((await env.cli(['exec', '-d', 't2', 'sleep', '102'])).code).toBe(0);
    expect((await env.cli(['exec', '-d', '-u', '1000', 't2', 'sleep', '103'])).code).toBe(0);
    const want = ['0 sleep 100', '0 sleep 101', '0 sleep 102', '1000 sleep 103'];
    let rows: string[] = [];
    for (let i = 0; i < 50; i++) {
      const top = await env.cli(['top', 't2', '-o', 'pid,uid,args']);
      expect(top.stderr).toBe('');
      rows = top.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).slice(1).join(' ')).sort();
      if (rows.length >= want.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // The UID column is the container's (a user namespace with the user's mapping), not the host's.
    expect(rows).toEqual(want);
    const st = await env.cli(['stats', '--no-stream', '--format', '{{.PIDs}} {{.MemUsage}}', 't2']);
    expect(st.stderr).toBe('');
    const [pids, mem] = st.stdout.trim().split(' ');
    expect(pids).toBe('4');
    expect(mem).toMatch(/^[1-9][0-9.]*(KiB|MiB)$/);
    expect((await env.cli(['rm', '-f', 't2'])).code).toBe(0);
  });
});
