/**
 * Container networking with iproute2 and iptables:
 * - `none`: a new network namespace made by the sandbox, with only loopback, up;
 * - `host`: no network namespace;
 * - `bridge`: a named namespace (`ip netns add imgbuild-<id>`, joined by the sandbox through
 *   spec.netnsPath), a veth pair whose host end sits on the `imgbuild0` bridge and whose other end
 *   is the container's eth0, an address from a lock-protected lease table, a default route via the
 *   bridge and — only where the host itself has a default route — MASQUERADE for outbound traffic.
 *
 * The bridge, its subnet and the lease table are host-wide (every store root shares `imgbuild0`),
 * so the lease table lives with the kernel objects it describes, in /run (tmpfs: it vanishes on
 * reboot exactly when the namespaces and veths do). Like docker0 and podman's bridge, the bridge
 * and its NAT rules stay once made: removing and remaking them costs ~45 ms (a bridge's deletion
 * waits for an RCU grace period) on every `run --rm` of an otherwise idle host, which is most of
 * them. `removeIdleBridge` (called by `prune`) takes them down when no lease is left.
 *
 * Published ports are served by a userland proxy (see containers/ports.ts), not DNAT: DNAT of
 * 127.0.0.1 needs route_localnet=1 on the bridge plus a hairpin MASQUERADE, a host-wide sysctl that
 * opens 127.0.0.0/8 to martian routing; a proxy needs no sysctl and works with any iptables backend.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile, rename } from 'node:fs/promises';
import { exists } from '../fs.js';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withLock } from '../lock.js';
import { ImgbuildError } from '../errors.js';

/**
 * `container`: another container's namespace is joined; nothing is made or undone here.
 * `slirp4netns`, `pasta`: a rootless container's (host/rootless-network.ts); nothing to undo either.
 */
export type NetworkMode = 'none' | 'host' | 'bridge' | 'container' | 'slirp4netns' | 'pasta';

export interface NetworkOptions {
  /** Where the host-wide lease table lives (default /run/imgbuild/network). */
  stateDir?: string;
  /** Bridge device name (default imgbuild0). */
  bridge?: string;
  /** Candidate subnets, first one that overlaps no host route wins. */
  subnets?: string[];
  /** eth0's MAC address (`--mac-address`); by default one made of the IP address, as Docker makes it. */
  macAddress?: string;
  /**
   * The sandbox that joins the namespace gives eth0 its address and route itself (imgbuild's own
   * runtime: spec.netIface), sparing the second `ip` process; other runtimes need it done here.
   */
  ifaceBySandbox?: boolean;
  signal?: AbortSignal;
}

/** What setup created; kept in the container's state so teardown can undo exactly that. */
export interface NetworkState {
  mode: NetworkMode;
  /** `ip netns` name and path of the namespace (bridge mode). */
  netnsName?: string;
  netnsPath?: string;
  bridge?: string;
  hostVeth?: string;
  ip?: string;
  prefixLength?: number;
  gateway?: string;
  subnet?: string;
  nat?: boolean;
  macAddress?: string;
  /** The resolver inside (a rootless helper's forwarder). */
  dns?: string;
  /** eth0 is left without its address and route, for the sandbox to set (NetworkOptions.ifaceBySandbox). */
  ifaceBySandbox?: boolean;
}

export class NetworkError extends ImgbuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
    this.name = 'NetworkError';
  }
}

const DEFAULT_STATE_DIR = '/run/imgbuild/network';
const DEFAULT_BRIDGE = 'imgbuild0';
const DEFAULT_SUBNETS = ['10.88.0.0/16', '10.89.0.0/16', '10.90.0.0/16', '172.29.0.0/16', '192.168.211.0/24'];
const RULE_COMMENT = 'imgbuild';

interface LeaseTable {
  bridge: string;
  subnet: string;
  gateway: string;
  nat: boolean;
  /** container id → IPv4 address */
  leases: Record<string, string>;
}

