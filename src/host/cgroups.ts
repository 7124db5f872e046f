/**
 * Per-container cgroups: detect the hierarchy (v1 per-controller trees, v2 unified), create
 * `<parent>/<id>` with memory / cpu / pids limits, read the OOM state, kill every process in the
 * group and remove it. Every function takes `cgroupRoot` (default /sys/fs/cgroup) so the v2 logic
 * can be exercised against a plain directory tree in tests.
 *
 * The sandbox places the container's first process in the paths returned here (spec.cgroupPaths)
 * before exec, so every descendant (a fork bomb included) is accounted and can be killed as a group
 * even when the imgbuild process that started it is gone.
 */
import { namespaceMembers, processesUsage } from './proc-group.js';
import { mkdir, readFile, readdir, rm, rmdir, stat, statfs, writeFile, realpath } from 'node:fs/promises';
import { exists } from '../fs.js';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImgbuildError } from '../errors.js';

export type CgroupVersion = 1 | 2;

export interface CgroupOptions {
  /** Mount point of the cgroup hierarchy (v2) or of the per-controller trees (v1). */
  cgroupRoot?: string;
  /** Directory (relative to each hierarchy root) that holds the per-container groups. */
  parent?: string;
  /** Hierarchy version; detected from cgroupRoot when omitted. */
  version?: CgroupVersion;
  /** v1: include the devices controller's group (made when device rules are given). */
  devices?: boolean;
  /**
   * v2: the topmost group (relative to cgroupRoot) whose cgroup.subtree_control this process may
   * write, from which controllers are enabled down to `parent`: the root for root, a delegated
   * subtree for a rootless CLI (rootless-cgroup.ts). Default: the root itself.
   */
  delegationRoot?: string;
}

export interface CgroupLimits {
  /** Bytes; swap growth is disabled by giving memory+swap the same limit. */
  memory?: number;
  /** Fractional CPUs, e.g. 0.5 (CFS quota over a 100 ms period). */
  cpus?: number;
  /** Maximum number of tasks (threads + processes). */
  pidsLimit?: number;
  /** Relative CPU weight, Docker's --cpu-shares (v1 cpu.shares; v2 cpu.weight, converted as runc does). */
  cpuShares?: number;
  /** Bytes of memory plus swap (Docker's --memory-swap; -1: swap unlimited); needs `memory`. Without it, no swap is used. */
  memorySwap?: number;
  /**
   * Device access rules (`c 1:3 rwm`, `a`), all denied but these: given for `--device`,
   * `--device-cgroup-rule` and `--privileged` only (otherwise the nodev /dev is the policy).
   * v1's devices controller; v2 would need a BPF program attached to the group, not made here.
   */
  devices?: string[];
}

/** What `Cgroup.usage` reads (see there). */
export interface CgroupUsage {
  cpuNs?: number;
  memory?: number;
  memoryLimit?: number;
  inactiveFile?: number;
  pids?: number;
  blockRead: number;
  blockWrite: number;
}

export class CgroupError extends ImgbuildError {
  constructor(
    message: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super('FAILED_PRECONDITION', message, options);
    this.name = 'CgroupError';
  }
}

const DEFAULT_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;
const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CFS_PERIOD_US = 100_000;

/**
 * v1 controllers a container gets a group in (those present are used): memory, cpu and pids carry
 * the limits, freezer lets a kill stop a forking group first, cpuacct and blkio count the CPU time
 * and block I/O `stats` reports (where they are co-mounted with cpu, they share its dir).
 */
const V1_CONTROLLERS = ['memory', 'cpu', 'pids', 'freezer', 'cpuacct', 'blkio'] as const;
const V2_CONTROLLERS = ['memory', 'cpu', 'pids', 'io'] as const;

/**
 * v2 when the root itself is a cgroup2 mount (or, for a tree that is not cgroupfs at all, when it
 * has a `cgroup.controllers` file); v1 otherwise (pure v1 or the hybrid layout where only
 * /sys/fs/cgroup/unified is cgroup2 — that hierarchy has no controllers worth using).
 */
