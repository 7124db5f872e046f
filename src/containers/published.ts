/** `port`: where a running container's ports are published, as Docker prints them. */
import { NotFoundError, InvalidArgumentError } from '../errors.js';
import type { ContainerRecord, PublishedPort } from './record.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

export interface PortMapping {
  /** `80/tcp` */
  containerPort: string;
  /** `0.0.0.0:8080`, `[::]:8080` */
  host: string;
}

function hostAddress(p: PublishedPort): string {
  const ip = p.hostIp;
  return ip.includes(':') ? `[${ip}]:${p.hostPort}` : `${ip}:${p.hostPort}`;
}

/** `80`, `80/tcp` → [port, proto]; Docker's `nat.ParsePort` rules (proto defaults to tcp). */
function parsePortArg(arg: string): { port: number; proto: string } {
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(arg.trim());
  if (!m) throw new InvalidArgumentError(`invalid port (${arg})`);
  return { port: Number(m[1]), proto: (m[2] ?? 'tcp').toLowerCase() };
}

/** The mappings of `rec`, ordered by container port then protocol (what `docker port` prints). */
export function portMappings(rec: ContainerRecord, filter?: string): PortMapping[] {
  const want = filter === undefined ? undefined : parsePortArg(filter);
  // Where the ports listen (random ones resolved), as Docker reads NetworkSettings.Ports: only while it runs.
  const binds = [...(rec.state.status === 'running' ? (rec.state.ports ?? []) : [])]
    .filter((p) => !want || (p.containerPort === want.port && p.protocol === want.proto))
    .sort((a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol) || a.hostPort - b.hostPort);
  // Named as the user wrote it, as Docker does (`'80'`, `'80/tcp'`).
  if (want && binds.length === 0) throw new NotFoundError(`No public port '${filter}' published for ${rec.name}`);
  return binds.map((p) => ({ containerPort: `${p.containerPort}/${p.protocol}`, host: hostAddress(p) }));
}

export async function containerPorts(root: string, nameOrId: string, filter: string | undefined, o: LifecycleOptions = {}): Promise<PortMapping[]> {
  return portMappings(await getContainer(root, nameOrId, o), filter);
}
