/**
 * Published ports: a small detached userland TCP proxy per container (port-proxy.ts) listening on
 * 127.0.0.1:hostPort and forwarding to containerIP:containerPort over the bridge. Chosen over DNAT
 * because DNAT of 127.0.0.1 needs the host-wide route_localnet sysctl and a hairpin rule; the proxy
 * needs neither, and it exits on its own when the container's network namespace goes away.
 */
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'node:net';
import type { PortBinding } from './record.js';
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

/** Starts the proxy and waits until every host port accepts connections. Returns its pid. */
export async function startPortProxy(o: { containerIp: string; ports: PortBinding[]; netnsPath: string }): Promise<number> {
  const { cmd, args } = proxyScript();
  const spec = o.ports.map((p) => `${p.hostIp}:${p.hostPort}:${p.containerPort}`).join(',');
  // A plain TCP relay: it has no use for extra CA certificates, which Node would parse while it
  // starts (tens of ms when NODE_EXTRA_CA_CERTS names a system bundle; see bin/imgbuild).
  const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
  const child = spawn(cmd, [...args, o.containerIp, spec, o.netnsPath], { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number>((res) => child.once('exit', (c) => res(c ?? 1)));
  const deadline = Date.now() + 5_000;
  for (const p of o.ports) {
    for (;;) {
      const ok = await new Promise<boolean>((res) => {
        const s = connect({ host: p.hostIp, port: p.hostPort });
        s.once('connect', () => {
          s.destroy();
          res(true);
        });
        s.once('error', () => res(false));
      });
      if (ok) break;
      const code = await Promise.race([exited, sleep(20).then(() => undefined)]);
      if (code !== undefined || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new ImgbuildError('UNAVAILABLE', `publishing ${p.hostIp}:${p.hostPort}: ${err.trim() || 'the port proxy did not start'}`);
      }
    }
  }
  child.stderr!.destroy();
  child.unref();
  return child.pid!;
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