export async function detectCgroupVersion(cgroupRoot = DEFAULT_ROOT): Promise<CgroupVersion> {
  try {
    const s = await statfs(cgroupRoot);
    if (s.type === CGROUP2_SUPER_MAGIC) return 2;
    if (s.type === CGROUP_SUPER_MAGIC) return 1;
  } catch (e) {
    throw new CgroupError(`cannot stat cgroup root ${cgroupRoot}: ${(e as Error).message}`, cgroupRoot, { cause: e });
  }
  return (await exists(join(cgroupRoot, 'cgroup.controllers'))) ? 2 : 1;
}

async function isRealCgroupfs(p: string): Promise<boolean> {
  try {
    const t = (await statfs(p)).type;
    return t === CGROUP2_SUPER_MAGIC || t === CGROUP_SUPER_MAGIC;
  } catch {
    return false;
  }
}

async function writeControl(dir: string, file: string, value: string): Promise<void> {
  const p = join(dir, file);
  try {
    await writeFile(p, value);
  } catch (e) {
    throw new CgroupError(`writing ${JSON.stringify(value)} to ${p}: ${(e as Error).message}`, p, { cause: e });
  }
}

async function readControl(dir: string, file: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
}

/** Parses `key value` lines (memory.events, memory.oom_control). */
function keyed(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, Number(v));
  }
  return m;
}

export class Cgroup {
  private constructor(
    readonly id: string,
    readonly version: CgroupVersion,
    readonly cgroupRoot: string,
    /** v1: controller name → group dir; v2: one entry keyed 'unified'. */
    readonly dirs: ReadonlyMap<string, string>,
    /** Without a group (none()): the container's pid 1, its only handle on the processes. */
    private readonly leader?: { pid: number; alive: () => Promise<boolean> },
  ) {}

  /** Group dirs for spec.cgroupPaths (deduplicated: co-mounted v1 controllers share one dir). */
  get paths(): string[] {
    return [...new Set(this.dirs.values())];
  }

  /**
   * No group at all: a rootless container on a host that delegates it no cgroup runs in the
   * caller's, without limits (its paths are empty, so nothing is joined, killed or removed).
   */
  static none(id: string, leader?: { pid: number; alive: () => Promise<boolean> }): Cgroup {
    return new Cgroup(id, 1, DEFAULT_ROOT, new Map(), leader);
  }

  /** Computes the group's paths without touching the filesystem beyond detection (for rm/inspect). */
  static async open(id: string, o: CgroupOptions = {}): Promise<Cgroup> {
    validateId(id);
    const cgroupRoot = o.cgroupRoot ?? DEFAULT_ROOT;
    const parent = o.parent ?? 'imgbuild';
    const version = o.version ?? (await detectCgroupVersion(cgroupRoot));
    const dirs = new Map<string, string>();
    if (version === 2) {
      dirs.set('unified', join(cgroupRoot, parent, id));
    } else {
      const seen = new Map<string, string>();
      for (const c of V1_CONTROLLERS) {
        const mount = join(cgroupRoot, c);
        if (!(await exists(mount))) continue;
        // `cpu` and `cpuacct` are often one hierarchy reached through a symlink; use one dir for it.
        const real = await realpath(mount).catch(() => mount);
        const dir = seen.get(real) ?? join(mount, parent, id);
        seen.set(real, dir);
        dirs.set(c, dir);
      }
      if (!dirs.has('memory') && !dirs.has('pids') && !dirs.has('cpu'))
        throw new CgroupError(`no usable cgroup v1 controllers under ${cgroupRoot}`, cgroupRoot);
      // A devices group exists only for containers given device rules (see CgroupLimits.devices).
      const devices = join(cgroupRoot, 'devices', parent, id);
      if (o.devices || (await exists(devices))) dirs.set('devices', devices);
    }
    return new Cgroup(id, version, cgroupRoot, dirs);
  }

