/**
 * The sandbox environment a RUN step gets beside its command: its network (BuildKit's modes:
 * `default` a private namespace on the bridge with outbound NAT, `none` a namespace with only `lo`,
 * `host` the host's), the entitlements `network.host` and `security.insecure` that the last and
 * `RUN --security=insecure` need, `/etc/hosts` with `--add-host` entries, the hostname
 * (`BUILDKIT_SANDBOX_HOSTNAME`), `--ulimit` and `--shm-size`.
 *
 * Each bridged step has a namespace, a veth and a lease of its own (host/network.ts), never used
 * by another step and removed after it whatever happened (StepNetworks). Their ids are written
 * under the build's scratch dir first, so that what a killed build left is found and removed with
 * that dir.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { InvalidArgumentError, ImgbuildError } from '../../errors.js';
import { namesIn } from '../../fs.js';
import { parseShmSize, parseUlimit } from '../../host/limits.js';
import { setupNetwork, teardownNetwork, type NetworkOptions, type NetworkState } from '../../host/network.js';
import { probeRootlessNetwork, rootlessResolver, setupRootlessNetwork, type RootlessNetworkMode } from '../../host/rootless-network.js';
import type { Socket } from 'node:net';
import { sandboxResolvConf, type HostDnsSource } from '../../host/resolv-conf.js';
import type { Rlimit } from '../../sandbox/spec.js';
import { BuildError } from '../errors.js';
import type { Run } from '../frontend/instructions.js';
import type { BuildNetwork } from './run-step.js';
import { HOST_GATEWAY, parseAddHost, type ExtraHost } from '../../host/extra-hosts.js';

export type Entitlement = 'network.host' | 'security.insecure';

/** BuildKit's default sandbox hostname (executor/oci/hosts.go). */
export const DEFAULT_BUILD_HOSTNAME = 'buildkitsandbox';
/** The build arg that names the hostname of RUN steps (BuildKit). */
export const HOSTNAME_ARG = 'BUILDKIT_SANDBOX_HOSTNAME';

export { parseAddHost, HOST_GATEWAY, type ExtraHost } from '../../host/extra-hosts.js';

/** What every RUN of a build shares beside its network mode. */
export interface RunSandboxOptions {
  allow: ReadonlySet<Entitlement>;
  hostname: string;
  extraHosts: readonly ExtraHost[];
  ulimits: readonly Rlimit[];
  /** Size of /dev/shm in bytes (the sandbox's 64 MiB when undefined). */
  shmSize?: number;
  dns: HostDnsSource;
}

export const DEFAULT_RUN_SANDBOX: RunSandboxOptions = {
  allow: new Set(),
  hostname: DEFAULT_BUILD_HOSTNAME,
  extraHosts: [],
  ulimits: [],
  dns: {},
};

/** `--allow` values: BuildKit's entitlement names. */
export function parseEntitlements(values: readonly string[]): Set<Entitlement> {
  const out = new Set<Entitlement>();
  for (const v of values) {
    for (const e of v.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (e === 'network.host' || e === 'security.insecure') out.add(e);
      else if (e === 'device' || e.startsWith('device=')) throw new ImgbuildError('NOT_IMPLEMENTED', `--allow ${e}: devices (CDI) are not supported`);
      else throw new InvalidArgumentError(`--allow: unknown entitlement ${e} (network.host or security.insecure)`);
    }
  }
  return out;
}

/** The build options behind RUN's sandbox, checked before anything is made. */
export function runSandboxOptions(o: {
  allow?: readonly string[];
  addHosts?: readonly string[];
  ulimits?: readonly string[];
  shmSize?: string;
  buildArgs: ReadonlyMap<string, string>;
  dns?: HostDnsSource;
}): RunSandboxOptions {
  const hostname = o.buildArgs.get(HOSTNAME_ARG) || DEFAULT_BUILD_HOSTNAME;
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(hostname)) throw new InvalidArgumentError(`invalid ${HOSTNAME_ARG} ${JSON.stringify(hostname)}: not a host name`);
  const shmSize = o.shmSize !== undefined ? parseShmSize(o.shmSize) : undefined;
  return {
    allow: parseEntitlements(o.allow ?? []),
    hostname,
    extraHosts: (o.addHosts ?? []).map(parseAddHost),
    ulimits: (o.ulimits ?? []).map(parseUlimit),
    ...(shmSize !== undefined ? { shmSize } : {}),
    dns: o.dns ?? {},
  };
}

/** A RUN that needs an entitlement the build was not given (BuildKit's words, at the instruction). */
export class EntitlementError extends BuildError {
  readonly hint: string;

  constructor(readonly entitlement: Entitlement, ins: Run) {
    super(`${entitlement} is not allowed`, { range: ins.range, instruction: 'RUN', code: 'FAILED_PRECONDITION' });
    this.name = 'EntitlementError';
    this.hint = `grant it with build --allow ${entitlement}`;
  }
}

/** A step network that could not be made. */
export class StepNetworkError extends ImgbuildError {
  readonly hint = 'build --network none runs RUN without a network';

