/**
 * `run`'s network flags as Docker reads them: `--network` (bridge/default, none, host,
 * container:NAME), the combinations moby refuses (runconfig's ErrConflict* words), `--pid` and
 * `--ipc`, and the container's /etc/hosts (moby's default entries, the `--add-host` ones, then the
 * container's own address).
 */
import { ROOTLESS_ENV } from '../host/userns.js';
import { readFile } from 'node:fs/promises';
import { ImgbuildError, InvalidArgumentError } from '../errors.js';
import { HOST_GATEWAY, parseAddHost } from '../host/extra-hosts.js';
import type { NetworkMode } from '../host/network.js';
import { missingHelper, probeRootlessNetwork } from '../host/rootless-network.js';
import type { ContainerNetworkMode } from './record.js';

export interface NetworkFlag {
  mode: Exclude<NetworkMode, 'container'> | 'container';
  /** The container named by `container:NAME`. */
  container?: string;
  /** As given (`default` when not given), for inspect; a rootless helper's name for its modes. */
  name: string;
  /** Said once on stderr: what serves a network asked for by another name. */
  note?: string;
}

/**
 * `--network`: Docker's default is the bridge. Rootless, a bridge (a veth into the host's
 * network) is out of reach: the default is a user-mode helper's network, which `bridge` names
 * too, as podman maps it; `slirp4netns` and `pasta` pick one.
 */
export function parseNetworkFlag(value: string | undefined, env: NodeJS.ProcessEnv = process.env): NetworkFlag {
  const v = value ?? 'default';
  if (env[ROOTLESS_ENV] && (v === 'default' || v === 'bridge' || v === 'slirp4netns' || v === 'pasta')) {
    const mode = v === 'slirp4netns' || v === 'pasta' ? v : probeRootlessNetwork(env);
    if (!mode) throw missingHelper(undefined);
    const note = v === 'bridge' ? `warning: a rootless container cannot have a bridge: --network bridge is served by ${mode} (a network namespace of its own with outbound access)` : undefined;
    return { mode, name: mode, ...(note ? { note } : {}) };
  }
  if (v === 'slirp4netns' || v === 'pasta') throw new ImgbuildError('FAILED_PRECONDITION', `network ${v} is a rootless container's: as root, use the bridge (the default)`);
  if (v === 'default' || v === 'bridge') return { mode: 'bridge', name: v };
  if (v === 'none' || v === 'host') return { mode: v, name: v };
  if (v.startsWith('container:') || v === 'container') {
    const c = v.slice('container:'.length);
    if (!c) throw new InvalidArgumentError('invalid network mode: invalid container format container:<name|id>');
    return { mode: 'container', container: c, name: v };
  }
  throw new ImgbuildError('NOT_FOUND', `network ${v} not found (imgbuild has bridge, none, host and container:<name|id>${env[ROOTLESS_ENV] ? ', and rootless slirp4netns and pasta' : ''})`);
}

/** The mode host/network.ts sets up for a container's recorded mode. */
export function hostNetworkMode(m: ContainerNetworkMode): NetworkMode {
  return m.startsWith('container:') ? 'container' : (m as NetworkMode);
}

/** The id a `container:<id>` mode (of --network, --pid or --ipc) names. */
export function joinedContainer(m: ContainerNetworkMode | string): string | undefined {
  return m.startsWith('container:') ? m.slice('container:'.length) : undefined;
}

/** What moby's validateNetContainerMode refuses, in its words. */
export function checkNetworkConflicts(
  net: NetworkFlag,
  o: { hostname?: string; dns: readonly string[]; addHosts: readonly string[]; publish: boolean; expose: boolean; macAddress?: string },
): void {
  if (net.mode === 'container') {
    if (o.hostname) throw new InvalidArgumentError('conflicting options: hostname and the network mode');
    if (o.dns.length) throw new InvalidArgumentError('conflicting options: dns and the network mode');
    if (o.addHosts.length) throw new InvalidArgumentError('conflicting options: custom host-to-IP mapping and the network mode');
    if (o.publish) throw new InvalidArgumentError('conflicting options: port publishing and the container type network mode');
    if (o.expose) throw new InvalidArgumentError('conflicting options: port exposing and the container type network mode');
  }
  if ((net.mode === 'container' || net.mode === 'host') && o.macAddress) throw new InvalidArgumentError('conflicting options: mac-address and the network mode');
}

/** `--mac-address`, as lower-case colon-separated hex. */
export function parseMacAddress(v: string): string {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(v);
  if (!m) throw new InvalidArgumentError(`invalid argument ${JSON.stringify(v)} for "--mac-address" flag: ${v} is not a valid mac address`);
  const mac = [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
  // A multicast address (the low bit of the first byte) cannot be an interface's.
  if (parseInt(m[1]!, 16) & 1) throw new InvalidArgumentError(`invalid argument ${JSON.stringify(v)} for "--mac-address" flag: ${v} is a multicast address`);
  return mac;
}

/** `--pid` / `--ipc`: '' (a namespace of its own), `host`, or `container:NAME` (that container's). */
export function parseNamespaceMode(flag: '--pid' | '--ipc', value: string | undefined): '' | 'host' | `container:${string}` {
  if (value === undefined || value === '' || value === 'private') return '';
  if (value === 'host') return 'host';
  if (value.startsWith('container:') && value.length > 'container:'.length) return value as `container:${string}`;
  if (flag === '--ipc' && (value === 'shareable' || value === 'none')) return '';
  throw new InvalidArgumentError(`${flag}: invalid ${flag === '--pid' ? 'PID' : 'IPC'} mode`);
}

/** Checks `--add-host` values before anything is made. */
export function checkAddHosts(values: readonly string[]): void {
  for (const v of values) parseAddHost(v);
}

/**
 * A container's /etc/hosts: moby's defaults, the `--add-host` entries (`host-gateway` as
 * `gateway`), then the container's own name on its address (127.0.1.1 without one). With the
 * host's network, the host's own file comes first instead of the defaults, as Docker copies it.
 */
export function hostsFile(
  hostname: string,
  o: { ip?: string; domainname?: string; extraHosts?: readonly string[]; gateway?: string; hostHosts?: string } = {},
): string {
  const lines = o.hostHosts !== undefined
    ? o.hostHosts.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1)
    : [
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        'fe00::0\tip6-localnet',
        'ff00::0\tip6-mcastprefix',
        'ff02::1\tip6-allnodes',
        'ff02::2\tip6-allrouters',
      ];
  for (const v of o.extraHosts ?? []) {
    const h = parseAddHost(v);
    const ip = h.ip === HOST_GATEWAY ? (o.gateway ?? '127.0.0.1') : h.ip;
    lines.push(`${ip}\t${h.host}`);
  }
  if (o.hostHosts === undefined) {
    const names = o.domainname ? `${hostname}.${o.domainname} ${hostname}` : hostname;
    lines.push(`${o.ip ?? '127.0.1.1'}\t${names}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The host's /etc/hosts (empty when it has none). */
export async function hostHostsFile(path = '/etc/hosts'): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}