  /** Creates the group (idempotent) and applies the limits. */
  static async create(id: string, limits: CgroupLimits = {}, o: CgroupOptions = {}): Promise<Cgroup> {
    const cg = await Cgroup.open(id, { ...o, devices: limits.devices !== undefined });
    const parent = o.parent ?? 'imgbuild';
    if (cg.version === 2) {
      if (limits.devices) throw new CgroupError('device rules need cgroup v1 (v2 would need a BPF device program, which imgbuild does not make)', cg.cgroupRoot);
      const dir = cg.dirs.get('unified')!;
      const parentDir = join(cg.cgroupRoot, parent);
      const top = join(cg.cgroupRoot, o.delegationRoot ?? '');
      await mkdir(parentDir, { recursive: true });
      // Delegate the controllers down to the per-container group: root (or the delegated
      // subtree) → parent → group.
      const available = new Set((await readControl(top, 'cgroup.controllers'))?.trim().split(/\s+/) ?? []);
      const wanted = V2_CONTROLLERS.filter((c) => available.has(c));
      // Needed only for the limits asked for: a root we may not delegate from (a cgroup
      // namespace whose root holds processes refuses with EBUSY) still runs unlimited containers.
      const needed = new Set<string>([
        ...(limits.memory !== undefined ? ['memory'] : []),
        ...(limits.cpus !== undefined || limits.cpuShares !== undefined ? ['cpu'] : []),
        ...(limits.pidsLimit !== undefined ? ['pids'] : []),
      ]);
      for (const c of needed) {
        if (!available.has(c)) throw new CgroupError(`the ${c} controller is not available in ${top}`, top);
      }
      if (wanted.length > 0) {
        const enable = wanted.map((c) => `+${c}`).join(' ');
        for (const d of [top, parentDir]) {
          const current = new Set((await readControl(d, 'cgroup.subtree_control'))?.trim().split(/\s+/) ?? []);
          if (wanted.every((c) => current.has(c))) continue;
          try {
            await writeControl(d, 'cgroup.subtree_control', enable);
          } catch (e) {
            if ([...needed].some((c) => !current.has(c))) throw e;
          }
        }
      }
      await mkdir(dir, { recursive: true });
      await cg.setLimits(limits);
      return cg;
    }
    for (const dir of cg.paths) await mkdir(dir, { recursive: true });
    await cg.setLimits(limits);
    return cg;
  }

