/**
 * The network of a rootless container or build step, as podman gives it: a network namespace of
 * its own whose outbound traffic a user-mode helper carries on the host's sockets, `slirp4netns`
 * (its own 10.0.2.0/24 network, NAT) or `pasta` (the host's address and gateway copied in). Each
 * helper serves one namespace and ends with it:
 * - the namespace is made by `unshare --net` (a shell that waits on its stdin, so it also ends with
 *   us), opened here and handed to the helper and to the sandbox by descriptor;
 * - the helper's life is tied to the container's through a socket pair: one end goes to the
 *   sandbox helper as its lifeline (held by it and its monitor until the container has exited,
 *   never by the container's programs), the other is slirp4netns's `--exit-fd`, or for pasta, which
 *   has no such option, the fd 3 of a `sh` that starts it and ends it when the end closes. Whatever ends the
 *   container — its own exit, stop, kill, rm, or this CLI being killed before the start — the helper
 *   ends with it and nothing is left to undo.
 * Published ports are opened by the helper on the host (slirp4netns's API socket `add_hostfwd`,
 * pasta's `-t`/`-u`), as the user: a port below net.ipv4.ip_unprivileged_port_start is refused
 * before anything is made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as fsc, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ImgbuildError } from '../errors.js';

export type RootlessNetworkMode = 'slirp4netns' | 'pasta';

/** slirp4netns's fixed addresses with `--configure` (its defaults). */
export const SLIRP = { ip: '10.0.2.100', prefixLength: 24, gateway: '10.0.2.2', dns: '10.0.2.3' } as const;
/** The address pasta answers DNS on (`--dns-forward`), as podman 5 gives it. */
export const PASTA_DNS = '169.254.1.1';

/** The resolver a rootless helper answers on inside (undefined for the other modes). */
export function rootlessResolver(mode: string): string | undefined {
  return mode === 'slirp4netns' ? SLIRP.dns : mode === 'pasta' ? PASTA_DNS : undefined;
}

/** The variable that picks the helper when both are installed (`slirp4netns` or `pasta`). */
export const ROOTLESS_NETWORK_ENV = 'IMGBUILD_ROOTLESS_NETWORK';

export interface RootlessPortRequest {
  hostIp: string;
  hostPort: number;
  hostPortEnd?: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface RootlessPort {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface RootlessNetwork {
  mode: RootlessNetworkMode;
  /** Where the sandbox joins the namespace (a descriptor of this process). */
  netnsPath: string;
  ip: string;
  prefixLength: number;
  gateway: string;
  /** The resolver the helper answers on inside. */
  dns: string;
  /** The host's loopback as the container reaches it (`host-gateway`). */
  hostLoopback: string;
  ports: RootlessPort[];
  /** The sandbox's fd 6 (SandboxIO.lifeline). */
  lifeline: Socket;
  /** Closes what this process holds (the namespace's descriptor, the lifeline): once the sandbox has both, or when it never starts. */
  close(): void;
}

function onPath(name: string, path = process.env.PATH ?? ''): boolean {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), fsc.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/**
 * The helper a rootless container gets by default: IMGBUILD_ROOTLESS_NETWORK when set, else
 * slirp4netns, else pasta (docs/architecture.md says why slirp4netns first); undefined when
 * neither is installed.
 */
export function probeRootlessNetwork(env: NodeJS.ProcessEnv = process.env): RootlessNetworkMode | undefined {
  const asked = env[ROOTLESS_NETWORK_ENV];
  if (asked === 'slirp4netns' || asked === 'pasta') return asked;
  if (onPath('slirp4netns', env.PATH)) return 'slirp4netns';
  if (onPath('pasta', env.PATH)) return 'pasta';
  return undefined;
}

/** The one-line failure for a helper that is not installed. */
export function missingHelper(mode: RootlessNetworkMode | undefined): ImgbuildError {
  const what = mode ?? 'slirp4netns or pasta';
  const pkg = mode === 'pasta' ? 'passt' : mode === 'slirp4netns' ? 'slirp4netns' : 'slirp4netns (or passt)';
  return new ImgbuildError('FAILED_PRECONDITION', `a rootless container's network needs ${what}, which is not installed: install the ${pkg} package, or use --network none or host`);
}

/** Refuses a host port the user may not bind (the sysctl is read in the host's namespace, ours). */
export function checkUnprivilegedPorts(ports: readonly RootlessPortRequest[], sysctl = '/proc/sys/net/ipv4/ip_unprivileged_port_start'): void {
  let start = 1024;
  try {
    start = Number(readFileSync(sysctl, 'utf8').trim());
  } catch {
    // no such sysctl (kernel < 4.11): the classic limit
  }
  for (const p of ports) {
    if (p.hostPort !== 0 && p.hostPort < start) {
      throw new ImgbuildError(
        'FAILED_PRECONDITION',
        `a rootless container cannot publish host port ${p.hostPort}/${p.protocol}: ports below ${start} (net.ipv4.ip_unprivileged_port_start) need root; publish a port >= ${start}, or lower the sysctl`,
      );
    }
  }
}

async function freePort(hostIp: string, protocol: 'tcp' | 'udp', port = 0): Promise<number | undefined> {
  const host = hostIp || '0.0.0.0';
  // Loaded here: every `run` loads this module, few publish a UDP port.
  const dgram = protocol === 'udp' ? (createRequire(import.meta.url)('node:dgram') as typeof import('node:dgram')) : undefined;
  return new Promise((resolve) => {
    if (dgram) {
      const s = dgram.createSocket(hostIp.includes(':') ? 'udp6' : 'udp4');
      s.once('error', () => resolve(undefined));
      s.bind(port, host, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : undefined));
    });
  });
}

