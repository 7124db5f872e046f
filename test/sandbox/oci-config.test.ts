import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toOciConfig } from '../../src/sandbox/sandbox.js';
import { makeBox, type Box } from './fixture.js';
import { runtimeConfigValidator } from '../conformance/validate-runtime.js';

let box: Box;
beforeEach(async () => {
  box = await makeBox();
});
afterEach(async () => {
  await box.cleanup();
});

describe('toOciConfig', () => {
  it('produces a runtime-spec config.json that validates against the schema', () => {
    const validate = runtimeConfigValidator();
    const spec = box.spec(['test-init', 'echo', 'hi'], {
      proc: {
        user: { uid: 1, gid: 2, additionalGids: [3] },
        rlimits: [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }],
        capabilities: ['CAP_CHOWN', 'kill'],
        noNewPrivileges: true,
        terminal: true,
      },
      namespaces: ['user', 'mount', 'pid', 'ipc', 'uts', 'net', 'cgroup'],
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      mounts: [{ destination: '/data', type: 'bind', source: '/srv', options: ['rbind', 'ro'] }],
      readonlyRootfs: true,
      netnsPath: '/run/netns/x',
      init: true,
    });
    const cfg = toOciConfig(spec) as Record<string, any>;
    expect(validate(cfg), JSON.stringify(validate.errors)).toBe(true);
    expect(cfg.process.capabilities.bounding).toEqual(['CAP_CHOWN', 'CAP_KILL']);
    expect(cfg.linux.namespaces).toContainEqual({ type: 'network', path: '/run/netns/x' });
    expect(cfg.mounts.map((m: { destination: string }) => m.destination)).toEqual([
      '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/data',
    ]);
    expect(cfg.root).toEqual({ path: 'rootfs', readonly: true });
    // Docker's default profile, resolved for the container's capabilities: an allow list
    expect(cfg.linux.seccomp.defaultAction).toBe('SCMP_ACT_ERRNO');
    const allowed = cfg.linux.seccomp.syscalls.filter((s: { action: string }) => s.action === 'SCMP_ACT_ALLOW').flatMap((s: { names: string[] }) => s.names);
    expect(allowed).toContain('mkdir');
    expect(allowed).not.toContain('keyctl');
    expect(allowed).not.toContain('mount'); // CAP_SYS_ADMIN's
    expect((toOciConfig({ ...spec, seccomp: false }) as Record<string, any>).linux.seccomp).toBeUndefined();
    // a deliberately broken config is rejected, so the check above means something
    expect(validate({ ...cfg, process: { ...cfg.process, cwd: 5 } })).toBe(false);
  });

  it('runc runs the same bundle', () => {
    const bundle = join(box.dir, 'bundle');
    mkdirSync(bundle);
    const spec = box.spec(['test-init', 'hostname', '+', 'pid', '+', 'status', 'CapEff', '+', 'id', '+', 'try-seccomp', '+', 'exit', '3'], {
      hostname: 'from-runc',
      proc: { user: { uid: 0, gid: 0, additionalGids: [7] } },
    });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(toOciConfig(spec, { rootPath: box.rootfs })));
    const id = `imgbuild-test-${basename(box.dir)}`;
    const state = join(box.dir, 'runc-state');
    const r = spawnSync('runc', ['--root', state, 'run', '--bundle', bundle, id], { encoding: 'utf8', timeout: 30_000 });
    spawnSync('runc', ['--root', state, 'delete', '-f', id]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(3);
    expect(r.stdout).toBe(
      'from-runc\npid=1 ppid=0\nCapEff:\t00000000a80425fb\nuid=0 gid=0 euid=0 groups=7\n' +
        // the exported seccomp profile refuses what the native filter refuses
        'keyctl: EPERM\nunshare user: EPERM\nunshare net: EPERM\nclone3: ENOSYS\nio_uring_setup: EPERM\nfsopen: EPERM\nfork: ok\n',
    );
  });
});