  /**
   * Applies limits to the existing group (at creation, and `update` of a live container); a limit
   * left undefined is not touched. pidsLimit -1 lifts the limit.
   */
  async setLimits(limits: CgroupLimits): Promise<void> {
    if (this.dirs.size === 0) {
      if (Object.values(limits).some((v) => v !== undefined)) throw new CgroupError(`container ${this.id.slice(0, 12)} has no cgroup of its own (rootless on this host): its limits cannot be changed`, '');
      return;
    }
    if (this.version === 2) {
      const dir = this.dirs.get('unified')!;
      if (limits.memory !== undefined) {
        await writeControl(dir, 'memory.max', String(limits.memory));
        // swap.max is swap only (not memory+swap as in v1): 0 keeps the container from growing into swap.
        const swap = limits.memorySwap === undefined ? '0' : limits.memorySwap < 0 ? 'max' : String(Math.max(0, limits.memorySwap - limits.memory));
        if ((await isRealCgroupfs(dir)) ? await exists(join(dir, 'memory.swap.max')) : true) await writeControl(dir, 'memory.swap.max', swap);
        else if (limits.memorySwap !== undefined) throw new CgroupError('--memory-swap needs swap accounting (memory.swap.max)', dir);
      }
      if (limits.cpus !== undefined) await writeControl(dir, 'cpu.max', `${cpuQuota(limits.cpus)} ${CFS_PERIOD_US}`);
      if (limits.cpuShares !== undefined) await writeControl(dir, 'cpu.weight', String(cpuWeight(limits.cpuShares)));
      if (limits.pidsLimit !== undefined) await writeControl(dir, 'pids.max', limits.pidsLimit < 0 ? 'max' : String(limits.pidsLimit));
      return;
    }
    const mem = this.dirs.get('memory');
    if (limits.memory !== undefined) {
      if (!mem) throw new CgroupError('--memory needs the v1 memory controller', this.cgroupRoot);
      // memsw is memory+swap; the same value as the memory limit means no swap use. The kernel
      // requires memsw >= memory at every step: raising, memsw goes first; lowering, it follows.
      // Absent without swap accounting.
      // --memory-swap sets memsw itself (-1: unlimited).
      const memsw = await exists(join(mem, 'memory.memsw.limit_in_bytes'));
      if (limits.memorySwap !== undefined && !memsw) throw new CgroupError('--memory-swap needs swap accounting (memory.memsw.limit_in_bytes)', mem);
      const swapTo = limits.memorySwap === undefined ? String(limits.memory) : limits.memorySwap < 0 ? '-1' : String(limits.memorySwap);
      const cur = Number((await readControl(mem, 'memory.limit_in_bytes'))?.trim() ?? NaN);
      const raising = memsw && !(limits.memory <= cur);
      if (raising) await writeControl(mem, 'memory.memsw.limit_in_bytes', swapTo);
      await writeControl(mem, 'memory.limit_in_bytes', String(limits.memory));
      if (memsw && !raising) await writeControl(mem, 'memory.memsw.limit_in_bytes', swapTo);
    }
    if (limits.cpus !== undefined) {
      const cpu = this.dirs.get('cpu');
      if (!cpu) throw new CgroupError('--cpus needs the v1 cpu controller', this.cgroupRoot);
      await writeControl(cpu, 'cpu.cfs_period_us', String(CFS_PERIOD_US));
      await writeControl(cpu, 'cpu.cfs_quota_us', String(cpuQuota(limits.cpus)));
    }
    if (limits.cpuShares !== undefined) {
      const cpu = this.dirs.get('cpu');
      if (!cpu) throw new CgroupError('--cpu-shares needs the v1 cpu controller', this.cgroupRoot);
      await writeControl(cpu, 'cpu.shares', String(limits.cpuShares));
    }
    if (limits.devices !== undefined) {
      const devices = this.dirs.get('devices');
      if (!devices || !(await exists(join(this.cgroupRoot, 'devices')))) throw new CgroupError('device rules need the v1 devices controller', this.cgroupRoot);
      if (!limits.devices.includes('a *:* rwm')) await writeControl(devices, 'devices.deny', 'a');
      for (const r of limits.devices) await writeControl(devices, 'devices.allow', r);
    }
    if (limits.pidsLimit !== undefined) {
      const pids = this.dirs.get('pids');
      if (!pids) throw new CgroupError('--pids-limit needs the v1 pids controller', this.cgroupRoot);
      await writeControl(pids, 'pids.max', limits.pidsLimit < 0 ? 'max' : String(limits.pidsLimit));
    }
  }

  /** Whether any group dir of this container exists. */
  async exists(): Promise<boolean> {
    if (this.dirs.size === 0) return (await this.pids()).length > 0;
    for (const d of this.paths) if (await exists(d)) return true;
    return false;
  }

  /**
   * Host pids of every process of the container (`top`): the group's, or without a group the
   * processes of its pid 1's pid namespace, found in /proc (proc-group.ts).
   */
  async members(): Promise<number[]> {
    if (this.dirs.size > 0) return this.pids();
    return this.leader && (await this.leader.alive()) ? namespaceMembers(this.leader.pid) : [];
  }