/** Each request with a host port: a free one the kernel picks for 0, the first free one of a range. */
async function choosePorts(reqs: readonly RootlessPortRequest[]): Promise<RootlessPort[]> {
  const out: RootlessPort[] = [];
  for (const r of reqs) {
    let port: number | undefined;
    // A given port is tried too: the helpers' own failure to bind says little (slirp4netns's
    // "slirp_add_hostfwd failed").
    for (let p = r.hostPort; p <= (r.hostPortEnd ?? r.hostPort) && port === undefined; p++) port = await freePort(r.hostIp, r.protocol, p);
    if (port === undefined) {
      const where = `${r.hostIp || '0.0.0.0'}:${r.hostPortEnd !== undefined && r.hostPortEnd !== r.hostPort ? `${r.hostPort}-${r.hostPortEnd}` : r.hostPort}`;
      // Docker's words for a port taken by another process or container.
      throw new ImgbuildError('FAILED_PRECONDITION', r.hostPort === 0 ? `no free host port for ${r.containerPort}/${r.protocol}` : `Bind for ${where} failed: port is already allocated`);
    }
    out.push({ hostIp: r.hostIp || '0.0.0.0', hostPort: port, containerPort: r.containerPort, protocol: r.protocol });
  }
  return out;
}

/** What a helper wrote to its stderr file (pasta's lines about an unreachable syslog left out). */
async function messages(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim() && !/^Failed to send \d+ bytes to syslog/.test(l)).join('; ').slice(0, 2000).trim();
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('exit', (code) => resolve(code));
  });
}

/** A new network namespace, as a descriptor of this process (its maker, a shell, ends when we close its stdin). */
async function newNetns(signal?: AbortSignal): Promise<number> {
  const holder = spawn('unshare', ['--net', 'sh', '-c', 'echo; read _'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
  holder.on('error', () => {});
  let err = '';
  holder.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  try {
    const ready = await new Promise<boolean>((resolve) => {
      holder.stdout!.once('data', () => resolve(true));
      holder.once('exit', () => resolve(false));
      holder.once('error', () => resolve(false));
    });
    if (!ready || holder.pid === undefined) throw new ImgbuildError('FAILED_PRECONDITION', `cannot make a network namespace (unshare --net): ${err.trim() || 'it ended'}`);
    return openSync(`/proc/${holder.pid}/ns/net`, 'r');
  } finally {
    holder.stdin!.end();
    holder.stdout!.destroy();
    holder.stderr!.destroy();
  }
}

/** One request on slirp4netns's API socket (one JSON object each way per connection). */
function slirpApi(path: string, req: unknown): Promise<{ return?: unknown; error?: { desc?: string } }> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let data = '';
    s.on('connect', () => s.end(JSON.stringify(req)));
    s.on('data', (b) => (data += b.toString()));
    s.on('error', reject);
    s.on('close', () => {
      try {
        resolve(JSON.parse(data) as { return?: unknown });
      } catch {
        reject(new ImgbuildError('FAILED_PRECONDITION', `slirp4netns's API answered ${JSON.stringify(data)}`));
      }
    });
  });
}

