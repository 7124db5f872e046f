/**
 * RUN --mount: turning the parsed mount options into sandbox mounts.
 *  - cache: a persistent dir `<root>/cache/mounts/<id>` bind-mounted read-write, never in a layer
 *    (the bind hides whatever the target holds in the snapshot for the duration of the step);
 *  - bind: a path from the context (or a stage's rootfs), read-only unless `rw` (writes to an
 *    `rw` bind go to a scratch copy and are discarded, as in BuildKit);
 *  - secret: the file given by `--secret id=,src=` copied onto a private tmpfs dir and bound
 *    read-only; its content never reaches a layer or a cache key;
 *  - tmpfs: a fresh tmpfs;
 *  - ssh: a socket in the step's scratch dir serving the `--ssh` agent of its id (inputs/ssh-agent.ts),
 *    bound at the target; SSH_AUTH_SOCK names the first one.
 */
import { cp, mkdir, mkdtemp, readFile, writeFile, chmod, chown, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, posix } from 'node:path';
import { cacheMountsDir } from '../../store/paths.js';
import type { CacheMountSeam } from './seams.js';
import type { PhaseClock } from '../../phases.js';
import type { Mount } from '../../sandbox/spec.js';
import type { CacheMount, RunMount } from '../frontend/instructions.js';
import { ImgbuildError } from '../../errors.js';
import { withLock } from '../../atomic.js';
import { resolveInRoot } from './fs-root.js';
import type { ServedAgent, SshForwards } from '../inputs/ssh-agent.js';

export class SecretNotFoundError extends ImgbuildError {
  constructor(readonly id: string) {
    super('NOT_FOUND', `secret ${JSON.stringify(id)} is required but was not given (use --secret id=${id},src=FILE)`);
    this.name = 'SecretNotFoundError';
  }
}

export interface SecretSource { id: string; src?: string; env?: string }

/** Parses `--secret id=x,src=path` / `id=x,env=VAR` / `id=x` (src defaults to nothing). */
export function parseSecretFlag(s: string): SecretSource {
  const out: Partial<SecretSource> = {};
  for (const part of s.split(',')) {
    const i = part.indexOf('=');
    const k = (i < 0 ? part : part.slice(0, i)).trim();
    const v = i < 0 ? '' : part.slice(i + 1);
    if (k === 'id') out.id = v;
    else if (k === 'src' || k === 'source') out.src = v;
    else if (k === 'env') out.env = v;
    else if (k === 'type') {
      if (v !== 'file' && v !== 'env') throw new ImgbuildError('INVALID_ARGUMENT', `--secret: unsupported type ${v}`);
    } else throw new ImgbuildError('INVALID_ARGUMENT', `--secret: unknown key ${JSON.stringify(k)} in ${JSON.stringify(s)}`);
  }
  if (!out.id) {
    if (out.src) out.id = posix.basename(out.src);
    else throw new ImgbuildError('INVALID_ARGUMENT', `--secret needs id=: ${JSON.stringify(s)}`);
  }
  return out as SecretSource;
}

export interface PreparedMounts {
  mounts: (Mount & { destination: string })[];
  /** Environment entries from `type=secret,env=`. */
  env: string[];
  /** Cache dirs with `sharing=locked` (or `private`): the step holds their lock while it runs. */
  locks: string[];
  /** The host dir holding the step's secret files, to remove after it. */
  secretDir?: string;
  /** Agent sockets served for `type=ssh` mounts, to close after the step. */
  agents?: ServedAgent[];
}

/**
 * Where each `type=ssh` mount's socket goes: its target, else `/run/buildkit/ssh_agent.<n>`,
 * n counting the ssh mounts of the RUN (BuildKit's llb exec). The parser gives a mount without a
 * target the first one's default; a later mount with it is numbered here.
 */
export function sshTargets(list: readonly RunMount[]): Map<RunMount, string> {
  const out = new Map<RunMount, string>();
  for (const m of list) {
    if (m.type !== 'ssh') continue;
    const dflt = `/run/buildkit/ssh_agent.${out.size}`;
    out.set(m, posix.resolve('/', m.target === undefined || m.target === '/run/buildkit/ssh_agent.0' ? dflt : m.target));
  }
  return out;
}

export interface MountContext {
  storeRoot: string;
  /** Per-step scratch dir (on the host, removed after the step). */
  scratch: string;
  /** Host dir of the build context, for `type=bind` without `from`. */
  contextDir: string | undefined;
  /** Host rootfs of a stage/image named by `from` (mounted by the caller). */
  fromRoot: (from: string) => Promise<string>;
  secrets: Map<string, SecretSource>;
  /** `--ssh` agents, for `type=ssh`. */
  ssh?: SshForwards;
  workdir: string;
  /** Imported content of cache mounts, restored into empty ones. */
  cacheMounts?: CacheMountSeam;
  /** The step's clock: a restore is its 'restore' phase. */
  phases?: PhaseClock;
}

/** `<root>/cache/mounts/<32 hex>`: the directory of the cache mount `id`. */
export function cacheMountDir(root: string, id: string): string {
  return join(cacheMountsDir(root), createHash('sha256').update(id).digest('hex').slice(0, 32));
}

/** The key of a cache mount: its `id=`, else its target against WORKDIR (BuildKit). */
export function cacheMountId(m: CacheMount, workdir: string): string {
  return m.id ?? mountTarget(m.target, workdir);
}

/**
 * Where a bind, cache or tmpfs mount lands: its target against WORKDIR, no target being WORKDIR
 * itself (`--mount=ro` binds the context there); only `/` is refused (BuildKit).
 */
