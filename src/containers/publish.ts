/**
 * Published ports as Docker has them: `-p [ip:][hostPort:]containerPort[/tcp|udp]` with port
 * ranges (go-connections' nat.ParsePortSpec), `-P` (every exposed port on a random host port), and
 * their display in `ps` (docker/cli's DisplayablePorts) and `inspect`. An empty host ip means
 * every address: 0.0.0.0 and `::`; host port 0 means a free port the kernel picks from the
 * ephemeral range, as Docker's allocator does.
 */
import { isIP } from 'node:net';
import { ImgbuildError, InvalidArgumentError } from '../errors.js';
import type { PortBinding, PublishedPort } from './record.js';

export type Protocol = 'tcp' | 'udp';

function portRange(text: string, what: 'containerPort' | 'hostPort'): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const start = m ? Number(m[1]) : NaN;
  const end = m ? Number(m[2] ?? m[1]) : NaN;
  // Docker: port 0 only as "any host port"; a container port must be 1-65535.
  const min = what === 'hostPort' ? 0 : 1;
  if (!m || start < min || end > 65535 || end < start || (start === 0 && end !== 0)) {
    throw new InvalidArgumentError(`invalid ${what}: ${text}`);
  }
  return [start, end];
}

function protocolOf(p: string, spec: string): Protocol {
  const proto = p.toLowerCase();
  if (proto === 'tcp' || proto === 'udp') return proto;
  if (proto === 'sctp') throw new ImgbuildError('NOT_IMPLEMENTED', `-p ${spec}: sctp ports cannot be published`);
  throw new InvalidArgumentError(`invalid proto: ${p}`);
}

/** One `-p` value as the bindings it asks for (one per container port of a range). */
export function parsePublish(spec: string): PortBinding[] {
  const slash = spec.lastIndexOf('/');
  const body = slash < 0 ? spec : spec.slice(0, slash);
  const protocol = slash < 0 ? 'tcp' : protocolOf(spec.slice(slash + 1), spec);
  let hostIp = '';
  let rest = body;
  // An IPv6 address comes in brackets: [::1]:8080:80.
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(body);
  if (v6) {
    hostIp = v6[1]!;
    rest = v6[2]!;
    if (isIP(hostIp) !== 6) throw new InvalidArgumentError(`invalid IP address: ${hostIp}`);
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) hostIp = parts.shift()!;
  else if (v6 && parts.length !== 2) throw new InvalidArgumentError(`invalid port specification: ${JSON.stringify(spec)}`);
  if (parts.length > 2 || parts.some((p, i) => p === '' && (i === parts.length - 1 || parts.length === 1))) {
    throw new InvalidArgumentError(`invalid port specification: ${JSON.stringify(spec)}`);
  }
  if (hostIp !== '' && isIP(hostIp) === 0) throw new InvalidArgumentError(`invalid IP address: ${hostIp}`);
  const ctrText = parts.at(-1)!;
  const hostText = parts.length === 2 ? parts[0]! : '';
  const [cStart, cEnd] = portRange(ctrText, 'containerPort');
  const [hStart, hEnd] = hostText === '' ? [0, 0] : portRange(hostText, 'hostPort');
  const out: PortBinding[] = [];
  if (hostText !== '' && hEnd - hStart !== cEnd - cStart) {
    // A host range for one container port is where a free host port is looked for.
    if (cEnd !== cStart) throw new InvalidArgumentError(`invalid ranges specified for container and host Ports: ${ctrText} and ${hostText}`);
    out.push({ hostIp, hostPort: hStart, hostPortEnd: hEnd, containerPort: cStart, protocol });
    return out;
  }
  for (let i = 0; i <= cEnd - cStart; i++) {
    out.push({ hostIp, hostPort: hostText === '' ? 0 : hStart + i, containerPort: cStart + i, protocol });
  }
  return out;
}

/** `--expose port[-end][/proto]` and the image's ExposedPorts keys, as `80/tcp`. */
export function parseExpose(spec: string): string[] {
  const [ports = '', proto = 'tcp'] = spec.split('/');
  const [start, end] = portRange(ports, 'containerPort');
  const p = protocolOf(proto, spec);
  return Array.from({ length: end - start + 1 }, (_, i) => `${start + i}/${p}`);
}