/**
 * The helper's stderr: a file in a directory of its own under /tmp (unlinked once it has started,
 * the helper keeping what it writes later to itself), never a pipe that would break when we exit.
 */
async function stderrFile(dir: string): Promise<number> {
  return openSync(join(dir, 'stderr'), 'w', 0o600);
}

async function startSlirp(netnsFd: number, life: ChildLife, ports: RootlessPort[], dir: string): Promise<void> {
  const api = ports.length > 0 ? join(dir, 'api.sock') : undefined;
  const errFd = await stderrFile(dir);
  {
    // fd 3: the exit fd (the lifeline's peer), fd 4: ready, fd 5: the namespace.
    const child = spawn(
      'slirp4netns',
      ['--configure', '--mtu=65520', '--enable-sandbox', '--enable-seccomp', '--exit-fd=3', '--ready-fd=4', ...(api ? [`--api-socket=${api}`] : []), '--netns-type=path', '/proc/self/fd/5', 'eth0'],
      { stdio: ['ignore', 'ignore', errFd, 'pipe', 'pipe', netnsFd], detached: true },
    );
    closeSync(errFd);
    life.adopt(child);
    const ended = exitOf(child);
    const ready = await Promise.race([
      new Promise<boolean>((resolve) => (child.stdio[4] as Socket).once('data', (b: Buffer) => resolve(b.toString().includes('1')))),
      ended.then(() => false),
    ]);
    (child.stdio[4] as Socket).destroy();
    if (!ready) throw new ImgbuildError('FAILED_PRECONDITION', `slirp4netns did not start: ${(await messages(join(dir, 'stderr'))) || 'it ended'}${tunHint()}`);
    for (const p of ports) {
      const r = await slirpApi(api!, { execute: 'add_hostfwd', arguments: { proto: p.protocol, host_addr: p.hostIp, host_port: p.hostPort, guest_port: p.containerPort } });
      if (r.error) throw new ImgbuildError('FAILED_PRECONDITION', `cannot publish ${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}: ${r.error.desc ?? JSON.stringify(r.error)}`);
    }
  }
}

function tunHint(): string {
  try {
    accessSync('/dev/net/tun', fsc.R_OK | fsc.W_OK);
    return '';
  } catch {
    return ' (/dev/net/tun is not readable and writable by this user: it is mode 0666 on a standard system)';
  }
}

/** pasta's `-t`/`-u` values for the ports (`none` without any). */
export function pastaPorts(ports: readonly RootlessPort[], proto: 'tcp' | 'udp'): string {
  const specs = ports.filter((p) => p.protocol === proto).map((p) => `${p.hostIp === '0.0.0.0' || p.hostIp === '' ? '' : `${p.hostIp}/`}${p.hostPort}:${p.containerPort}`);
  return specs.length ? specs.join(',') : 'none';
}

/** The host's default route's interface, its IPv4 address and gateway: what pasta copies in. */
function hostDefaultRoute(): { ip: string; prefixLength: number; gateway: string } | undefined {
  let text = '';
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const [iface, dest, gw] = line.trim().split(/\s+/);
    if (!iface || dest !== '00000000' || !gw) continue;
    const n = parseInt(gw, 16);
    const gateway = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
    const addr = networkInterfaces()[iface]?.find((a) => a.family === 'IPv4');
    if (!addr) continue;
    return { ip: addr.address, prefixLength: Number(addr.cidr?.split('/')[1] ?? 24), gateway };
  }
  return undefined;
}

/**
 * pasta under its watcher, a `sh` that starts it (pasta forks into the background once the
 * namespace is configured), says its pid, then reads the lifeline's peer (fd 3) until it closes
 * and ends pasta: started first, so that no moment of the start can leave pasta behind when we are
 * killed (SIGPIPE is ignored once pasta has started, which refuses to run with it ignored: a closed
 * stdout must not end the watcher before pasta). pasta is
 * checked by name before the kill (`passt.avx2`, as it re-executes itself): it may have ended by
 * itself and its pid been reused.
 */
const PASTA_WATCHER =
  'pasta "$@" 3<&- || exit 1; trap "" PIPE; p=$(cat "$IMGBUILD_PASTA_PID"); rm -f "$IMGBUILD_PASTA_PID"; echo "$p"; ' +
  'read _ <&3; case $(cat /proc/$p/comm 2>/dev/null) in pasta*|passt*) kill "$p";; esac';