export function mountTarget(t: string, workdir: string): string {
  const abs = posix.resolve(workdir || '/', t);
  if (abs === '/') throw new ImgbuildError('INVALID_ARGUMENT', `invalid mount target ${JSON.stringify(abs)}`);
  return abs;
}

function absTarget(t: string, workdir: string): string {
  return posix.resolve(workdir || '/', t);
}

export async function prepareRunMounts(list: RunMount[], c: MountContext): Promise<PreparedMounts> {
  const out: PreparedMounts = { mounts: [], env: [], locks: [] };
  let secretDir: string | undefined;
  for (const m of list) {
    switch (m.type) {
      case 'cache': {
        const id = cacheMountId(m, c.workdir);
        const target = mountTarget(m.target, c.workdir);
        const dir = cacheMountDir(c.storeRoot, id);
        let created = false;
        try {
          await stat(dir);
        } catch {
          await mkdir(dir, { recursive: true, mode: m.mode ?? 0o755 });
          created = true;
        }
        if (created) {
          await chmod(dir, m.mode ?? 0o755);
          await chown(dir, m.uid ?? 0, m.gid ?? 0);
          // `from=` seeds a new cache with a stage's directory (BuildKit), once.
          if (m.from) {
            const seed = await resolveInRoot(await c.fromRoot(m.from), m.source ?? '/');
            await cp(seed, dir, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true, force: true });
          }
        }
        // An imported cache fills a mount this store never filled (builder/remote-cache/mounts.ts).
        if (c.cacheMounts) await c.cacheMounts.restore(id, dir, c.phases ? { phases: c.phases } : {});
        out.mounts.push({ type: 'bind', source: dir, destination: target, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
        // `private` would need a second dir per concurrent user; holding the lock is the safe subset.
        if (m.sharing === 'locked' || m.sharing === 'private') out.locks.push(dir);
        break;
      }
      case 'bind': {
        const target = mountTarget(m.target, c.workdir);
        let srcRoot: string;
        if (m.from) srcRoot = await c.fromRoot(m.from);
        else if (c.contextDir) srcRoot = c.contextDir;
        else throw new ImgbuildError('INVALID_ARGUMENT', 'RUN --mount=type=bind needs a build context or from=');
        let src = await resolveInRoot(srcRoot, m.source ?? '/');
        await stat(src); // a missing source fails here, before anything is copied or mounted
        if (!m.readonly) {
          // Writes are allowed but discarded: bind a scratch copy.
          const copy = join(await mkdtemp(join(c.scratch, 'rw-')), 'src');
          await cp(src, copy, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
          src = copy;
        }
        out.mounts.push({ type: 'bind', source: src, destination: target, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
        break;
      }
      case 'tmpfs': {
        const target = mountTarget(m.target, c.workdir);
        out.mounts.push({ type: 'tmpfs', source: 'tmpfs', destination: target, options: ['nosuid', 'nodev', ...(m.size ? [`size=${m.size}`] : [])] });
        break;
      }
      case 'secret': {
        const id = m.id ?? (m.target ? posix.basename(m.target) : undefined);
        if (!id) throw new ImgbuildError('INVALID_ARGUMENT', 'RUN --mount=type=secret needs id= or target=');
        const s = c.secrets.get(id);
        let value: Buffer | undefined;
        if (s?.src) value = await readFile(s.src);
        else if (s?.env !== undefined) value = Buffer.from(process.env[s.env] ?? '');
        else if (s) value = Buffer.from(process.env[s.id] ?? '');
        if (value === undefined) {
          if (m.required) throw new SecretNotFoundError(id);
          break;
        }
        if (m.env) out.env.push(`${m.env}=${value.toString('utf8')}`);
        if (m.target || !m.env) {
          const target = absTarget(m.target ?? `/run/secrets/${id}`, '/');
          if (!secretDir) {
            // Secrets live on a private tmpfs-backed dir on the host: /dev/shm is tmpfs on Linux.
            secretDir = await mkdtemp(join('/dev/shm', 'imgbuild-secret-'));
          }
          const file = join(secretDir, createHash('sha256').update(target).digest('hex').slice(0, 16));
          await writeFile(file, value, { mode: m.mode });
          await chmod(file, m.mode);
          await chown(file, m.uid, m.gid);
          out.mounts.push({ type: 'bind', source: file, destination: target, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
        }
        break;
      }
      case 'ssh': {
        // Not forwarded: skipped when optional, as BuildKit's SSHOptional is.
        const id = m.id ?? 'default';
        if (!c.ssh?.has(id)) {
          if (m.required) throw new ImgbuildError('NOT_FOUND', `no SSH key ${JSON.stringify(id)} forwarded from the client (use build --ssh ${id}[=SOCKET|KEY])`);
          break;
        }
        const agent = await c.ssh.serve(id, c.scratch, `ssh-agent.${out.agents?.length ?? 0}`, { uid: m.uid, gid: m.gid, mode: m.mode });
        (out.agents ??= []).push(agent);
        out.mounts.push({ type: 'bind', source: agent.path, destination: sshTargets(list).get(m)!, options: ['rbind', 'nosuid', 'nodev', 'noexec'] });
        break;
      }
    }
  }
  if (secretDir) out.secretDir = secretDir;
  return out;
}

/** Runs fn while holding the locks of `locked` cache mounts (in a fixed order, so no deadlock). */
export async function withCacheLocks<T>(locks: string[], fn: () => Promise<T>): Promise<T> {
  const sorted = [...new Set(locks)].sort();
  const step = (i: number): Promise<T> => (i >= sorted.length ? fn() : withLock(sorted[i] as string, () => step(i + 1)));
  return step(0);
}