  constructor(cause: ImgbuildError) {
    super(cause.code, `RUN's network: ${cause.message}`, { cause });
    this.name = 'StepNetworkError';
  }
}

/**
 * Refuses what a RUN asks for without its entitlement, in BuildKit's words (`network.host is not
 * allowed`), at the instruction. `build --network host` grants network.host itself, as Docker's does.
 */
export function checkEntitlements(ins: Run, allow: ReadonlySet<Entitlement>, buildNetwork: BuildNetwork): void {
  const missing: Entitlement[] = [];
  if (ins.network === 'host' && !allow.has('network.host') && buildNetwork !== 'host') missing.push('network.host');
  if (ins.security === 'insecure' && !allow.has('security.insecure')) missing.push('security.insecure');
  const e = missing[0];
  if (e) throw new EntitlementError(e, ins);
}

/** A step's network: BuildKit's, or rootless a user-mode helper's in place of the bridge. */
export type StepNetworkMode = 'none' | 'host' | 'bridge' | RootlessNetworkMode;

/**
 * The mode of a step with the build's `default` network: the bridge as root; rootless the helper
 * probeRootlessNetwork picks, or none where neither is installed (a step that needs the network
 * then fails with the no-network hint).
 */
export function defaultStepNetwork(rootless: boolean): StepNetworkMode {
  return rootless ? (probeRootlessNetwork() ?? 'none') : 'bridge';
}

/** The network of one step as the sandbox joins it. */
export interface StepNetwork {
  /** The bridge's namespace to join (undefined: a new one with `lo` only, or the host's). */
  netnsPath?: string;
  /** The host's address on the step's network (`host-gateway`). */
  gateway?: string;
  /** A rootless helper's lifeline, for the sandbox (SandboxIO.lifeline). */
  lifeline?: Socket;
  /** Gives the network back (its removal is awaited by StepNetworks.close). */
  release(): void;
}

interface Made {
  id: string;
  state: NetworkState;
}

function netRecordDir(buildTmp: string): string {
  return join(buildTmp, 'netns');
}

/**
 * The bridged namespaces of one build's RUN steps. A step takes a namespace made while the step
 * before it ran (BuildKit keeps a pool of them too): making one costs ~50 ms of `ip` calls, and
 * the first one also the bridge and its NAT rules, which the spare keeps in place between steps.
 * A used namespace is removed in the background; `close` waits for every removal, and removes the
 * spare, before the build returns.
 */
export class StepNetworks {
  private spare: Promise<Made> | undefined;
  private readonly removals = new Set<Promise<void>>();
  private closed = false;

  /** `network`: the bridge, subnets and lease table (host/network.ts's defaults unless given). */
  constructor(private readonly buildTmp: string, private readonly o: { spare?: boolean; signal?: AbortSignal; network?: Omit<NetworkOptions, 'signal'> } = {}) {}

  async acquire(mode: StepNetworkMode): Promise<StepNetwork> {
    if (mode === 'slirp4netns' || mode === 'pasta') {
      // One helper per step, ending with the step's sandbox: nothing is left to remove.
      let rn;
      try {
        rn = await setupRootlessNetwork(mode, this.o.signal ? { signal: this.o.signal } : {});
      } catch (e) {
        if (this.o.signal?.aborted || !(e instanceof ImgbuildError)) throw e;
        throw new StepNetworkError(e);
      }
      return { netnsPath: rn.netnsPath, gateway: rn.hostLoopback, lifeline: rn.lifeline, release: () => rn.close() };
    }
    if (mode !== 'bridge') return { ...(mode === 'host' ? { gateway: '127.0.0.1' } : {}), release: () => {} };
    if (this.closed) throw new ImgbuildError('FAILED_PRECONDITION', 'the build has ended');
    const next = this.spare ?? this.make();
    this.spare = undefined;
    const made = await next;
    // Another step may have started a spare meanwhile: there is never more than one.
    if (this.o.spare !== false && !this.closed && !this.spare) {
      this.spare = this.make();
      this.spare.catch(() => {}); // its error, if any, is the next step's
    }
    let released = false;
    return {
      ...(made.state.netnsPath ? { netnsPath: made.state.netnsPath } : {}),
      ...(made.state.gateway ? { gateway: made.state.gateway } : {}),
      release: () => {
        if (released) return;
        released = true;
        this.remove(made);
      },
    };
  }

  /** Waits for the removals under way, and removes the spare. */
  async close(): Promise<void> {
    this.closed = true;
    const spare = this.spare;
    this.spare = undefined;
    if (spare) await spare.then((m) => this.remove(m), () => {});
    while (this.removals.size) await Promise.allSettled([...this.removals]);
  }