  /** Host pids of every process in the group (union over v1 hierarchies). */
  async pids(): Promise<number[]> {
    // No group: pid 1 stands for its pid namespace (killing it kills every process in it).
    if (this.dirs.size === 0) return this.leader && (await this.leader.alive()) ? [this.leader.pid] : [];
    const out = new Set<number>();
    for (const d of this.paths) {
      const t = await readControl(d, 'cgroup.procs');
      for (const l of (t ?? '').split('\n')) if (/^\d+$/.test(l.trim())) out.add(Number(l.trim()));
    }
    return [...out];
  }

  /**
   * Whether the kernel OOM-killed a process of this group: v2 memory.events `oom_kill`, v1
   * memory.oom_control `oom_kill` (kernel ≥ 4.13). A failcnt hit alone is reclaim, not a kill.
   */
  async oomKilled(): Promise<boolean> {
    if (this.version === 2) {
      const ev = keyed(await readControl(this.dirs.get('unified')!, 'memory.events'));
      return (ev.get('oom_kill') ?? 0) > 0;
    }
    const mem = this.dirs.get('memory');
    if (!mem) return false;
    const oc = keyed(await readControl(mem, 'memory.oom_control'));
    return (oc.get('oom_kill') ?? 0) > 0;
  }

  /**
   * The group's counters as `stats` reports them (Docker's sources): CPU time (v1 cpuacct.usage,
   * v2 cpu.stat usage_usec), memory use, limit and inactive file cache (v1 memory.stat
   * total_inactive_file, v2 inactive_file), task count, and bytes read and written on block devices
   * (v1 blkio.throttle.io_service_bytes_recursive, v2 io.stat). Absent counters are undefined.
   */
  async usage(): Promise<CgroupUsage> {
    // No group: the sums over its processes (proc-group.ts).
    if (this.dirs.size === 0) return processesUsage(await this.members());
    const num = (t: string | undefined): number | undefined => (t !== undefined && /^\d+/.test(t.trim()) ? Number.parseInt(t, 10) : undefined);
    if (this.version === 2) {
      const d = this.dirs.get('unified')!;
      const [cpu, cur, max, stat, pids, io] = await Promise.all(
        ['cpu.stat', 'memory.current', 'memory.max', 'memory.stat', 'pids.current', 'io.stat'].map((f) => readControl(d, f)),
      );
      const usec = keyed(cpu).get('usage_usec');
      let read = 0;
      let write = 0;
      for (const line of (io ?? '').split('\n')) {
        for (const kv of line.trim().split(/\s+/).slice(1)) {
          const [k, v] = kv.split('=');
          if (k === 'rbytes') read += Number(v) || 0;
          if (k === 'wbytes') write += Number(v) || 0;
        }
      }
      return {
        cpuNs: usec === undefined ? undefined : usec * 1000,
        memory: num(cur),
        memoryLimit: num(max),
        inactiveFile: keyed(stat).get('inactive_file'),
        pids: num(pids),
        blockRead: read,
        blockWrite: write,
      };
    }
    const at = (c: string, f: string): Promise<string | undefined> => (this.dirs.has(c) ? readControl(this.dirs.get(c)!, f) : Promise.resolve(undefined));
    const [cpu, cur, max, stat, pids, blk, blkPlain] = await Promise.all([
      at('cpuacct', 'cpuacct.usage'),
      at('memory', 'memory.usage_in_bytes'),
      at('memory', 'memory.limit_in_bytes'),
      at('memory', 'memory.stat'),
      at('pids', 'pids.current'),
      at('blkio', 'blkio.throttle.io_service_bytes_recursive'),
      at('blkio', 'blkio.io_service_bytes_recursive'),
    ]);
    let read = 0;
    let write = 0;
    for (const line of (blk ?? blkPlain ?? '').split('\n')) {
      const [, op, v] = line.trim().split(/\s+/);
      if (op === 'Read') read += Number(v) || 0;
      if (op === 'Write') write += Number(v) || 0;
    }
    return {
      cpuNs: num(cpu),
      memory: num(cur),
      memoryLimit: num(max),
      inactiveFile: keyed(stat).get('total_inactive_file'),
      pids: num(pids),
      blockRead: read,
      blockWrite: write,
    };
  }

