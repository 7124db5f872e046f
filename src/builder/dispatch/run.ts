/**
 * RUN: the command line (shell or exec form, heredoc scripts), its cache key (mount sources from
 * other stages and the context included), and the layer step that runs it in the sandbox with the
 * stage's env, user and workdir and its RUN --mount mounts.
 */
import { ROOTLESS_ENV } from '../../host/userns.js';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ImgbuildError } from '../../errors.js';
import { monotonicMs, PhaseClock } from '../../phases.js';
import { runSandbox } from '../../sandbox/sandbox.js';
import { mountAll, sandboxRootfs, unmount, type SandboxRootfs } from '../../snapshots/mount.js';
import type { BindMount, Run } from '../frontend/instructions.js';
import { planCopy, planDigest, type SourceTree } from './copy.js';
import { resolveInRoot, resolveProcessUser } from './fs-root.js';
import { inUserNamespace, withUpperInRange } from './run-userns.js';
import { INIT_FILES, lineWriter, networkFiles, RunFailedError, sandboxSpec, type BuildNetwork } from './run-step.js';
import { checkEntitlements, defaultStepNetwork, DEFAULT_RUN_SANDBOX, hostsFile, isResolutionFailure, noNetworkHint, proxyEnv, sandboxKey, StepNetworks, stepResolvConf } from './run-network.js';
import { cacheMountId, mountTarget, prepareRunMounts, sshTargets, withCacheLocks } from './mounts.js';
import { loadBase } from './base-image.js';
import type { ImageState } from './image-state.js';
import { createWorkdir, layerStep, workdirStep } from './layer-step.js';
import { ensureSnapshot, withHostMount, withImageRoot } from './snapshots.js';
import { commandArgs, envGet, keyBase, runEnv, shellOf, type StageCtx } from './stage.js';

/** Where a `RUN <<EOF` script with a `#!` line is bound: /dev is the sandbox's own tmpfs. */
const HEREDOC_SCRIPT_PATH = '/dev/.imgbuild-heredoc';

