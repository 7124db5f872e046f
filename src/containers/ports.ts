/**
 * Published ports: a small detached userland proxy per container (port-proxy.ts, TCP and UDP)
 * listening on the host's addresses (every one unless `-p` names one) and forwarding to
 * containerIP:containerPort over the bridge. Chosen over DNAT because DNAT of 127.0.0.1 needs the
 * host-wide route_localnet sysctl and a hairpin rule, and rules that must be undone after a crash;
 * the proxy needs neither, and it exits on its own when the container's network namespace goes away.
 */
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { PortBinding, PublishedPort } from './record.js';
import { ImgbuildError } from '../errors.js';

function proxyScript(): { cmd: string; args: string[] } {
  // Resolved against this module's location, which is src/containers (tsx: bench, tests from
  // source), dist/containers, or dist/cli when running from the CLI bundle: one level below the
  // source or output root in each case.
  if (import.meta.url.endsWith('.ts')) {
    return { cmd: process.execPath, args: ['--import', 'tsx', fileURLToPath(new URL('../containers/port-proxy.ts', import.meta.url))] };
  }
  return { cmd: process.execPath, args: [fileURLToPath(new URL('../containers/port-proxy.js', import.meta.url))] };
}

/**
 * Starts the proxy and waits until it listens on every binding; returns its pid and where it
 * listens (the proxy binds, so a random port is the kernel's pick and never raced for).
 */
export async function startPortProxy(o: { containerIp: string; ports: PortBinding[]; netnsPath: string }): Promise<{ pid: number; ports: PublishedPort[] }> {
  const { cmd, args } = proxyScript();
  const spec = o.ports.map((p) => `${p.protocol}/${p.hostIp}/${p.hostPort}/${p.hostPortEnd ?? ''}/${p.containerPort}`).join(',');
  // A plain relay: it has no use for extra CA certificates, which Node would parse while it
  // starts (tens of ms when NODE_EXTRA_CA_CERTS names a system bundle; see bin/imgbuild).
  const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
  const child = spawn(cmd, [...args, o.containerIp, spec, o.netnsPath], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  let err = '';
  let out = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const report = new Promise<PublishedPort[] | undefined>((resolve) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as PublishedPort[]);
    });
    child.once('exit', () => resolve(undefined));
    // Not a reason to keep the process alive (a detached run returns once the ports are up).
    setTimeout(() => resolve(undefined), 10_000).unref();
  });
  const ports = await report;
  if (!ports) {
    child.kill('SIGKILL');
    throw new ImgbuildError('UNAVAILABLE', `publishing ports: ${err.trim() || 'the port proxy did not start'}`);
  }
  child.stdout!.destroy();
  child.stderr!.destroy();
  child.unref();
  return { pid: child.pid!, ports };
}

/**
 * The running port proxies, found by their command line (`port-proxy.js <ip> <ports> <netnsPath>`)
 * with the container id their netns path names: the way to reach a proxy whose pid never made it
 * into a record (its `run` was killed just after starting it).
 */
export async function findPortProxies(): Promise<{ pid: number; id: string }[]> {
  const out: { pid: number; id: string }[] = [];
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return out;
  }
  await Promise.all(
    names.map(async (n) => {
      if (!/^\d+$/.test(n)) return;
      const argv = await readFile(`/proc/${n}/cmdline`, 'utf8').then((t) => t.split('\0'), () => []);
      if (!argv.some((a) => /\/containers\/port-proxy\.[jt]s$/.test(a))) return;
      const m = argv.map((a) => /^\/run\/netns\/imgbuild-([0-9a-f]{64})$/.exec(a)).find(Boolean);
      if (m) out.push({ pid: Number(n), id: m[1]! });
    }),
  );
  return out;
}
