/**
 * Platforms and the ARGs BuildKit predefines: `TARGET*` / `BUILD*` platform args and the proxy args
 * that may be passed with `--build-arg` without an `ARG` line (and are kept out of the image history).
 */
import { InvalidArgumentError } from '../errors.js';
import type { Platform } from '../layers/types.js';

export const PLATFORM_ARGS = [
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETARCH',
  'TARGETVARIANT',
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDARCH',
  'BUILDVARIANT',
] as const;

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

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  i686: '386',
  x86: '386',
};

/** containerd-style normalisation: arch aliases, arm's default v7, no `v8` on arm64, no `v1` on amd64. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  const rawArch = p.architecture.toLowerCase();
  const architecture = ARCH_ALIASES[rawArch] ?? rawArch;
  let variant = p.variant?.toLowerCase();
  if (rawArch === 'armhf') variant ??= 'v7';
  if (rawArch === 'armel') variant ??= 'v6';
  if (variant !== undefined && /^\d+(\.\d+)?$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'arm') variant ??= 'v7';
  if (architecture === 'arm64' && (variant === 'v8' || variant === 'v8.0')) variant = undefined;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  return out;
}

/** Parses `os/arch[/variant]` (or a bare `arch`, meaning linux) and normalises it. */
export function parsePlatformSpec(spec: string): Platform {
  const s = spec.trim();
  const parts = s.split('/');
  if (s === '' || parts.some((x) => x === '') || parts.length > 3) {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(spec)}: expected os/arch[/variant]`);
  }
  if (parts.length === 1) return normalizePlatform({ os: 'linux', architecture: parts[0]! });
  const p: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return normalizePlatform(p);
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** The platform this process runs on (always linux here), normalised. */
export function hostPlatformOf(arch: string = process.arch): Platform {
  return normalizePlatform({ os: 'linux', architecture: NODE_ARCH[arch] ?? arch });
}

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