  /** Current memory use in bytes (for inspect/ps), when the controller is present. */
  async memoryUsage(): Promise<number | undefined> {
    const t =
      this.version === 2
        ? await readControl(this.dirs.get('unified')!, 'memory.current')
        : this.dirs.get('memory') && (await readControl(this.dirs.get('memory')!, 'memory.usage_in_bytes'));
    return t && /^\d+/.test(t) ? Number.parseInt(t, 10) : undefined;
  }

  /** Whether the group is frozen now (v1 freezer.state, v2 cgroup.events); false without a freezer. */
  async frozen(): Promise<boolean> {
    if (this.version === 1) {
      const d = this.dirs.get('freezer');
      return d !== undefined && (await readControl(d, 'freezer.state'))?.trim() === 'FROZEN';
    }
    return keyed(await readControl(this.dirs.get('unified')!, 'cgroup.events')).get('frozen') === 1;
  }

  /**
   * Freezes (or thaws) every process of the group: v1 freezer.state, v2 cgroup.freeze. Used to
   * hold a container still while its writable layer is read (commit). Resolves once the kernel
   * reports the group frozen; a no-op without a freezer.
   */
  async freeze(frozen: boolean, o: { timeoutMs?: number } = {}): Promise<boolean> {
    const v1 = this.version === 1 ? this.dirs.get('freezer') : undefined;
    const dir = v1 ?? (this.version === 2 ? this.dirs.get('unified') : undefined);
    if (!dir || !(await exists(join(dir, v1 ? 'freezer.state' : 'cgroup.freeze')))) return false;
    if (v1) await writeControl(dir, 'freezer.state', frozen ? 'FROZEN' : 'THAWED');
    else await writeControl(dir, 'cgroup.freeze', frozen ? '1' : '0');
    if (!frozen) return true;
    const deadline = Date.now() + (o.timeoutMs ?? 2_000);
    for (;;) {
      const st = v1 ? (await readControl(dir, 'freezer.state'))?.trim() : keyed(await readControl(dir, 'cgroup.events')).get('frozen') === 1 ? 'FROZEN' : '';
      if (st === 'FROZEN') return true;
      if (Date.now() > deadline) throw new CgroupError(`${dir} did not freeze within ${o.timeoutMs ?? 2_000} ms`, dir);
      await sleep(5);
    }
  }

