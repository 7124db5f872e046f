/**
 * `run --privileged`, `--device`, `--device-cgroup-rule`, `--group-add`, `--shm-size`, `--label`
 * and `--security-opt seccomp=PROFILE.json` on real containers: what each changes inside, the
 * device cgroup that lets a `--device` node be used as asked, Docker's default profile against
 * a profile of one's own, and one-line failures (125) that leave nothing behind.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, okOut } from '../helpers/cli.js';
import { leftovers, NOTHING, setupEnv, type Env } from './containers-env.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

async function run(args: string[], script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return env.cli(['run', '--rm', ...args, 'busybox', 'sh', '-c', script]);
}

function profile(name: string, p: object): string {
  const f = join(env.dir, name);
  writeFileSync(f, JSON.stringify(p));
  return f;
}

describe('run --privileged', () => {
  it('has every capability the host has, no filter, no masks, a writable /sys and the host devices', async () => {
    const host = /CapBnd:\s*(\w+)/.exec(await import('node:fs').then((fs) => fs.readFileSync('/proc/self/status', 'utf8')))![1];
    const r = await run(['--privileged'], 'grep -E "^(CapEff|Seccomp):" /proc/self/status; grep " /sys " /proc/mounts; grep -c /proc/ /proc/mounts; test -c /dev/kmsg && echo kmsg; echo x > /dev/kmsg && echo written; mknod /tmp/k c 1 11 && echo y > /tmp/k && echo made');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`CapEff:\t${host}`);
    expect(r.stdout).toMatch(/Seccomp:\s*0/);
    expect(r.stdout).toMatch(/sysfs \/sys sysfs rw,/);
    expect(r.stdout).toMatch(/^0$/m); // nothing mounted over /proc paths (masks, read-only binds)
    expect(r.stdout).toContain('kmsg\nwritten\nmade');
    const plain = await run([], 'grep -E "^Seccomp:" /proc/self/status; grep " /sys " /proc/mounts; test -e /dev/kmsg || echo no-kmsg; mknod /tmp/k c 1 11 && echo y > /tmp/k || echo inert');
    expect(plain.stdout).toMatch(/Seccomp:\s*2/);
    expect(plain.stdout).toMatch(/sysfs \/sys sysfs ro,/);
    expect(plain.stdout).toContain('no-kmsg\ninert');
  });
});

describe('run --device', () => {
  it('makes the node at the asked path, usable only as the device cgroup allows', async () => {
    const ro = await run(['--device', '/dev/kmsg:/dev/k:r'], 'ls -l /dev/k; echo x > /dev/k; echo w=$?');
    expect(ro.stdout).toMatch(/^c.* 1,\s+11 .*\/dev\/k$/m);
    expect(ro.stdout).toContain('w=1');
    expect(ro.stderr).toMatch(/Operation not permitted/);
    const rw = await run(['--device', '/dev/kmsg:/dev/k'], 'echo x > /dev/k; echo w=$?');
    expect(rw.stdout).toContain('w=0');
    // --device-cgroup-rule: a node the container makes itself (on a tmpfs mounted with dev, as
    // the nodev /dev keeps mknod'd nodes inert) is usable as the rule says
    const w = await run(['--device-cgroup-rule', 'c 1:11 w', '--tmpfs', '/d:dev'], 'mknod /d/k c 1 11 && echo x > /d/k; echo w=$?');
    expect(w.stdout).toContain('w=0');
    const r = await run(['--device-cgroup-rule', 'c 1:11 r', '--tmpfs', '/d:dev'], 'mknod /d/k c 1 11 && echo x > /d/k; echo w=$?');
    expect(r.stdout).toContain('w=1');
  });

  it('gives a detached container its devices group, removed with it', async () => {
    const d = await env.cli(['run', '-d', '--device', '/dev/kmsg:/dev/k:w', 'busybox', 'sleep', '60']);
    expect(d.code).toBe(0);
    const id = d.stdout.trim();
    const list = (await import('node:fs')).readFileSync(`/sys/fs/cgroup/devices/imgbuild/${id}/devices.list`, 'utf8');
    expect(list).toContain('c 1:11 w');
    expect(list).not.toContain('a *:* rwm');
    const w = await env.cli(['exec', id, 'sh', '-c', 'echo x > /dev/k; echo w=$?']);
    expect(w.stdout).toBe('w=0\n');
    expect((await env.cli(['rm', '-f', id])).code).toBe(0);
    expect(leftovers(id, env.root)).toEqual(NOTHING);
  });

  it('refuses a missing device or a malformed rule in one line, status 125, leaving nothing', async () => {
    for (const [args, re] of [
      [['--device', '/dev/nonexistent'], /^imgbuild: INVALID_ARGUMENT: --device \/dev\/nonexistent: no such device$/],
      [['--device', '/etc/passwd'], /^imgbuild: INVALID_ARGUMENT: --device \/etc\/passwd: \/etc\/passwd is not a device$/],
      [['--device-cgroup-rule', 'x 1:2 r'], /^imgbuild: INVALID_ARGUMENT: invalid --device-cgroup-rule "x 1:2 r"/],
    ] as const) {
      const r = await run([...args], 'true');
      expect(r.code).toBe(125);
      expectOneLineError(r, re);
    }
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');
  });
});

describe('run --group-add, --shm-size, --label', () => {
  it('adds groups by name or gid, sizes /dev/shm, and shows labels in inspect', async () => {
    const r = await run(['--group-add', 'daemon', '--group-add', '4242', '--shm-size', '8m'], 'id -G; df -k /dev/shm | tail -1');
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')[0]!.split(' ')).toEqual(expect.arrayContaining(['0', '1', '4242']));
    expect(r.stdout).toMatch(/shm\s+8192\s/);
    writeFileSync(join(env.dir, 'labels'), '# comment\nfrom.file=1\nboth=file\n');
    const c = await env.cli(['run', '-d', '--name', 'labelled', '-l', 'a=b', '--label', 'both=flag', '--label-file', join(env.dir, 'labels'), 'busybox', 'true']);
    expect(c.code).toBe(0);
    const doc = JSON.parse(okOut(await env.cli(['inspect', 'labelled'])))[0];
    expect(doc.Config.Labels).toMatchObject({ a: 'b', both: 'flag', 'from.file': '1' });
    await env.cli(['rm', '-f', 'labelled']);
    const bad = await run(['--group-add', 'nosuchgroup'], 'true');
    expect(bad.code).toBe(125);
    expectOneLineError(bad, /^imgbuild: INVALID_ARGUMENT: --group-add nosuchgroup: no such group/);
  });
});

describe('run --security-opt seccomp=PROFILE.json', () => {
  it('applies a Docker-format profile: errno, arguments, unknown names skipped; unconfined allows', async () => {
    const deny = profile('deny-mkdir.json', {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['mkdir', 'mkdirat', 'no_such_syscall'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
        // chmod to mode 0700 only: EACCES (13); other modes pass
        { names: ['chmod', 'fchmodat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 1, value: 0o700, op: 'SCMP_CMP_EQ' }] },
      ],
    });
    const r = await run(['--security-opt', `seccomp=${deny}`], 'mkdir /x; echo m=$?; touch /f; chmod 700 /f; echo c700=$?; chmod 600 /f; echo c600=$?');
    expect(r.stdout).toBe('m=1\nc700=1\nc600=0\n');
    expect(r.stderr).toMatch(/mkdir: can't create directory '\/x': Operation not permitted/);
    expect(r.stderr).toMatch(/chmod: \/f: Permission denied/);
    const u = await run(['--security-opt', 'seccomp=unconfined'], 'mkdir /x; echo m=$?');
    expect(u.stdout).toBe('m=0\n');
  });

  it("the default is Docker's: CAP_SYS_ADMIN's syscalls open with the capability", async () => {
    const d = await run([], 'unshare -U true; echo u=$?; mkdir /x; echo m=$?');
    expect(d.stdout).toBe('u=1\nm=0\n');
    const a = await run(['--cap-add', 'SYS_ADMIN'], 'unshare -m true; echo u=$?');
    expect(a.stdout).toBe('u=0\n');
  });

  it('a malformed profile is one line naming the problem, status 125, nothing left', async () => {
    const cases: [string, RegExp][] = [
      [profile('bad1.json', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_BOGUS' }] }), /syscalls\[0\]: "SCMP_ACT_BOGUS" is not a valid action$/],
      [profile('bad2.json', { syscalls: [] }), /defaultAction is missing or not a string$/],
      [profile('bad3.json', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 9, value: 1, op: 'SCMP_CMP_EQ' }] }] }), /syscalls\[0\]\.args\[0\]\.index must be 0 to 5$/],
    ];
    writeFileSync(join(env.dir, 'bad4.json'), '{"defaultAction"');
    cases.push([join(env.dir, 'bad4.json'), /seccomp profile: not JSON: /]);
    for (const [f, re] of cases) {
      const r = await run(['--name', 'badprofile', '--security-opt', `seccomp=${f}`], 'true');
      expect(r.code).toBe(125);
      expectOneLineError(r, re);
    }
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');
    expect(leftovers('badprofile', env.root)).toEqual(NOTHING);
  });
});