export async function dispatchRun(s: StageCtx, ins: Run, label: string): Promise<void> {
  const env = s.env;
  let args: string[];
  let createdBy: string;
  /** A heredoc script with its own interpreter (`#!`), run as a file bound into /dev. */
  let script: string | undefined;
  const hd = ins.heredocs;
  if (ins.command.form === 'shell' && hd.length > 0) {
    const cmd = ins.command.command.trim();
    const only = hd.length === 1 && /^<<-?["']?[A-Za-z0-9_.-]+["']?$/.test(cmd) ? hd[0] : undefined;
    if (only && !only.content.startsWith('#!')) {
      args = [...shellOf(s), only.content];
    } else if (only) {
      // A script with its own interpreter: run it as a file (BuildKit does the same).
      script = only.content;
      args = [HEREDOC_SCRIPT_PATH];
    } else {
      args = [...shellOf(s), `${ins.command.command}\n${hd.map((h) => `${h.content}${h.name}\n`).join('')}`];
    }
  } else {
    args = commandArgs(s, ins.command);
  }
  createdBy = `RUN ${script !== undefined ? ins.original.split('\n')[0] : args.join(' ')}`;
  const argNames = [...s.args.keys()].filter((k) => envGet(s, k) === undefined);
  if (argNames.length) createdBy = `RUN |${argNames.length} ${argNames.map((k) => `${k}=${s.args.get(k) ?? ''}`).join(' ')} ${createdBy.slice(4)}`;
  const network: BuildNetwork = ins.network === 'host' ? 'host' : ins.network === 'none' ? 'none' : env.network;
  const sandbox = env.runSandbox ?? DEFAULT_RUN_SANDBOX;
  checkEntitlements(ins, sandbox.allow, env.network);
  const mountsForKey = ins.mounts.map((m) => (m.type === 'secret' ? { type: 'secret', id: m.id, target: m.target, env: m.env } : m));
  // `from=` names a stage, else an image (from the store, or pulled), as COPY --from does.
  const fromImages = new Map<string, ImageState>();
  const fromImage = async (from: string): Promise<ImageState> => {
    let img = fromImages.get(from);
    if (!img) {
      img = (await env.stage(from, s.stage)) ?? (await loadBase(env, from, env.platform));
      fromImages.set(from, img);
    }
    return img;
  };
  const fromChains: string[] = [];
  for (const m of ins.mounts) {
    if ((m.type === 'bind' || m.type === 'cache') && m.from) fromChains.push((await fromImage(m.from)).chainId ?? 'empty');
  }
  let contextDigest: string | undefined;
  // The context's walk and hashing for a bind mount of it (the cache key) are the step's time too.
  const phases = new PhaseClock();
  if (ins.mounts.some((m) => m.type === 'bind' && !m.from) && env.context.dir) {
    const tree: SourceTree = { root: env.context.dir, kind: 'context', ignore: env.context.ignore, statCache: env.context.stat };
    const sources = ins.mounts.filter((m) => m.type === 'bind' && !m.from).map((m) => (m as { source?: string }).source ?? '.');
    contextDigest = planDigest(await phases.time('context', () => planCopy({ sources, tree, hash: true, ...(env.signal ? { signal: env.signal } : {}) })));
  }
  const workdir = s.image.config.config?.WorkingDir || '/';
  // The build's cache mounts, exported with its cache whether this step runs or not.
  for (const m of ins.mounts) if (m.type === 'cache') env.cacheMounts?.use(cacheMountId(m, workdir));
  // Mount targets are placeholders in the snapshot's init layer, so the sandbox creating them
  // never leaves empty dirs or files in the step's layer.
  const targets = await mountPlaceholders(ins, workdir, async () => false);
  const placeholders = async (): Promise<{ files: string[]; dirs: string[] }> => {
    const p = await mountPlaceholders(ins, workdir, async (m) => {
      if (m.from) return withImageRoot(env, await fromImage(m.from), (root) => isFileIn(root, m.source ?? '/'));
      return env.context.dir !== undefined && isFileIn(env.context.dir, m.source ?? '/');
    });
    return { files: [...INIT_FILES, ...p.files], dirs: p.dirs };
  };
  // A placeholder at, above or below a WORKDIR still to be made would make it look present, and
  // it would never reach the layer: the WORKDIRs get their own layer first.
  const pending = (s.pendingWorkdirs ?? [{ path: workdir }]).map((w) => w.path);
  const overlaps = (p: string): boolean => pending.some((w) => p === w || p.startsWith(`${w}/`) || w.startsWith(`${p}/`));
  if (s.workdirPending && [...targets.dirs, ...targets.files].some(overlaps)) await workdirStep(s);
  const keyParts = keyBase(s, { kind: 'run', args, heredocs: hd, mounts: mountsForKey, network, security: ins.security, ...sandboxKey(sandbox) }, {
    shell: shellOf(s),
    content: JSON.stringify({ fromChains, contextDigest }),
  });
  const userSpec = s.image.config.config?.User ?? '';
  const stepEnv = runEnv(s);
  // Proxy build args reach RUN without an ARG line and stay out of history and cache keys (BuildKit).
  stepEnv.push(...proxyEnv(env.buildArgs, stepEnv));
  // The first ssh mount's socket is SSH_AUTH_SOCK, unless the stage sets one (BuildKit's llb exec).
  const sshSock = [...sshTargets(ins.mounts).values()][0];
  if (sshSock !== undefined && !stepEnv.some((e) => e.startsWith('SSH_AUTH_SOCK='))) stepEnv.push(`SSH_AUTH_SOCK=${sshSock}`);
  const workdirPending = s.workdirPending;
  await layerStep(s, label, keyParts, createdBy, async (active, log) => {
    const scratch = await mkdtemp(join(env.tmpDir, 'run-'));
    const viewKeys: { key: string; dir: string }[] = [];
    let scriptFile: string | undefined;
    try {
      const sn = await env.snapshotter();
      // Name lookups and the WORKDIR mkdir need the rootfs on the host (only when needed).
      let user = { uid: 0, gid: 0, additionalGids: [] as number[] };
      const numeric = /^(\d+)(?::(\d+))?$/.exec(userSpec);
      const needUserLookup = userSpec !== '' && userSpec !== 'root' && !(numeric && numeric[2] !== undefined);
      if (needUserLookup || workdirPending) {
        await withHostMount(env, active.mounts, async (root) => {
          if (workdirPending) await createWorkdir(s, root);
          if (needUserLookup) user = await resolveProcessUser(root, userSpec);
        }, active.phases);
      } else if (numeric) {
        user = { uid: Number(numeric[1]), gid: Number(numeric[2]), additionalGids: [] };
      }
      // The primary group is among the process's groups too (BuildKit, containerd since CVE-2023-25173).
      user = { ...user, additionalGids: [user.gid, ...user.additionalGids.filter((g) => g !== user.gid)] };
      if (script !== undefined) {
        scriptFile = join(scratch, 'script');
        await writeFile(scriptFile, script);
        await chmod(scriptFile, 0o755);
      }
      const prepared = await prepareRunMounts(ins.mounts, {
        storeRoot: env.root,
        scratch,
        contextDir: env.context.dir,
        fromRoot: async (from) => {
          const st = await fromImage(from);
          const dir = await mkdtemp(join(scratch, 'from-'));
          // Materialise the stage's rootfs read-only through a view mount kept for the step.
          const parent = await ensureSnapshot(env, st);
          if (parent) {
            const vkey = `build-view-${randomBytes(8).toString('hex')}`;
            await mountAll(await sn.view(vkey, parent, { lease: env.store.lease }), dir);
            viewKeys.push({ key: vkey, dir });
          }
          return dir;
        },
        secrets: env.secrets,
        ...(env.ssh ? { ssh: env.ssh } : {}),
        ...(env.cacheMounts ? { cacheMounts: env.cacheMounts, phases: active.phases } : {}),
        workdir,
      });
      const extra = scriptFile
        ? [{ type: 'bind' as const, source: scriptFile, destination: HEREDOC_SCRIPT_PATH, options: ['rbind', 'ro'] }]
        : [];
      // The first RUN probes what isolation the host allows; the others find it settled.
      const isolation = (await active.phases.time('isolation', async () => env.isolation?.())) ?? 'oci';
      // Rootless, no bridge can be made: a user-mode helper's network stands in for it. Under
      // chroot isolation (a pod, where neither can be made) the step shares the pod's network,
      // which is the pod's own already (kaniko's RUN, buildah's chroot isolation).
      const mode = network === 'default' ? (isolation === 'chroot' ? 'host' : defaultStepNetwork(Boolean(process.env[ROOTLESS_ENV]))) : network;
      // The step's namespace, veth and lease go in the finally, whatever happened.
      const nets = env.networks ?? new StepNetworks(env.tmpDir, { spare: false, ...(env.signal ? { signal: env.signal } : {}) });
      const net = await active.phases.time('network', () => nets.acquire(mode));
      // A fuse-overlayfs rootfs is mounted here for the step and unmounted after it (the sandbox
      // binds it); any other passes through.
      let live: SandboxRootfs | undefined;
      try {
        // The sandbox's mount of the rootfs is its last: volatile where the kernel allows, so
        // that the flush runs beside the layer's hashing rather than in the umount before it.
        const volatile = sn.volatileMounts?.(active.mounts);
        live = await active.phases.time('mount', () => sandboxRootfs(volatile ?? active.mounts, env.signal ? { signal: env.signal } : {}));
        const files = await networkFiles(join(scratch, 'etc'), {
          hosts: hostsFile(sandbox.hostname, sandbox.extraHosts, net.gateway),
          resolvConf: await stepResolvConf(mode, sandbox.dns),
          hostname: sandbox.hostname,
        });
        const range = env.idRange ? await env.idRange.get() : undefined;
        const plain = sandboxSpec({
          isolation,
          rootfs: live.rootfs,
          args,
          env: [...stepEnv, ...prepared.env],
          cwd: workdir,
          user,
          network: mode === 'host' ? 'host' : network,
          ...(net.netnsPath ? { netnsPath: net.netnsPath } : {}),
          hostname: sandbox.hostname,
          rlimits: sandbox.ulimits,
          ...(sandbox.shmSize ? { shmSize: sandbox.shmSize } : {}),
          insecure: ins.security === 'insecure',
          mounts: [...files, ...extra, ...prepared.mounts],
        });
        const spec = range ? inUserNamespace(plain, range) : plain;
        const overlay = active.mounts.some((m) => m.type === 'overlay');
        if (range && !overlay && !sn.inPlace) {
          throw new ImgbuildError('NOT_IMPLEMENTED', 'build --userns=auto needs the overlay or vfs storage driver: a fuse-overlayfs rootfs cannot be idmapped');
        }
        const upper = range && overlay ? await sn.upperDir(active.key) : undefined;
        // A step without a network that failed to resolve a name is told so.
        let unresolved = false;
        const out = lineWriter((line) => {
          if (mode === 'none' && !unresolved && isResolutionFailure(line)) unresolved = true;
          log(line);
        });
        const sandboxed = (): ReturnType<typeof runSandbox> => timeSandbox(active.phases, (onExec) => runSandbox(spec, { stdout: out, stderr: out, onExec, ...(env.signal ? { signal: env.signal } : {}), ...(net.lifeline ? { lifeline: net.lifeline } : {}) }));
        const r = await withCacheLocks(prepared.locks, () => (range ? withUpperInRange(upper, range, sandboxed, env.signal ? { signal: env.signal } : {}) : sandboxed()));
        await new Promise<void>((resolve) => out.end(resolve));
        if (r.exitCode !== 0 || r.signal) {
          throw new RunFailedError(args.join(' '), r.exitCode, r.signal, unresolved ? noNetworkHint(ins.network === 'none') : undefined);
        }
        // A kernel overlay rootfs mounted without `volatile` in the sandbox's own mount
        // namespace, which ended with its last process: that umount flushed the upper file
        // system (measured: 200 MB written by the RUN left nothing for a flush after it).
        if (overlay && !volatile) active.unmounted();
      } finally {
        net.release();
        if (nets !== env.networks) await nets.close();
        if (prepared.secretDir) await rm(prepared.secretDir, { recursive: true, force: true });
        await Promise.all((prepared.agents ?? []).map((a) => a.close()));
        // The step's processes are gone: ours is the last copy, unmounted now, its data flushed.
        if (live) await active.phases.time('mount', () => live!.release());
      }
    } finally {
      for (const v of viewKeys.splice(0)) {
        await unmount(v.dir).catch(() => {});
        await (await env.snapshotter()).remove(v.key).catch(() => {});
      }
      await rm(scratch, { recursive: true, force: true }).catch(() => {});
    }
  }, { init: placeholders, phases });
  s.workdirPending = false;
}

/**
 * The RUN --mount targets as placeholder files and dirs: a file where a file is bound (which
 * `isFile` tells for a bind's source), and for secrets.
 */
async function mountPlaceholders(ins: Run, workdir: string, isFile: (m: BindMount) => Promise<boolean>): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const m of ins.mounts) {
    if (m.type === 'secret') {
      if (m.target || !m.env) files.push(posix.resolve('/', m.target ?? `/run/secrets/${m.id ?? ''}`));
      continue;
    }
    if (m.type === 'ssh') {
      files.push(sshTargets(ins.mounts).get(m)!);
      continue;
    }
    const target = mountTarget(m.target, workdir);
    if (m.type === 'bind' && (await isFile(m))) files.push(target);
    else dirs.push(target);
  }
  return { files, dirs };
}

/** Whether a path in a source root is there and is not a directory. */
async function isFileIn(root: string, path: string): Promise<boolean> {
  const st = await stat(await resolveInRoot(root, path)).catch(() => undefined);
  return st !== undefined && !st.isDirectory();
}

/**
 * Times a sandbox run as 'sandbox', its set-up (the helper's namespaces, mounts and credentials,
 * until the command execs), then 'command', the command itself until it exited. A run whose
 * command never exec'd is all set-up.
 */
async function timeSandbox<T>(phases: PhaseClock, run: (onExec: (atMs: number) => void) => Promise<T>): Promise<T> {
  const started = monotonicMs();
  let execAt: number | undefined;
  try {
    return await run((t) => {
      execAt = t;
    });
  } finally {
    const end = monotonicMs();
    const split = execAt === undefined ? end : Math.min(Math.max(execAt, started), end);
    phases.span('sandbox', started, split);
    if (execAt !== undefined) phases.span('command', split, end);
  }
}