  /**
   * Sends `signal` to every process in the group. For SIGKILL the group is frozen first (v2
   * cgroup.kill when available, else freezer) so a forking process cannot outrun the loop, and the
   * call returns once the group is empty or `timeoutMs` passes.
   */
  async kill(signal: NodeJS.Signals | number = 'SIGKILL', o: { timeoutMs?: number } = {}): Promise<void> {
    const isKill = signal === 'SIGKILL' || signal === 9;
    if (!isKill) {
      for (const pid of await this.pids()) signalPid(pid, signal);
      return;
    }
    const deadline = Date.now() + (o.timeoutMs ?? 5_000);
    if (this.version === 2) {
      const dir = this.dirs.get('unified')!;
      if ((await isRealCgroupfs(dir)) && (await exists(join(dir, 'cgroup.kill')))) {
        await writeControl(dir, 'cgroup.kill', '1').catch(() => {});
      } else if (!(await isRealCgroupfs(dir))) {
        // A plain tree (tests): record the request the way the kernel interface would take it.
        if (await exists(dir)) await writeControl(dir, 'cgroup.kill', '1');
      }
    }
    const freezer = this.version === 1 ? this.dirs.get('freezer') : undefined;
    const v2freeze = this.version === 2 && (await exists(join(this.dirs.get('unified')!, 'cgroup.freeze')));
    let frozen = false;
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) break;
      if (!frozen) {
        if (freezer && (await exists(freezer))) await writeControl(freezer, 'freezer.state', 'FROZEN').catch(() => {});
        else if (v2freeze) await writeControl(this.dirs.get('unified')!, 'cgroup.freeze', '1').catch(() => {});
        frozen = true;
      }
      for (const pid of pids) signalPid(pid, 'SIGKILL');
      // A frozen task only dies once thawed; SIGKILL is already pending, so thawing cannot let it fork.
      if (freezer && (await exists(freezer))) await writeControl(freezer, 'freezer.state', 'THAWED').catch(() => {});
      else if (v2freeze) await writeControl(this.dirs.get('unified')!, 'cgroup.freeze', '0').catch(() => {});
      frozen = false;
      if (Date.now() > deadline) {
        throw new CgroupError(`processes still in ${this.paths.join(', ')} after SIGKILL: ${pids.join(' ')}`, this.paths[0] ?? '');
      }
      await sleep(10);
    }
  }

  /**
   * Removes the group dirs. A cgroup dir can only go once its processes are gone (zombies count
   * until reaped), so EBUSY is retried briefly. On a plain (non-cgroupfs) tree the interface files
   * are ordinary files and are removed first.
   */
  async remove(o: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (o.timeoutMs ?? 3_000);
    // The hierarchies are independent: remove the per-controller dirs at once.
    await Promise.all(this.paths.map((dir) => this.removeDir(dir, deadline)));
  }

  private async removeDir(dir: string, deadline: number): Promise<void> {
    for (;;) {
      try {
        await rmdir(dir);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code === 'ENOTEMPTY' && !(await isRealCgroupfs(dir))) {
          for (const f of await readdir(dir)) await rm(join(dir, f), { force: true });
          continue;
        }
        if ((code === 'EBUSY' || code === 'ENOTEMPTY') && Date.now() < deadline) {
          await sleep(20);
          continue;
        }
        throw new CgroupError(`removing cgroup ${dir}: ${(e as Error).message}`, dir, { cause: e });
      }
    }
  }
}

/**
 * The names of the groups under `parent` (default imgbuild) in every hierarchy a container group
 * is made in, with the time the newest of its dirs was made: what prune checks for groups whose
 * container is gone.
 */
export async function listGroups(o: CgroupOptions = {}): Promise<Map<string, { createdMs: number }>> {
  const cgroupRoot = o.cgroupRoot ?? DEFAULT_ROOT;
  const parent = o.parent ?? 'imgbuild';
  const version = o.version ?? (await detectCgroupVersion(cgroupRoot).catch(() => 1 as const));
  const parents = version === 2 ? [join(cgroupRoot, parent)] : V1_CONTROLLERS.map((c) => join(cgroupRoot, c, parent));
  const out = new Map<string, { createdMs: number }>();
  for (const p of parents) {
    const names = await readdir(p, { withFileTypes: true }).catch(() => []);
    for (const d of names) {
      if (!d.isDirectory()) continue;
      const st = await stat(join(p, d.name)).catch(() => undefined);
      if (!st) continue;
      const prev = out.get(d.name);
      out.set(d.name, { createdMs: Math.max(prev?.createdMs ?? 0, st.ctimeMs) });
    }
  }
  return out;
}

/** v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), linearly as runc converts them. */
export function cpuWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

function cpuQuota(cpus: number): number {
  if (!(cpus > 0)) throw new CgroupError(`--cpus must be positive, got ${cpus}`, '');
  // The kernel refuses quotas below 1 ms.
  return Math.max(1000, Math.round(cpus * CFS_PERIOD_US));
}

function validateId(id: string): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(id) || id === '.' || id === '..')
    throw new CgroupError(`invalid cgroup name ${JSON.stringify(id)}`, id);
}

function signalPid(pid: number, signal: NodeJS.Signals | number): void {
  try {
    process.kill(pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}
