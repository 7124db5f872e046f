/**
 * A container's directory is an OCI bundle that plain `runc run --bundle DIR` runs as it is on
 * disk: its overlay among config.json's mounts over the empty `rootfs` dir, its limits in
 * `linux.resources`, its cgroup path; runc makes that cgroup with the limits, and nothing is
 * left on the host when it ends. The config validates against the runtime-spec schema.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciStore } from '../../src/store/store.js';
import { createContainer } from '../../src/containers/create.js';
import { runtimeConfigValidator } from '../conformance/validate-runtime.js';
import { leftovers, NOTHING, setupEnv, waitFor, type Env } from './containers-env.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

const cg = (ctrl: string, id: string, file: string): string => join('/sys/fs/cgroup', ctrl, 'imgbuild', id, file);

describe('the container bundle', () => {
  it('runs under plain runc as it is, with its limits in the cgroup runc makes, leaving nothing', async () => {
    const store = await OciStore.open(env.root);
    const rec = await createContainer(store, {
      image: 'busybox',
      name: 'bundled',
      cmd: ['sh', '-c', 'echo from-bundle > /made-here; cat /made-here; ls /dev/kmsg; sleep 30'],
      memory: 64 * 1024 * 1024,
      cpus: 0.5,
      cpuShares: 512,
      pidsLimit: 42,
      devices: ['/dev/kmsg'],
    });
    const dir = join(env.root, 'containers', rec.id);
    // `update` keeps the bundle's limits in step with the container's
    expect((await env.cli(['update', '--pids-limit', '43', 'bundled'])).code).toBe(0);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const validate = runtimeConfigValidator();
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
    expect(config.root.path).toBe('rootfs');
    expect(readdirSync(join(dir, 'rootfs'))).toEqual([]);
    expect(config.mounts[0]).toMatchObject({ destination: '/', type: 'overlay' });
    expect(config.linux.cgroupsPath).toBe(`/imgbuild/${rec.id}`);
    expect(config.linux.devices).toEqual([expect.objectContaining({ path: '/dev/kmsg', type: 'c', major: 1, minor: 11 })]);

    const state = join(env.dir, 'runc-state');
    const id = `imgbuild-bundle-${process.pid}`;
    const child = spawn('runc', ['--root', state, 'run', '--bundle', dir, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const ended = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await waitFor(() => out.includes('/dev/kmsg') || undefined, 20_000).catch(() => {
        throw new Error(`runc did not start the bundle: ${err}`);
      });
      expect(out).toBe('from-bundle\n/dev/kmsg\n');
      // the cgroup runc made from linux.cgroupsPath, with linux.resources
      expect(readFileSync(cg('memory', rec.id, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(64 * 1024 * 1024));
      expect(readFileSync(cg('cpu', rec.id, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000');
      expect(readFileSync(cg('cpu', rec.id, 'cpu.shares'), 'utf8').trim()).toBe('512');
      expect(readFileSync(cg('pids', rec.id, 'pids.max'), 'utf8').trim()).toBe('43');
      const devices = readFileSync(cg('devices', rec.id, 'devices.list'), 'utf8');
      expect(devices).toContain('c 1:11 rwm');
      expect(devices).toContain('c 1:3 rwm');
      expect(devices).not.toContain('a *:* rwm');
    } finally {
      spawnSync('runc', ['--root', state, 'kill', id, 'KILL']);
      await ended;
      spawnSync('runc', ['--root', state, 'delete', '-f', id]);
    }
    // the container's files went to its own upper dir, and nothing is left on the host
    expect(readdirSync(state)).toEqual([]);
    expect(readdirSync(join(dir, 'rootfs'))).toEqual([]);
    expect(leftovers(rec.id, env.root)).toEqual(NOTHING);
    expect(existsSync(cg('memory', rec.id, ''))).toBe(false);
    // imgbuild still has the container, and removes it whole
    expect((await env.cli(['ps', '-a'])).stdout).toContain('bundled');
    const rm = await env.cli(['rm', '-f', 'bundled']);
    expect(rm.code).toBe(0);
    expect(leftovers(rec.id, env.root)).toEqual(NOTHING);
  });

  it('carries --privileged as Docker has it: every device allowed, the host devices, no filter or masks', async () => {
    const store = await OciStore.open(env.root);
    const rec = await createContainer(store, { image: 'busybox', name: 'priv-bundle', cmd: ['sh', '-c', 'echo x > /dev/kmsg && grep " /sys " /proc/mounts'], privileged: true });
    const config = JSON.parse(readFileSync(join(env.root, 'containers', rec.id, 'config.json'), 'utf8'));
    const validate = runtimeConfigValidator();
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
    expect(config.linux.resources.devices).toEqual([{ allow: false, access: 'rwm' }, { allow: true, type: 'a', access: 'rwm' }]);
    expect(config.linux.devices).toContainEqual(expect.objectContaining({ path: '/dev/kmsg' }));
    expect(config.linux.seccomp).toBeUndefined();
    expect(config.linux.maskedPaths).toEqual([]);
    expect(config.mounts.find((m: { destination: string }) => m.destination === '/sys').options).toContain('rw');
    expect(config.process.capabilities.bounding).toContain('CAP_SYS_ADMIN');
    // and runc runs it: the host's devices usable, /sys writable
    const state = join(env.dir, 'runc-state-priv');
    const r = spawnSync('runc', ['--root', state, 'run', '--bundle', join(env.root, 'containers', rec.id), `imgbuild-priv-${process.pid}`], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^sysfs \/sys sysfs rw,/);
    expect(r.status).toBe(0);
    expect(readdirSync(state)).toEqual([]);
    expect(leftovers(rec.id, env.root)).toEqual(NOTHING);
    expect((await env.cli(['rm', '-f', 'priv-bundle'])).code).toBe(0);
  });
});
