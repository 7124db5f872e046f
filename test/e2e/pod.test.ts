/**
 * imgbuild inside an unprivileged container, what a Kubernetes pod gives: `podman run` as a
 * non-root user, no --privileged, no added capabilities, podman's default seccomp profile and
 * masked /proc. The package is installed from its `npm pack` tarball in a rootfs made here
 * (helpers/pod-image.ts). podman runs with `--network host` only so that the pod reaches the test
 * registry on 127.0.0.1 (a pod reaches its registry through its own network); RUN steps get a
 * network namespace of their own either way.
 *
 * The main test builds a Dockerfile with FROM (busybox loaded from an oci-archive), RUN (writes
 * files, deletes one, chowns one to another user) and COPY, pushes it with credentials from a
 * mounted docker config.json, and the host pulls it and checks content and owners. The others
 * record what each container option gives (docs/kubernetes.md maps them onto securityContext).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, chown, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makePodRootfs, POD_USER } from '../helpers/pod-image.js';
import { DEFAULT_PROFILE } from '../../src/sandbox/seccomp/default-profile.js';

const podmanMissing = spawnSync('podman', ['--version']).error ? 'skipped: podman is not installed (scripts/setup.sh installs it)' : undefined;

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let rootfs: string;
let work: string;
let reg: TestRegistry;
let hostRoot: string;
let dockerConfig: string;
const names: string[] = [];

interface PodResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `script` with sh in a new container of the pod rootfs as the pod user, with a fresh $HOME (an emptyDir). */
async function pod(options: string[], script: string): Promise<PodResult> {
  const home = join(tmp.dir, `home-${names.length}`);
  await mkdir(join(home, '.docker'), { recursive: true });
  // The registry credentials, as a Secret mounted at $HOME/.docker/config.json would give them.
  await writeFile(join(home, '.docker', 'config.json'), await readFile(join(dockerConfig, 'config.json')));
  spawnSync('chown', ['-R', `${POD_USER.uid}:${POD_USER.gid}`, home]);
  const name = `imgbuild-pod-test-${process.pid}-${names.length}`;
  names.push(name);
  const args = [
    'run', '--rm', '--name', name,
    // What podman needs on this machine (not a security option).
    '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
    '--network', 'host',
    '--user', `${POD_USER.uid}:${POD_USER.gid}`, '-e', `HOME=${POD_USER.home}`, '-v', `${home}:${POD_USER.home}`, '-v', `${work}:/work:ro`,
    ...options,
    '--rootfs', rootfs, 'sh', '-c', script,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('podman', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

describe.skipIf(podmanMissing !== undefined)(`imgbuild in an unprivileged podman container${podmanMissing ? ` (${podmanMissing})` : ''}`, () => {
  beforeAll(async () => {
    tmp = await makeTmp('imgbuild-pod-');
    rootfs = join(tmp.dir, 'rootfs');
    await makePodRootfs(rootfs, tmp.dir);
    // The base image as an oci-archive, and the build context, readable by the pod user.
    work = join(tmp.dir, 'work');
    hostRoot = join(tmp.dir, 'host-store');
    await ensureBusybox(hostRoot);
    await mkdir(join(work, 'ctx'), { recursive: true });
    const saved = await runCli(['save', '-o', join(work, 'busybox.tar'), 'busybox:latest'], { root: hostRoot });
    expect(saved.code, saved.stderr).toBe(0);
    await writeFile(join(work, 'ctx', 'Dockerfile'), [
      'FROM busybox',
      'RUN mkdir /app && echo hello > /app/a && echo gone > /app/b && rm /app/b && echo mine > /app/own && chown 1234:1234 /app/own',
      'COPY hello.txt /app/hello.txt',
      '',
    ].join('\n'));
    await writeFile(join(work, 'ctx', 'hello.txt'), 'from the context\n');
    await chown(join(work, 'busybox.tar'), POD_USER.uid, POD_USER.gid);
    reg = await startRegistry({ mode: 'basic' });
    dockerConfig = join(tmp.dir, 'docker-config');
    await mkdir(dockerConfig);
    const [user, pass] = Object.entries(reg.users)[0]!;
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${user}:${pass}`).toString('base64') } } }));
  }, 120_000);

  afterAll(async () => {
    // Containers are --rm; one left by a killed run is removed by its own name.
    for (const n of names) spawnSync('podman', ['rm', '-f', '--ignore', n]);
    await reg?.stop();
    await tmp?.cleanup();
  });

  it('default podman security: build with RUN under chroot isolation, push, and the host pulls what was built', async () => {
    const ref = `${reg.host}/pod/app:1`;
    const r = await pod([], `set -e
      imgbuild load -q -i /work/busybox.tar
      imgbuild build --progress plain -t ${ref} /work/ctx
      imgbuild push -q ${ref}
      imgbuild info --format '{{.Isolation}} {{.Snapshotter}} {{.Rootless}}'`);
    expect(r.code, r.stderr).toBe(0);
    // Named once, with why: podman masks /proc, so no procfs of its own can be mounted.
    expect(r.stderr.match(/\[internal\] RUN isolation: chroot \(auto\)$/gm)).toHaveLength(1);
    expect(r.stderr).toMatch(/full isolation is not available here: sandbox init: mount: proc on \/proc: EPERM/);
    // newuidmap worked: the full mapping, no warning.
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('chroot overlayfs true');

    const env = { DOCKER_CONFIG: dockerConfig };
    const pulled = await runCli(['pull', '-q', ref], { root: hostRoot, env });
    expect(pulled.code, pulled.stderr).toBe(0);
    const run = await runCli(['run', '--rm', ref, 'sh', '-c', 'ls /app; cat /app/a /app/hello.txt; stat -c "%n %u:%g" /app /app/a /app/own /app/hello.txt'], { root: hostRoot });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split('\n')).toEqual([
      'a', 'hello.txt', 'own',
      'hello', 'from the context',
      '/app 0:0', '/app/a 0:0', '/app/own 1234:1234', '/app/hello.txt 0:0', '',
    ]);
    expect((await runCli(['rmi', ref], { root: hostRoot })).code).toBe(0);
  });

  it('no-new-privileges (allowPrivilegeEscalation: false): newuidmap is powerless, the single-id mapping builds RUN', async () => {
    const r = await pod(['--security-opt', 'no-new-privileges'], `set -e
      imgbuild load -q -i /work/busybox.tar
      printf 'FROM busybox\\nRUN echo x > /x && cat /proc/self/uid_map\\n' | imgbuild build --progress plain -
      imgbuild info --format '{{.Isolation}}'`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^imgbuild: warning: the subordinate ids of user builder cannot be mapped: no_new_privs is set/m);
    // The step's root is the pod user alone.
    expect(r.stderr).toMatch(new RegExp(`^#\\d+ [\\d.]+\\s+0\\s+${POD_USER.uid}\\s+1$`, 'm'));
    expect(r.stdout.trim().split('\n').at(-1)).toBe('chroot');
  });

  it('all capabilities dropped (drop: [ALL]): no newuidmap, the single-id mapping; RUN still builds (pivot_root, not the filtered chroot(2))', async () => {
    const r = await pod(['--cap-drop', 'ALL'], `set -e
      imgbuild load -q -i /work/busybox.tar
      printf 'FROM busybox\\nRUN echo x > /x\\n' | imgbuild build -q -`);
    expect(r.code, r.stderr).toBe(0);
    expect([...new Set(r.stderr.trim().split('\n'))]).toEqual([
      "imgbuild: warning: the subordinate ids of user builder cannot be mapped: the capability bounding set has no CAP_SETUID or CAP_SETGID (Kubernetes: capabilities drop ALL) (meanwhile only builder's own id is mapped: files of an image's other users become root's)",
    ]);
  });

  it('a setuid newuidmap (Debian uidmap as installed) is refused without CAP_SYS_ADMIN: the user alone is mapped, said by each command (load, build)', async () => {
    // Bound over the image's file-capability copies, as an image installing the package would have them.
    const setuid = join(tmp.dir, 'setuid');
    await mkdir(setuid, { recursive: true });
    const binds: string[] = [];
    for (const t of ['newuidmap', 'newgidmap']) {
      await copyFile(`/usr/bin/${t}`, join(setuid, t));
      await chmod(join(setuid, t), 0o4755);
      binds.push('-v', `${join(setuid, t)}:/usr/bin/${t}:ro`);
    }
    const r = await pod(binds, `set -e
      imgbuild load -q -i /work/busybox.tar
      printf 'FROM busybox\\nRUN cat /proc/self/uid_map\\n' | imgbuild build --progress plain -`);
    expect(r.code, r.stderr).toBe(0);
    // Known before trying (the kernel asks a setuid newuidmap, uid 0, for CAP_SYS_ADMIN): nothing else on stderr.
    const warning = "imgbuild: warning: the subordinate ids of user builder cannot be mapped: a setuid newuidmap needs CAP_SYS_ADMIN, which the capability bounding set lacks (give newuidmap and newgidmap file capabilities instead: setcap cap_setuid+ep, cap_setgid+ep) (meanwhile only builder's own id is mapped: files of an image's other users become root's)";
    expect(r.stderr.split('\n').filter((l) => !l.startsWith('#') && !l.startsWith('slowest steps:') && l !== '')).toEqual([warning, warning]);
    expect(r.stderr).toMatch(new RegExp(`^#\\d+ [\\d.]+\\s+0\\s+${POD_USER.uid}\\s+1$`, 'm'));
  });

  it('what each option gives: unmasked /proc alone still chroot (seccomp refuses sethostname); with seccomp unconfined, oci', async () => {
    const unmasked = await pod(['--security-opt', 'unmask=/proc/*'], `imgbuild info --format '{{.Isolation}}: {{.IsolationReason}}'`);
    expect(unmasked.code, unmasked.stderr).toBe(0);
    expect(unmasked.stdout.trim()).toBe('chroot: sandbox init: sethostname: probe: EPERM');
    const full = await pod(['--security-opt', 'unmask=/proc/*', '--security-opt', 'seccomp=unconfined'], `set -e
      imgbuild load -q -i /work/busybox.tar
      printf 'FROM busybox\\nRUN cat /proc/1/comm && hostname\\n' | imgbuild build --progress plain -
      imgbuild info --format '{{.Isolation}}'`);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).not.toMatch(/RUN isolation:/);
    // Its own pid namespace and procfs, its own hostname: what the host's builds get.
    expect(full.stderr).toMatch(/^#\d+ [\d.]+ sh\n#\d+ [\d.]+ buildkitsandbox$/m);
    expect(full.stdout.trim().split('\n').at(-1)).toBe('rootless');
  });

  it('root without CAP_SYS_ADMIN (runAsUser: 0): a user namespace mapping every id to itself; RUN shares the pod network', async () => {
    const r = await pod(['--user', '0:0'], `set -e
      imgbuild load -q -i /work/busybox.tar
      printf 'FROM busybox\\nRUN chown 1234 /bin && stat -c "owner %%u" /bin && echo "interfaces $(grep -c : /proc/net/dev)" && cat /proc/self/uid_map\\n' | imgbuild build --progress plain -`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[internal\] RUN isolation: chroot \(auto\)\n#\d+ [\d.]+ full isolation is not available here: sandbox parent: clone: namespaces 0x[0-9a-f]+: EPERM/);
    expect(r.stderr).toMatch(/^#\d+ [\d.]+ owner 1234$/m);
    expect(r.stderr).toMatch(/^#\d+ [\d.]+\s+0\s+0\s+4294967295$/m);
    // The pod's own interfaces (--network host here: the machine's), not a namespace with lo alone.
    const n = Number(/^#\d+ [\d.]+ interfaces (\d+)$/m.exec(r.stderr)?.[1]);
    expect(n).toBeGreaterThan(1);
  });

  it('a profile that also refuses pivot_root: the step is chrooted (chroot(2)) and still builds', async () => {
    // podman's own profile without pivot_root, as a stricter Localhost profile might be.
    const podmanProfile = JSON.parse(await readFile('/usr/share/containers/seccomp.json', 'utf8')) as { syscalls: { names?: string[] }[] };
    for (const rule of podmanProfile.syscalls) if (rule.names) rule.names = rule.names.filter((n) => n !== 'pivot_root');
    const profile = join(tmp.dir, 'no-pivot-root.json');
    await writeFile(profile, JSON.stringify(podmanProfile));
    const r = await pod(['--security-opt', `seccomp=${profile}`], `set -e
      imgbuild load -q -i /work/busybox.tar
      printf 'FROM busybox\\nRUN echo chrooted > /made && cat /made\\n' | imgbuild build --progress plain -`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^#\d+ [\d.]+ chrooted$/m);
  });

  it("Docker's default seccomp profile (Kubernetes' RuntimeDefault) refuses the user namespace: one error line", async () => {
    const profile = join(tmp.dir, 'docker-default.json');
    await writeFile(profile, JSON.stringify(DEFAULT_PROFILE));
    const r = await pod(['--security-opt', `seccomp=${profile}`], 'imgbuild images');
    // `images` runs as the user itself, outside any namespace: the store is readable.
    expect(r.code, r.stderr).toBe(0);
    const b = await pod(['--security-opt', `seccomp=${profile}`], 'imgbuild load -i /work/busybox.tar');
    expect(b.code).toBe(125);
    expect(b.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^imgbuild: FAILED_PRECONDITION: cannot make a user namespace: unshare: .*Operation not permitted \(a seccomp profile refuses it without CAP_SYS_ADMIN, .*docs\/kubernetes\.md\)$/),
    ]);
  });
});