  private async make(): Promise<Made> {
    // 32 hex digits: never taken for a container's id (64) by `prune`'s container leftovers.
    const id = randomBytes(16).toString('hex');
    const record = join(netRecordDir(this.buildTmp), id);
    // Recorded before it exists, so that what a killed build leaves is found (releaseStaleStepNetworks).
    await mkdir(netRecordDir(this.buildTmp), { recursive: true });
    await writeFile(record, '');
    try {
      return { id, state: await setupNetwork(id, 'bridge', { ...this.o.network, ...(this.o.signal ? { signal: this.o.signal } : {}) }) };
    } catch (e) {
      // setupNetwork undid what it made.
      await rm(record, { force: true });
      if (this.o.signal?.aborted || !(e instanceof ImgbuildError)) throw e;
      throw new StepNetworkError(e);
    }
  }

  private remove(m: Made): void {
    const p = (async () => {
      await teardownNetwork(m.id, m.state, this.o.network ?? {});
      await rm(join(netRecordDir(this.buildTmp), m.id), { force: true });
    })().catch(() => {});
    this.removals.add(p);
    void p.finally(() => this.removals.delete(p));
  }
}

/** Removes the step networks a dead build left (their ids are recorded in its scratch dir). */
export async function releaseStaleStepNetworks(buildTmp: string): Promise<void> {
  for (const id of await namesIn(netRecordDir(buildTmp))) {
    if (!/^[0-9a-f]{32}$/.test(id)) continue;
    await teardownNetwork(id, { mode: 'bridge' });
    await rm(join(netRecordDir(buildTmp), id), { force: true });
  }
}

/** /etc/hosts as BuildKit writes it: localhost with the hostname, then the `--add-host` entries. */
export function hostsFile(hostname: string, extra: readonly ExtraHost[], gateway: string | undefined): string {
  const lines = [`127.0.0.1\tlocalhost ${hostname}`, '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const h of extra) {
    const ip = h.ip === HOST_GATEWAY ? gateway : h.ip;
    // A step without a network has no way to the host: `host-gateway` names nothing there.
    if (ip !== undefined) lines.push(`${ip}\t${h.host}`);
  }
  return `${lines.join('\n')}\n`;
}

/** resolv.conf of a step: the host's for `host`, a rootless helper's resolver, the host's without loopback resolvers otherwise. */
export function stepResolvConf(mode: StepNetworkMode, dns: HostDnsSource): Promise<string> {
  return sandboxResolvConf(mode === 'host' ? 'host' : 'private', dns, rootlessResolver(mode));
}

/**
 * Whether an output line reports a failed host name lookup: the resolver's own words (glibc,
 * musl), and those of busybox, curl, apt, apk, git, Go and Node.
 */
const RESOLUTION_FAILURE =
  /bad address '|could not resolve|temporary failure (in name resolution|resolving)|name or service not known|name does not resolve|no address associated with hostname|getaddrinfo (EAI_AGAIN|ENOTFOUND)|dial tcp: lookup |: no such host|unknown host|dns lookup error|failed to resolve|name resolution/i;

export function isResolutionFailure(line: string): boolean {
  return RESOLUTION_FAILURE.test(line);
}

/** The hint for a failed step without a network that could not resolve a name. */
export function noNetworkHint(fromRun: boolean): string {
  const how = fromRun ? 'this RUN has no network (RUN --network=none)' : 'RUN steps have no network (build --network none)';
  return `${how} and a host name could not be resolved; use --network default for a network`;
}

/** BuildKit's proxy variables (llb.ProxyEnv), each set under both spellings. */
const PROXY_NAMES = ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'];

/**
 * The proxy variables a RUN gets from the build args (`--build-arg http_proxy=...`, any case), as
 * BuildKit passes them: in the environment only, not in the cache key or the history. A variable
 * the step has already (an ARG or ENV of the stage) is left as it is.
 */
export function proxyEnv(buildArgs: ReadonlyMap<string, string>, stepEnv: readonly string[]): string[] {
  const values = new Map<string, string>();
  // Sorted, so that of HTTP_PROXY and http_proxy the lower-case one wins, as in BuildKit.
  for (const k of [...buildArgs.keys()].sort()) {
    const name = k.toUpperCase();
    if (PROXY_NAMES.includes(name)) values.set(name, buildArgs.get(k) as string);
  }
  const present = new Set(stepEnv.map((e) => {
    const i = e.indexOf('=');
    return i < 0 ? e : e.slice(0, i);
  }));
  const out: string[] = [];
  for (const [name, v] of values) {
    if (v === '') continue;
    for (const n of [name, name.toLowerCase()]) if (!present.has(n)) out.push(`${n}=${v}`);
  }
  return out;
}

/**
 * What of the sandbox enters a RUN's cache key, as in BuildKit's exec op: the hostname, the
 * names of the extra hosts (not their addresses), the ulimits and the /dev/shm size. Defaults add
 * nothing, so the keys of builds that set none of them stay as they were.
 */
export function sandboxKey(o: RunSandboxOptions): Record<string, unknown> {
  return {
    ...(o.hostname !== DEFAULT_BUILD_HOSTNAME ? { hostname: o.hostname } : {}),
    ...(o.extraHosts.length ? { extraHosts: o.extraHosts.map((h) => h.host) } : {}),
    ...(o.ulimits.length ? { ulimits: o.ulimits } : {}),
    ...(o.shmSize ? { shmSize: o.shmSize } : {}),
  };
}
