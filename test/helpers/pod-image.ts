/**
 * The root filesystem of a pod that runs imgbuild, made here without a registry or network: the
 * busybox rootfs (scripts/busybox-rootfs.sh), the host's node with its shared libraries, the tools
 * imgbuild starts (coreutils cp and touch for the copying snapshotter, util-linux unshare for the
 * user namespace), and imgbuild installed from its `npm pack` tarball with the production
 * node_modules and the native helper built by the package's own install script, and uidmap's
 * newuidmap/newgidmap. A user `builder` (1000:1000) owns /home/builder and has a range of
 * subordinate ids. `podman run --rootfs` runs it as it is: no image
 * store entry is made, so nothing of podman's is left behind but the containers (run with --rm).
 */
import { spawnSync } from 'node:child_process';
import { appendFile, chmod, copyFile, cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { REPO_ROOT } from './cli.js';

export const POD_USER = { name: 'builder', uid: 1000, gid: 1000, home: '/home/builder' };
/** Where the package is installed in the rootfs (its bin/imgbuild is linked from /usr/local/bin). */
export const POD_PREFIX = '/opt/imgbuild';
/** The user's subordinate ids in the pod's /etc/subuid and /etc/subgid. */
export const POD_SUBID_START = 200000;

function sh(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(cwd ? { cwd } : {}), maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** Copies a host executable and its shared libraries into the rootfs, at the same paths. */
async function copyExecutable(rootfs: string, path: string): Promise<void> {
  const real = realpathSync(path);
  await mkdir(join(rootfs, dirname(path)), { recursive: true });
  await copyFile(real, join(rootfs, path));
  await chmod(join(rootfs, path), 0o755);
  await copyLibraries(rootfs, real);
}

/** Copies the shared libraries ldd names for `file` into the rootfs, at the same paths. */
async function copyLibraries(rootfs: string, file: string): Promise<void> {
  for (const line of sh('ldd', [file]).split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    const lib = m[1]!;
    const dest = join(rootfs, lib);
    if (existsSync(dest)) continue;
    await mkdir(dirname(dest), { recursive: true });
    await copyFile(realpathSync(lib), dest);
  }
}

/** The production packages of the lock file that are installed here (optional platform ones may not be). */
async function productionPackages(): Promise<string[]> {
  const lock = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([p, v]) => p.startsWith('node_modules/') && !v.dev && existsSync(join(REPO_ROOT, p)))
    .map(([p]) => p);
}

/** Makes the pod's rootfs in `dir` (which must not exist); takes a few seconds. */
export async function makePodRootfs(dir: string, scratch: string): Promise<void> {
  sh('sh', [join(REPO_ROOT, 'scripts', 'busybox-rootfs.sh'), dir]);
  await copyExecutable(dir, process.execPath.startsWith('/usr/') ? process.execPath : '/usr/bin/node');
  for (const tool of ['/usr/bin/cp', '/usr/bin/touch', '/usr/bin/unshare']) await copyExecutable(dir, tool);
  // uidmap, and a range for the user. With file capabilities, not setuid (as podman's own
  // in-container image has them): a setuid newuidmap runs as uid 0, which is not the owner of the
  // new user namespace, and then needs CAP_SYS_ADMIN, which a pod does not have. No capability is
  // gained under no_new_privs or without CAP_SETUID in the bounding set: the single-id fallback.
  for (const [tool, cap] of [['/usr/bin/newuidmap', 'cap_setuid+ep'], ['/usr/bin/newgidmap', 'cap_setgid+ep']] as const) {
    await copyExecutable(dir, tool);
    sh('setcap', [cap, join(dir, tool)]);
  }
  // The package as npm installs it: the packed files, its production dependencies, then its
  // install script (which compiles native/build/imgbuild-sandbox with the host's compiler).
  const tgz = sh('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', scratch], REPO_ROOT).trim().split('\n').pop()!;
  const prefix = join(dir, POD_PREFIX);
  await mkdir(prefix, { recursive: true });
  sh('tar', ['-xzf', join(scratch, basename(tgz)), '-C', prefix, '--strip-components=1', '--no-same-owner']);
  for (const p of await productionPackages()) await cp(join(REPO_ROOT, p), join(prefix, p), { recursive: true, dereference: true });
  sh('node', [join(prefix, 'scripts', 'native.mjs')]);
  if (!existsSync(join(prefix, 'native', 'build', 'imgbuild-sandbox'))) throw new Error('the sandbox helper was not built in the pod rootfs');
  // The native addons' own libraries (librt, libdl) besides node's.
  for (const addon of sh('find', [prefix, '-name', '*.node']).split('\n').filter(Boolean)) await copyLibraries(dir, addon);
  await mkdir(join(dir, 'usr/local/bin'), { recursive: true });
  await symlink(join(POD_PREFIX, 'bin', 'imgbuild'), join(dir, 'usr/local/bin/imgbuild'));
  const u = POD_USER;
  await appendFile(join(dir, 'etc/passwd'), `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home}:/bin/sh\n`);
  await appendFile(join(dir, 'etc/group'), `${u.name}:x:${u.gid}:\n`);
  await writeFile(join(dir, 'etc/subuid'), `${u.name}:${POD_SUBID_START}:65536\n`);
  await writeFile(join(dir, 'etc/subgid'), `${u.name}:${POD_SUBID_START}:65536\n`);
  await mkdir(join(dir, u.home), { recursive: true });
  sh('chown', [`${u.uid}:${u.gid}`, join(dir, u.home)]);
  // podman binds its own files over these; they must exist to be bound on.
  for (const f of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) if (!existsSync(join(dir, f))) await writeFile(join(dir, f), '');
}
