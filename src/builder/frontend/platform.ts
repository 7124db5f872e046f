/**
 * Platforms and the ARGs BuildKit predefines: `TARGET*` / `BUILD*` platform args and the proxy args
 * that may be passed with `--build-arg` without an `ARG` line (and are kept out of the image history).
 */
import type { Platform } from '../../image/types.js';
import { formatPlatform, hostPlatform as hostPlatformOf, normalizePlatform } from '../../image/platform.js';

/** Build args usable without an ARG instruction (Docker's predefined proxy args). */
export const PROXY_ARGS = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
] as const;

const PROXY_SET: ReadonlySet<string> = new Set(PROXY_ARGS);
export function isProxyArg(name: string): boolean {
  return PROXY_SET.has(name);
}

// The parser and normaliser live with the image model (layers), which needs them too.
export { normalizePlatform, formatPlatform, parsePlatform as parsePlatformSpec, hostPlatform as hostPlatformOf } from '../../image/platform.js';

/** BuildKit's automatic platform ARGs for a target and a build platform. */
export function predefinedPlatformArgs(target: Platform, build: Platform = hostPlatformOf()): Map<string, string> {
  const t = normalizePlatform(target);
  const b = normalizePlatform(build);
  return new Map<string, string>([
    ['TARGETPLATFORM', formatPlatform(t)],
    ['TARGETOS', t.os],
    ['TARGETARCH', t.architecture],
    ['TARGETVARIANT', t.variant ?? ''],
    ['BUILDPLATFORM', formatPlatform(b)],
    ['BUILDOS', b.os],
    ['BUILDARCH', b.architecture],
    ['BUILDVARIANT', b.variant ?? ''],
  ]);
}

/** The proxy args among the user's build args (available in RUN without an ARG declaration). */
export function proxyArgsFrom(buildArgs: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of buildArgs) if (isProxyArg(k)) out.set(k, v);
  return out;
}
