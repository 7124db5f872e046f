/**
 * The flags `run` and `create` share (Docker's `run` is `create` + `start`): defined once here, and
 * turned into the container's CreateOptions once, so the two commands cannot drift apart.
 */
import { parseStorageDriver } from '../../snapshots/drivers.js';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { parseCpuShares, parseCpus, parseMemoryLimit, parsePidsLimit, parseShmSize, parseUlimit } from '../../host/limits.js';
import { subidFilesFromEnv } from '../../host/id-ranges.js';
import type { CreateOptions } from '../../containers/create.js';
import { parseSecurityOpts } from '../../containers/security-opt.js';
import { signalNumber } from '../../containers/signals.js';
import { checkMemorySwap } from '../../containers/update.js';
import { checkRestartWithAutoRemove, parseRestartPolicy, type RestartPolicy } from '../../containers/restart-policy.js';
import { healthConfigFromFlags } from '../../containers/health.js';
import type { HealthConfig } from '../../image/types.js';

export const collect = (v: string, prev: string[]): string[] => [...prev, v];

export interface ContainerFlags {
  rm?: boolean;
  name?: string;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  volume: string[];
  mount: string[];
  tmpfs: string[];
  hostname?: string;
  domainname?: string;
  network?: string;
  publish: string[];
  publishAll?: boolean;
  expose: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOption: string[];
  addHost: string[];
  pid?: string;
  ipc?: string;
  userns?: string;
  macAddress?: string;
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  interactive?: boolean;
  tty?: boolean;
  entrypoint?: string;
  init?: boolean;
  readOnly?: boolean;
  capAdd: string[];
  capDrop: string[];
  ulimit: string[];
  securityOpt: string[];
  stopSignal?: string;
  stopTimeout?: string;
  cidfile?: string;
  pull?: string;
  privileged?: boolean;
  device: string[];
  deviceCgroupRule: string[];
  groupAdd: string[];
  shmSize?: string;
  label: string[];
  labelFile: string[];
  restart?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthRetries?: string;
  /** Commander's name for `--no-healthcheck` (false when given). */
  healthcheck?: boolean;
}