/**
 * The bindings of a container: the `-p` ones, plus with `-P` one on a random host port of every
 * address for each exposed port no `-p` names (Docker's PublishAllPorts).
 */
export function portBindings(publish: readonly string[], publishAll: boolean, exposed: readonly string[]): PortBinding[] {
  const out = publish.flatMap(parsePublish);
  if (!publishAll) return out;
  const named = new Set(out.map((b) => `${b.containerPort}/${b.protocol}`));
  for (const key of exposed) {
    if (named.has(key)) continue;
    const [port, proto] = key.split('/');
    const containerPort = Number(port);
    if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535 || (proto !== 'tcp' && proto !== 'udp')) continue;
    named.add(key);
    out.push({ hostIp: '', hostPort: 0, containerPort, protocol: proto });
  }
  return out;
}

/** `HostConfig.PortBindings`: the bindings as asked for (an empty HostPort for a random one). */
export function requestedPortsDocument(bindings: readonly PortBinding[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const doc: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const b of bindings) {
    const port = b.hostPortEnd !== undefined ? `${b.hostPort}-${b.hostPortEnd}` : b.hostPort === 0 ? '' : String(b.hostPort);
    (doc[`${b.containerPort}/${b.protocol}`] ??= []).push({ HostIp: b.hostIp, HostPort: port });
  }
  return doc;
}

/** `NetworkSettings.Ports`: each exposed or published port, with where it is published (null: nowhere). */
export function publishedPortsDocument(
  published: readonly PublishedPort[],
  exposed: readonly string[],
): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const doc: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const key of exposed) doc[key] = null;
  for (const p of published) {
    const key = `${p.containerPort}/${p.protocol}`;
    (doc[key] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  }
  return doc;
}

/**
 * The PORTS column of `ps` as docker/cli 20.10's DisplayablePorts prints it: sorted by container
 * port, address, host port; a port published on the same number (or only exposed) is folded with
 * its consecutive neighbours into `0.0.0.0:8000-8002->8000-8002/tcp` (`80-82/tcp`); a port mapped
 * to another number is listed on its own, after those: `0.0.0.0:8080->80/tcp, :::8080->80/tcp`.
 */
export function formatPorts(published: readonly PublishedPort[], exposed: readonly string[]): string {
  const seen = new Set(published.map((p) => `${p.containerPort}/${p.protocol}`));
  type Row = { ip: string; pub: number; priv: number; type: string };
  const rows: Row[] = [
    ...published.map((p) => ({ ip: p.hostIp, pub: p.hostPort, priv: p.containerPort, type: p.protocol as string })),
    ...exposed.filter((k) => !seen.has(k)).map((k) => ({ ip: '', pub: 0, priv: Number(k.split('/')[0]), type: k.split('/')[1] ?? 'tcp' })),
  ];
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  rows.sort((a, b) => a.priv - b.priv || cmp(a.ip, b.ip) || a.pub - b.pub || cmp(a.type, b.type));
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const mappings: string[] = [];
  const form = (key: string, g: { first: number; last: number }): string => {
    const slash = key.lastIndexOf('/');
    const ip = slash < 0 ? '' : key.slice(0, slash);
    const type = key.slice(slash + 1);
    const range = g.first === g.last ? String(g.first) : `${g.first}-${g.last}`;
    return ip ? `${ip}:${range}->${range}/${type}` : `${range}/${type}`;
  };
  for (const r of rows) {
    let key = r.type;
    if (r.ip !== '') {
      if (r.pub !== r.priv) {
        mappings.push(`${r.ip}:${r.pub}->${r.priv}/${r.type}`);
        continue;
      }
      key = `${r.ip}/${r.type}`;
    }
    const g = groups.get(key);
    if (!g) groups.set(key, { first: r.priv, last: r.priv });
    else if (r.priv === g.last + 1) g.last = r.priv;
    else {
      result.push(form(key, g));
      groups.set(key, { first: r.priv, last: r.priv });
    }
  }
  for (const [key, g] of groups) result.push(form(key, g));
  return [...result, ...mappings].join(', ');
}
