/** `--add-host` entries, as `build` and `run` take them (the Docker CLI's syntax). */
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';

/** An `--add-host` entry; `ip` may be `host-gateway` (the address of the host on the sandbox's network). */
export interface ExtraHost {
  host: string;
  ip: string;
}

export const HOST_GATEWAY = 'host-gateway';

/**
 * `--add-host` as the Docker CLI reads it: `name:ip` or `name=ip`, an IPv6 address possibly in
 * brackets, or `host-gateway`.
 */
export function parseAddHost(value: string): ExtraHost {
  let i = value.indexOf('=');
  if (i < 0) i = value.indexOf(':');
  const host = i < 0 ? '' : value.slice(0, i);
  let ip = i < 0 ? '' : value.slice(i + 1);
  if (host === '' || host.includes(':') || /\s/.test(host)) throw new InvalidArgumentError(`bad format for add-host: ${JSON.stringify(value)}`);
  if (ip !== HOST_GATEWAY) {
    if (ip.length > 2 && ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (isIP(ip) === 0) throw new InvalidArgumentError(`invalid IP address in add-host: ${JSON.stringify(ip)}`);
  }
  return { host, ip };
}