async function startPasta(netnsFd: number, life: ChildLife, ports: RootlessPort[], dir: string): Promise<void> {
  const errFd = await stderrFile(dir);
  const pidFile = join(dir, 'pid');
  // pasta drops its capabilities before opening the namespace: a path of its own (fd 4) needs none.
  const args = ['--config-net', '--quiet', '-I', 'eth0', '-t', pastaPorts(ports, 'tcp'), '-u', pastaPorts(ports, 'udp'), '-T', 'none', '-U', 'none', '--dns-forward', PASTA_DNS, '--runas', '0:0', '--no-netns-quit', '--pid', pidFile, '--netns', '/proc/self/fd/4'];
  const watcher = spawn('sh', ['-c', PASTA_WATCHER, 'sh', ...args], {
    stdio: ['ignore', 'pipe', errFd, 'pipe', netnsFd],
    detached: true,
    env: { ...process.env, IMGBUILD_PASTA_PID: pidFile },
  });
  closeSync(errFd);
  life.adopt(watcher);
  const ended = exitOf(watcher);
  const said = await Promise.race([
    new Promise<string>((resolve) => watcher.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim()))),
    ended.then(() => ''),
  ]);
  watcher.stdout!.destroy();
  const pid = Number(said);
  if (!said || !Number.isInteger(pid) || pid <= 0) {
    throw new ImgbuildError('FAILED_PRECONDITION', `pasta did not start: ${(await messages(join(dir, 'stderr'))) || 'it ended'}${tunHint()}`);
  }
}

/** The process whose fd 3 is the lifeline's peer, let go of once started (or killed on failure). */
class ChildLife {
  child?: ChildProcess;
  adopt(child: ChildProcess): void {
    this.child = child;
    child.on('error', () => {});
  }
  get lifeline(): Socket {
    return this.child!.stdio[3] as Socket;
  }
  release(): void {
    this.child?.unref();
    (this.child?.stdio[3] as Socket | undefined)?.unref();
  }
  kill(): void {
    // Closing the lifeline's peer first lets pasta's watcher end pasta before it is killed.
    (this.child?.stdio[3] as Socket | undefined)?.destroy();
    if (this.child?.spawnfile !== 'sh') this.child?.kill('SIGKILL');
  }
}

/**
 * Makes the namespace and starts its helper with the ports forwarded. The caller hands `lifeline`
 * to the sandbox and calls `close()` once the sandbox has started (or failed to).
 */
export async function setupRootlessNetwork(
  mode: RootlessNetworkMode,
  o: { ports?: readonly RootlessPortRequest[]; signal?: AbortSignal } = {},
): Promise<RootlessNetwork> {
  if (!onPath(mode)) throw missingHelper(mode);
  checkUnprivilegedPorts(o.ports ?? []);
  const hostRoute = mode === 'pasta' ? hostDefaultRoute() : undefined;
  if (mode === 'pasta' && !hostRoute) throw new ImgbuildError('FAILED_PRECONDITION', 'pasta copies the host\'s default route and its address into the container, and this host has no IPv4 default route: use --network slirp4netns');
  const ports = await choosePorts(o.ports ?? []);
  const fd = await newNetns(o.signal);
  const life = new ChildLife();
  const dir = await mkdtemp(join(tmpdir(), `imgbuild-${mode}-`));
  try {
    if (mode === 'slirp4netns') await startSlirp(fd, life, ports, dir);
    else await startPasta(fd, life, ports, dir);
    if (o.signal?.aborted) throw o.signal.reason;
  } catch (e) {
    life.kill();
    closeSync(fd);
    throw e;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  life.release();
  let closed = false;
  const addr = mode === 'slirp4netns' ? { ip: SLIRP.ip, prefixLength: SLIRP.prefixLength, gateway: SLIRP.gateway, dns: SLIRP.dns, hostLoopback: SLIRP.gateway } : { ...hostRoute!, dns: PASTA_DNS, hostLoopback: hostRoute!.gateway };
  return {
    mode,
    netnsPath: `/proc/${process.pid}/fd/${fd}`,
    ...addr,
    ports,
    lifeline: life.lifeline,
    close: () => {
      if (closed) return;
      closed = true;
      life.lifeline.destroy();
      closeSync(fd);
    },
  };
}