function run(cmd: string, args: string[], o: { input?: string; signal?: AbortSignal } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { signal: o.signal, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const msg = String(stderr || err.message).trim();
        reject(Object.assign(new NetworkError(`${cmd} ${args.join(' ')}: ${msg}`, { cause: err }), { stderr: msg }));
      } else resolve(stdout);
    });
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

const ip = (args: string[], o?: { input?: string; signal?: AbortSignal }): Promise<string> => run('ip', args, o);

// ---- IPv4 arithmetic -------------------------------------------------------------------------

function ipToInt(a: string): number {
  const p = a.split('.').map(Number);
  if (p.length !== 4 || p.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new NetworkError(`invalid IPv4 address ${a}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}
function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
export function parseCidr(c: string): { base: number; prefix: number } {
  const [a, p] = c.split('/');
  const prefix = Number(p ?? '32');
  if (!a || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new NetworkError(`invalid CIDR ${c}`);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { base: (ipToInt(a) & mask) >>> 0, prefix };
}
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  const p = Math.min(x.prefix, y.prefix);
  const mask = p === 0 ? 0 : (~0 << (32 - p)) >>> 0;
  return ((x.base & mask) >>> 0) === ((y.base & mask) >>> 0);
}

/** Picks the first candidate subnet that overlaps none of the host's routes (the default route aside). */
export function pickSubnet(routes: { dst: string; dev?: string }[], candidates: string[], ownBridge: string): string {
  for (const c of candidates) {
    const clash = routes.some((r) => r.dst !== 'default' && r.dev !== ownBridge && cidrsOverlap(c, r.dst.includes('/') ? r.dst : `${r.dst}/32`));
    if (!clash) return c;
  }
  throw new NetworkError(`every candidate bridge subnet (${candidates.join(', ')}) overlaps a host route`);
}

// ---- the host-wide lease table ----------------------------------------------------------------

async function withTableLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true });
  return withLock(join(dir, 'leases.json'), fn);
}

async function readTable(dir: string): Promise<LeaseTable | undefined> {
  try {
    const text = await readFile(join(dir, 'leases.json'), 'utf8');
    return text.trim() ? (JSON.parse(text) as LeaseTable) : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NetworkError(`reading ${join(dir, 'leases.json')}: ${(e as Error).message}`, { cause: e });
  }
}

async function writeTable(dir: string, t: LeaseTable | undefined): Promise<void> {
  const p = join(dir, 'leases.json');
  if (!t) {
    await writeFile(p, '');
    return;
  }
  // Named as sweepTempFiles knows it, so that what a killed writer left is removed by `prune`.
  const tmp = `${p}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(t, null, 2));
  await rename(tmp, p);
}

export function netnsName(id: string): string {
  return `imgbuild-${id}`;
}
export function netnsPathOf(id: string): string {
  return `/run/netns/${netnsName(id)}`;
}
/** Interface names are limited to 15 bytes: `ib` + 12 hex of the id. */
export function hostVethName(id: string): string {
  return `ib${id.slice(0, 12)}`;
}

async function hostRoutes(signal?: AbortSignal): Promise<{ dst: string; dev?: string }[]> {
  const out = await ip(['-4', '-j', 'route', 'show'], { signal });
  return JSON.parse(out || '[]') as { dst: string; dev?: string }[];
}

async function iptables(args: string[]): Promise<void> {
  await run('iptables', ['-w', '5', ...args]);
}

/** Adds an iptables rule unless an identical one exists (`-C` first). */
async function ensureRule(table: string, chain: string, rule: string[]): Promise<void> {
  try {
    await iptables(['-t', table, '-C', chain, ...rule]);
  } catch {
    await iptables(['-t', table, '-A', chain, ...rule]);
  }
}
async function deleteRule(table: string, chain: string, rule: string[]): Promise<void> {
  // Delete every copy (a crashed earlier run may have added one twice).
  for (let i = 0; i < 8; i++) {
    try {
      await iptables(['-t', table, '-D', chain, ...rule]);
    } catch {
      return;
    }
  }
}

function natRules(t: { bridge: string; subnet: string }): { table: string; chain: string; rule: string[] }[] {
  const c = ['-m', 'comment', '--comment', RULE_COMMENT];
  return [
    { table: 'nat', chain: 'POSTROUTING', rule: ['-s', t.subnet, '!', '-o', t.bridge, ...c, '-j', 'MASQUERADE'] },
    { table: 'filter', chain: 'FORWARD', rule: ['-i', t.bridge, ...c, '-j', 'ACCEPT'] },
    { table: 'filter', chain: 'FORWARD', rule: ['-o', t.bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...c, '-j', 'ACCEPT'] },
  ];
}

async function linkExists(name: string): Promise<boolean> {
  return exists(`/sys/class/net/${name}`);
}

/** Creates the bridge (and NAT where the host has a default route) if it is not there yet. */
async function ensureBridge(t: LeaseTable, signal?: AbortSignal): Promise<void> {
  // The rules are made with the bridge: checking them on every setup would cost 3 iptables runs.
  if (await linkExists(t.bridge)) return;
  const prefix = parseCidr(t.subnet).prefix;
  await ip(['-b', '-'], {
    signal,
    input: [`link add ${t.bridge} type bridge`, `addr add ${t.gateway}/${prefix} dev ${t.bridge}`, `link set ${t.bridge} up`, ''].join('\n'),
  });
  if (t.nat) {
    for (const r of natRules(t)) await ensureRule(r.table, r.chain, r.rule);
    // Forwarding is what lets the MASQUERADEd traffic leave; it is only turned on when NAT is wanted.
    const fwd = '/proc/sys/net/ipv4/ip_forward';
    if ((await readFile(fwd, 'utf8')).trim() !== '1') await writeFile(fwd, '1');
  }
}

async function removeBridge(t: LeaseTable): Promise<void> {
  if (t.nat) for (const r of natRules(t)) await deleteRule(r.table, r.chain, r.rule);
  if (await linkExists(t.bridge)) await ip(['link', 'del', t.bridge]).catch(() => {});
}

/** Drops leases whose namespace no longer exists (their owner died before releasing them). */
async function pruneLeases(t: LeaseTable): Promise<void> {
  for (const id of Object.keys(t.leases)) if (!(await exists(netnsPathOf(id)))) delete t.leases[id];
}

function allocate(t: LeaseTable, id: string): string {
  const existing = t.leases[id];
  if (existing) return existing;
  const { base, prefix } = parseCidr(t.subnet);
  const size = 2 ** (32 - prefix);
  const used = new Set(Object.values(t.leases).map(ipToInt));
  const gw = ipToInt(t.gateway);
  // .0 is the network, .1 the gateway, the last the broadcast address.
  for (let i = 2; i < size - 1; i++) {
    const a = (base + i) >>> 0;
    if (a === gw || used.has(a)) continue;
    const addr = intToIp(a);
    t.leases[id] = addr;
    return addr;
  }
  throw new NetworkError(`no free address left in ${t.subnet}`);
}

/** Docker's MAC address for an IPv4 address (libnetwork's genMAC): 02:42 and the address's bytes. */
export function macOf(addr: string): string {
  const n = ipToInt(addr);
  return ['02', '42', ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Prepares the container's network. For `bridge` the returned netnsPath goes into
 * spec.netnsPath; for `none` the spec asks for a new net namespace; for `host` for none at all.
 */
export async function setupNetwork(id: string, mode: NetworkMode, o: NetworkOptions = {}): Promise<NetworkState> {
  if (mode === 'host' || mode === 'container' || mode === 'slirp4netns' || mode === 'pasta') return { mode };
  if (mode !== 'bridge' && mode !== 'none') throw new NetworkError(`unknown network mode ${String(mode)}`);
  if (!/^[0-9a-f]{12,64}$/.test(id)) throw new NetworkError(`invalid container id ${id}`);
  // `none`: the sandbox makes the container a new network namespace and brings its loopback up
  // itself (native/sandbox.c loopback_up), so nothing is made here and nothing is left to undo.
  if (mode === 'none') return { mode };
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  const bridge = o.bridge ?? DEFAULT_BRIDGE;
  const ns = netnsName(id);
  const veth = hostVethName(id);
  const state: NetworkState = { mode, netnsName: ns, netnsPath: netnsPathOf(id), bridge, hostVeth: veth };
  try {
    const t = await withTableLock(stateDir, async () => {
      let table = await readTable(stateDir);
      if (table) await pruneLeases(table);
      if (!table || (Object.keys(table.leases).length === 0 && !(await linkExists(table.bridge)))) {
        const routes = await hostRoutes(o.signal);
        const subnet = pickSubnet(routes, o.subnets ?? DEFAULT_SUBNETS, bridge);
        table = {
          bridge,
          subnet,
          gateway: intToIp(parseCidr(subnet).base + 1),
          nat: routes.some((r) => r.dst === 'default'),
          leases: {},
        };
      }
      await ensureBridge(table, o.signal);
      const addr = allocate(table, id);
      // Docker's MAC for an address (02:42 and its four bytes): a new container on an address
      // used before is then reached at once, where the old MAC in the neighbour caches would
      // lose its first packets until they expire.
      const mac = o.macAddress ?? macOf(addr);
      // This `ip` process makes the namespace and the host's side (before the lease is written,
      // so that a lease without its namespace is known stale); the next one, inside the
      // namespace, is spared when the sandbox configures eth0 itself (ifaceBySandbox).
      await ip(['-b', '-'], {
        signal: o.signal,
        input: [`netns add ${ns}`, `link add ${veth} type veth peer name eth0 address ${mac} netns ${ns}`, `link set ${veth} master ${table.bridge} up`, ''].join('\n'),
      });
      await writeTable(stateDir, table);
      return { ...table, addr };
    });
    const prefix = parseCidr(t.subnet).prefix;
    Object.assign(state, { ip: t.addr, prefixLength: prefix, gateway: t.gateway, subnet: t.subnet, nat: t.nat, macAddress: o.macAddress ?? macOf(t.addr) });
    if (o.ifaceBySandbox) return { ...state, ifaceBySandbox: true };
    await ip(['-n', ns, '-b', '-'], {
      signal: o.signal,
      input: [
        'link set lo up',
        `addr add ${t.addr}/${prefix} dev eth0`,
        'link set eth0 up',
        `route add default via ${t.gateway} dev eth0`,
        '',
      ].join('\n'),
    });
    return state;
  } catch (e) {
    await teardownNetwork(id, state, { stateDir }).catch(() => {});
    if (e instanceof NetworkError) throw e;
    throw new NetworkError(`setting up bridge network for ${id}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * A named namespace with only its loopback up: the `none` network for a runtime that cannot bring
 * a new namespace's `lo` up itself (runc leaves it down). teardownNetwork removes it.
 */
export async function setupLoopbackNetns(id: string, o: { signal?: AbortSignal } = {}): Promise<NetworkState> {
  if (!/^[0-9a-f]{12,64}$/.test(id)) throw new NetworkError(`invalid container id ${id}`);
  const ns = netnsName(id);
  await ip(['netns', 'add', ns], o);
  const state: NetworkState = { mode: 'none', netnsName: ns, netnsPath: netnsPathOf(id) };
  try {
    await ip(['-n', ns, 'link', 'set', 'lo', 'up'], o);
  } catch (e) {
    await teardownNetwork(id, state).catch(() => {});
    throw e;
  }
  return state;
}

/**
 * Undoes setupNetwork: deletes the namespace (which destroys eth0 and with it the veth peer), the
 * host veth if it survived, the lease, and the bridge plus its rules once no lease is left.
 * Idempotent, and safe to call with a partial state after a crash.
 */
export async function teardownNetwork(id: string, state: NetworkState | undefined, o: NetworkOptions = {}): Promise<void> {
  if (!state || state.mode === 'host' || state.mode === 'slirp4netns' || state.mode === 'pasta') return;
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  const ns = state.netnsName ?? netnsName(id);
  if (state.mode === 'none') {
    // Only setupLoopbackNetns (and records of earlier versions) name a namespace for `none`.
    if (state.netnsName && (await exists(`/run/netns/${ns}`))) await ip(['netns', 'del', ns]);
    return;
  }
  const veth = state.hostVeth ?? hostVethName(id);
  // The namespace's end goes with the namespace, and the kernel then deletes its peer by itself
  // within ~20 ms; `ip link del` would wait just as long for the same grace period, and costs a
  // process more. The wait overlaps the release of the lease.
  const hadNetns = await exists(`/run/netns/${ns}`);
  if (hadNetns) await ip(['netns', 'del', ns]).catch(() => {});
  await withTableLock(stateDir, async () => {
    const t = await readTable(stateDir);
    if (!t || !(id in t.leases)) return;
    delete t.leases[id];
    await writeTable(stateDir, t);
  });
  if (hadNetns && (await vethGone(veth, 2_000))) return;
  if (await linkExists(veth)) await ip(['link', 'del', veth]).catch(() => {});
}

/** Waits up to `ms` for link `name` to disappear; true when it has. */
async function vethGone(name: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
    if (!(await linkExists(name))) return true;
    if (Date.now() > end) return false;
    await sleep(wait);
  }
}

/**
 * Takes the bridge and its NAT rules down when no container or build step holds a lease (stale
 * leases, whose namespace is gone, are dropped first). Returns whether it did.
 */
export async function removeIdleBridge(o: NetworkOptions = {}): Promise<boolean> {
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  if (!(await exists(join(stateDir, 'leases.json')))) return false;
  return withTableLock(stateDir, async () => {
    const t = await readTable(stateDir);
    if (!t) return false;
    await pruneLeases(t);
    if (Object.keys(t.leases).length > 0) {
      await writeTable(stateDir, t);
      return false;
    }
    await removeBridge(t);
    await writeTable(stateDir, undefined);
    return true;
  });
}

/**
 * The network state setup gave container `id`, rebuilt from its lease (for a container whose
 * record never got it: its `run` was killed during the start). Undefined without a lease.
 */
export async function leasedState(id: string, o: NetworkOptions = {}): Promise<NetworkState | undefined> {
  const t = await readTable(o.stateDir ?? DEFAULT_STATE_DIR).catch(() => undefined);
  const addr = t?.leases[id];
  if (!t || !addr) return undefined;
  return {
    mode: 'bridge',
    netnsName: netnsName(id),
    netnsPath: netnsPathOf(id),
    bridge: t.bridge,
    hostVeth: hostVethName(id),
    ip: addr,
    prefixLength: parseCidr(t.subnet).prefix,
    gateway: t.gateway,
    subnet: t.subnet,
    nat: t.nat,
  };
}

/** The directory of the host-wide lease table (its lock's and writes' leftovers are swept by `prune`). */
export function networkStateDir(o: Pick<NetworkOptions, 'stateDir'> = {}): string {
  return o.stateDir ?? DEFAULT_STATE_DIR;
}

/** Ids of the containers that have a named network namespace (`imgbuild-<id>`) on the host. */
export async function listNetnsIds(): Promise<string[]> {
  const names = await readdir('/run/netns').catch(() => [] as string[]);
  return names.map((n) => /^imgbuild-([0-9a-f]{64})$/.exec(n)?.[1]).filter((id): id is string => id !== undefined);
}

/** Names of the imgbuild netns / veth / bridge objects present on the host (for leak checks). */
export async function listNetworkObjects(o: { bridge?: string } = {}): Promise<{ netns: string[]; links: string[] }> {
  const netns = (await ip(['netns', 'list']).catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith('imgbuild-'));
  const links = (await ip(['-o', 'link', 'show']).catch(() => ''))
    .split('\n')
    .map((l) => (l.split(':')[1] ?? '').trim().split('@')[0] ?? '')
    .filter((n) => /^ib[0-9a-f]{12}$/.test(n) || n === (o.bridge ?? DEFAULT_BRIDGE));
  return { netns, links };
}