/** Adds the container-defining flags to `run` or `create`. */
export function addContainerFlags(c: Command): Command {
  return c
    .option('--rm', 'remove the container when it exits')
    .option('--name <name>', 'container name')
    .option('-e, --env <KEY[=VALUE]>', 'set an environment variable (repeatable)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid (and group) to run as')
    .option('-v, --volume <[src:]ctr[:mode]>', 'bind-mount a host path, mount a named volume (made on first use), or an anonymous one (repeatable)', collect, [])
    .option('--mount <type=...,dst=...>', 'mount a bind, volume or tmpfs, as docker takes it (repeatable)', collect, [])
    .option('--tmpfs <path[:opts]>', 'mount a tmpfs (repeatable)', collect, [])
    .option('--hostname <name>', 'container host name (default: the short id)')
    .option('--domainname <name>', 'container NIS domain name')
    .option('--network <mode>', 'bridge (the default, also "default"), none, host or container:<name|id>')
    .option('-p, --publish <[ip:][host:]ctr[/proto]>', 'publish a container port (or range) on every host address, or on ip; no host port: a free one (repeatable)', collect, [])
    .option('-P, --publish-all', 'publish every exposed port on a free host port')
    .option('--expose <port[/proto]>', 'expose a port or range without publishing it (repeatable)', collect, [])
    .option('--dns <ip>', 'nameserver for the container (repeatable; replaces the host\'s)', collect, [])
    .option('--dns-search <domain>', 'DNS search domain (repeatable; "." for none)', collect, [])
    .option('--dns-option <opt>', 'resolv.conf option (repeatable)', collect, [])
    .option('--add-host <name:ip>', 'add a line to /etc/hosts; ip may be host-gateway (repeatable)', collect, [])
    .option('--mac-address <mac>', 'MAC address of the container\'s eth0 on the bridge')
    .option('--pid <mode>', 'host or container:<name|id>: share that pid namespace')
    .option('--ipc <mode>', 'host or container:<name|id>: share that ipc namespace')
    .option('--userns <mode>', 'host (default) or auto[:size=N]: a user namespace of its own, with ids from the subordinate ranges of user containers (as root)')
    .option('-m, --memory <size>', 'memory limit (e.g. 64m); swap is not used beyond it')
    .option('--memory-swap <size>', 'memory plus swap limit (with -m; -1: unlimited swap; default: no swap)')
    .option('--cpus <n>', 'CPU limit (e.g. 0.5)')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight; 1024 is the default)')
    .option('--pids-limit <n>', 'maximum number of processes/threads')
    .option('-i, --interactive', 'keep stdin open and pass it to the container')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT')
    .option('--init', 'run a minimal init as pid 1 that forwards signals and reaps zombies')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--cap-add <cap>', 'add a capability (repeatable; ALL for every one)', collect, [])
    .option('--cap-drop <cap>', 'drop a capability (repeatable; ALL for every one)', collect, [])
    .option('--ulimit <name=soft[:hard]>', 'set a resource limit (repeatable)', collect, [])
    .option('--security-opt <opt>', 'no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json or systempaths=unconfined (repeatable)', collect, [])
    .option('--privileged', 'every capability and host device, no seccomp filter, no masked paths, /sys writable')
    .option('--device <host[:ctr][:rwm]>', 'make a host device available in the container (repeatable)', collect, [])
    .option('--device-cgroup-rule <rule>', "allow devices in the device cgroup, e.g. 'c 42:* rmw' (repeatable)", collect, [])
    .option('--group-add <group>', 'an additional group (name from the image or gid; repeatable)', collect, [])
    .option('--shm-size <size>', 'size of /dev/shm (default 64m)')
    .option('-l, --label <key=value>', 'set a label on the container (repeatable)', collect, [])
    .option('--label-file <file>', 'read labels from a file of key=value lines (repeatable)', collect, [])
    .option('--restart <policy>', 'no, on-failure[:max-retries], always or unless-stopped (carried out by a small keeper process)', 'no')
    .option('--health-cmd <command>', 'command to run to check health (in the container, through /bin/sh -c)')
    .option('--health-interval <duration>', 'time between checks (ms|s|m|h) (default 30s)')
    .option('--health-timeout <duration>', 'maximum time a check may take (ms|s|m|h) (default 30s)')
    .option('--health-start-period <duration>', 'time for the container to start before failures count (ms|s|m|h) (default 0s)')
    .option('--health-retries <n>', 'consecutive failures that make it unhealthy (default 3)')
    .option('--no-healthcheck', 'disable any HEALTHCHECK of the image')
    .option('--stop-signal <signal>', 'signal `stop` sends first (default: the image STOPSIGNAL, else SIGTERM)')
    .option('--stop-timeout <seconds>', 'seconds `stop` waits before SIGKILL (default 10)')
    .option('--cidfile <file>', 'write the container id to this file (which must not exist)')
    .option('--pull <policy>', 'pull the image first: missing (when not in the store), always or never', 'missing');
}

/** The resource limits, each parsed once (host/limits.ts); undefined where not limited. */
export interface RunLimits {
  memory: number | undefined;
  cpus: number | undefined;
  pidsLimit: number | undefined;
}

export function parseRunLimits(f: Pick<ContainerFlags, 'memory' | 'cpus' | 'pidsLimit' | 'ulimit'>, cpusAvailable: number): RunLimits {
  const limits: RunLimits = {
    memory: f.memory === undefined ? undefined : parseMemoryLimit(f.memory, '--memory'),
    cpus: f.cpus === undefined ? undefined : parseCpus(f.cpus, cpusAvailable, '--cpus'),
    pidsLimit: f.pidsLimit === undefined ? undefined : parsePidsLimit(f.pidsLimit, '--pids-limit'),
  };
  // Checked here too, so that a bad --ulimit fails before a cgroup or network is made.
  for (const u of f.ulimit) parseUlimit(u);
  return limits;
}

