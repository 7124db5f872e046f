/**
 * The resolv.conf a sandbox gets, derived from the host's as BuildKit and Docker derive it (moby
 * libnetwork/internal/resolvconf, BuildKit executor/oci/resolvconf.go):
 * - with the host's network the host's file is used as it is (its loopback resolver is reachable);
 * - in a network namespace of its own a loopback nameserver (127.0.0.0/8, ::1) is unreachable, so
 *   it is dropped. When the host's file names only systemd-resolved's stub (127.0.0.53), the
 *   upstream list systemd-resolved keeps in /run/systemd/resolve/resolv.conf is read instead;
 *   when no nameserver is left, Docker's fallbacks (Google's public resolvers) are written.
 * `search`, `options` and unknown lines are kept; comments and blank lines are not.
 */
import { readFile } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';

/** Where the host's DNS configuration is read (tests point these at files of their own). */
export interface HostDnsSource {
  /** Default /etc/resolv.conf. */
  resolvConf?: string;
  /** systemd-resolved's upstream list, default /run/systemd/resolve/resolv.conf. */
  systemdResolvConf?: string;
}

export const HOST_RESOLV_CONF = '/etc/resolv.conf';
export const SYSTEMD_RESOLV_CONF = '/run/systemd/resolve/resolv.conf';
const SYSTEMD_STUB = '127.0.0.53';
/** Docker's defaults when no usable nameserver is left (moby defaultIPv4NSs, defaultIPv6NSs). */
export const FALLBACK_NAMESERVERS: readonly string[] = ['8.8.8.8', '8.8.4.4', '2001:4860:4860::8888', '2001:4860:4860::8844'];

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
  /** Directives resolv.conf parsers here do not know, kept as written. */
  other: string[];
}

/** Parses resolv.conf text like moby's processLine: the last `search` (or `domain`) wins, options add up. */
export function parseResolvConf(text: string): ResolvConf {
  const rc: ResolvConf = { nameservers: [], search: [], options: [], other: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const fields = line.split(/\s+/);
    switch (fields[0]) {
      case 'nameserver':
        // An address that does not parse is dropped, as moby drops it.
        if (fields[1] !== undefined && isIP(fields[1]) !== 0) rc.nameservers.push(fields[1]);
        break;
      case 'domain':
      case 'search':
        if (fields.length > 1) rc.search = fields.slice(1);
        break;
      case 'options':
        rc.options.push(...fields.slice(1));
        break;
      default:
        rc.other.push(line);
    }
  }
  return rc;
}

export function formatResolvConf(rc: ResolvConf): string {
  const lines = rc.nameservers.map((n) => `nameserver ${n}`);
  if (rc.search.length) lines.push(`search ${rc.search.join(' ')}`);
  if (rc.options.length) lines.push(`options ${rc.options.join(' ')}`);
  lines.push(...rc.other);
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * 127.0.0.0/8 and ::1, IPv4-mapped forms included (Go's netip IsLoopback). A dotted IPv4 address
 * is judged by its first octet; the BlockList, whose construction loads two of Node's modules
 * every `run` would otherwise pay for, is made only for an IPv6 nameserver.
 */
export function isLoopbackAddress(a: string): boolean {
  const addr = a.split('%')[0] ?? '';
  const family = isIP(addr);
  if (family === 4) return addr.startsWith('127.');
  if (family !== 6) return false;
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  return loopback.check(addr, 'ipv6');
}

async function load(path: string): Promise<ResolvConf> {
  try {
    return parseResolvConf(await readFile(path, 'utf8'));
  } catch (e) {
    // A missing file is an empty one (BuildKit): the fallbacks are used.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return parseResolvConf('');
    throw e;
  }
}

/**
 * The resolv.conf text for a sandbox: `host` shares the host's network, `private` has a network
 * namespace of its own (a bridge, or none).
 */
export async function sandboxResolvConf(mode: 'host' | 'private', src: HostDnsSource = {}, forwarder?: string): Promise<string> {
  return formatResolvConf(await sandboxResolv(mode, src, forwarder));
}

/** `--dns`, `--dns-search` and `--dns-option` of `run`: each list, when given, replaces the host's. */
export interface DnsOverrides {
  nameservers?: readonly string[];
  search?: readonly string[];
  options?: readonly string[];
}

/**
 * A container's resolv.conf: the sandbox's (above) with `run`'s overrides, as moby's sandbox DNS
 * setup does it: given nameservers are used as they are (a loopback one too: the user's choice),
 * `--dns-search .` means no search domain.
 */
export async function containerResolvConf(mode: 'host' | 'private', o: DnsOverrides, src: HostDnsSource = {}, forwarder?: string): Promise<string> {
  const rc = await sandboxResolv(mode, src, forwarder);
  if (o.nameservers?.length) rc.nameservers = [...o.nameservers];
  if (o.search?.length) rc.search = o.search.filter((d) => d !== '.');
  if (o.options?.length) rc.options = [...o.options];
  return formatResolvConf(rc);
}

/**
 * `forwarder`: a rootless helper's resolver inside the namespace (slirp4netns's 10.0.2.3, pasta's
 * --dns-forward address), which asks the host's resolvers from the host, a loopback one too: it is
 * the only nameserver, as podman writes it; the host's search domains and options are kept.
 */
async function sandboxResolv(mode: 'host' | 'private', src: HostDnsSource, forwarder?: string): Promise<ResolvConf> {
  const hostPath = src.resolvConf ?? HOST_RESOLV_CONF;
  let rc = await load(hostPath);
  if (forwarder) return { ...rc, nameservers: [forwarder] };
  if (mode === 'private' && rc.nameservers.length === 1 && rc.nameservers[0] === SYSTEMD_STUB) {
    rc = await load(src.systemdResolvConf ?? SYSTEMD_RESOLV_CONF);
  }
  if (mode === 'private' || rc.nameservers.length === 0) {
    rc.nameservers = rc.nameservers.filter((n) => !isLoopbackAddress(n));
    if (rc.nameservers.length === 0) rc.nameservers = [...FALLBACK_NAMESERVERS];
  }
  return rc;
}