/** `--restart` and the health flags, checked as docker checks them. */
export function parseKeeperFlags(f: Pick<ContainerFlags, 'restart' | 'rm' | 'healthCmd' | 'healthInterval' | 'healthTimeout' | 'healthStartPeriod' | 'healthRetries' | 'healthcheck'>): {
  restartPolicy: RestartPolicy;
  healthcheck: HealthConfig | undefined;
} {
  const restartPolicy = parseRestartPolicy(f.restart ?? 'no');
  checkRestartWithAutoRemove(restartPolicy, f.rm ?? false);
  const healthcheck = healthConfigFromFlags({
    healthCmd: f.healthCmd,
    healthInterval: f.healthInterval,
    healthTimeout: f.healthTimeout,
    healthStartPeriod: f.healthStartPeriod,
    healthRetries: f.healthRetries,
    noHealthcheck: f.healthcheck === false,
  });
  return { restartPolicy, healthcheck };
}

/** `--memory-swap`: a size as -m takes it, or -1 for unlimited swap. */
export function parseMemorySwap(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  return v.trim() === '-1' ? -1 : parseMemoryLimit(v, '--memory-swap');
}

/** `--stop-timeout` in whole seconds (Docker's; -1 waits forever). */
export function parseStopTimeout(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim()) || Number(v) < -1) throw new InvalidArgumentError(`invalid --stop-timeout ${JSON.stringify(v)}: give whole seconds (-1 waits forever)`);
  return Number(v);
}

/**
 * Checks every flag that can be checked before anything is made and returns the creation options
 * they give (without the image and command).
 */
export function containerOptions(ctx: CliContext, f: ContainerFlags, cpusAvailable: number): Omit<CreateOptions, 'image'> {
  const limits = parseRunLimits(f, cpusAvailable);
  const memorySwap = parseMemorySwap(f.memorySwap);
  checkMemorySwap(limits.memory, memorySwap);
  const cpuShares = f.cpuShares === undefined ? undefined : parseCpuShares(f.cpuShares);
  const { restartPolicy, healthcheck } = parseKeeperFlags(f);
  parseSecurityOpts(f.securityOpt); // read again by createContainer: checked before anything is made
  if (f.stopSignal !== undefined) signalNumber(f.stopSignal);
  const stopTimeout = parseStopTimeout(f.stopTimeout);
  const shmSize = f.shmSize === undefined ? undefined : parseShmSize(f.shmSize);
  const driver = ctx.storageDriver();
  return {
    ...(driver !== undefined ? { storageDriver: parseStorageDriver(driver) } : {}),
    name: f.name,
    env: f.env,
    envFiles: f.envFile,
    workdir: f.workdir,
    user: f.user,
    volumes: f.volume,
    mounts: f.mount,
    tmpfs: f.tmpfs,
    hostname: f.hostname,
    domainname: f.domainname,
    network: f.network,
    publish: f.publish,
    publishAll: f.publishAll,
    expose: f.expose,
    dns: f.dns,
    dnsSearch: f.dnsSearch,
    dnsOptions: f.dnsOption,
    addHosts: f.addHost,
    pid: f.pid,
    ipc: f.ipc,
    ...(f.userns !== undefined ? { userns: f.userns, subidFiles: subidFilesFromEnv(ctx.env) } : {}),
    macAddress: f.macAddress,
    ...limits,
    ...(memorySwap !== undefined ? { memorySwap } : {}),
    ...(cpuShares !== undefined ? { cpuShares } : {}),
    interactive: f.interactive,
    tty: f.tty,
    entrypoint: f.entrypoint,
    init: f.init,
    readOnly: f.readOnly,
    capAdd: f.capAdd,
    capDrop: f.capDrop,
    ulimits: f.ulimit,
    securityOpt: f.securityOpt,
    ...(f.privileged ? { privileged: true } : {}),
    devices: f.device,
    deviceCgroupRules: f.deviceCgroupRule,
    groupAdd: f.groupAdd,
    ...(shmSize !== undefined ? { shmSize } : {}),
    labels: f.label,
    labelFiles: f.labelFile,
    autoRemove: f.rm,
    restartPolicy,
    ...(healthcheck ? { healthcheck } : {}),
    hostEnv: ctx.env,
    ...(f.stopSignal !== undefined ? { stopSignal: f.stopSignal } : {}),
    ...(stopTimeout !== undefined ? { stopTimeout } : {}),
  };
}
