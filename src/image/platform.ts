/**
 * Platforms (`os/arch[/variant]`): the one parser, normaliser and formatter of the project, and the
 * host's platform. Normalisation follows containerd's `platforms.Normalize`: architecture aliases
 * (x86_64 → amd64, aarch64 → arm64, ...), arm's default variant v7, no `v8` on arm64 and no `v1`
 * on amd64, lower case.
 */
import { ImgbuildError, InvalidArgumentError } from '../errors.js';
import type { Platform } from './types.js';

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
export function parsePlatform(spec: string): Platform {
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

/** `linux/arm/v7`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** The platform this process runs on (always linux here), normalised; `arch` is a Node `process.arch`. */
export function hostPlatform(arch: string = process.arch): Platform {
  return normalizePlatform({ os: 'linux', architecture: NODE_ARCH[arch] ?? arch });
}

export class PlatformNotFoundError extends ImgbuildError {
  constructor(readonly image: string, readonly wanted: Platform, readonly available: string[]) {
    super(
      'NOT_FOUND',
      `no manifest for platform ${formatPlatform(wanted)} in ${image}` +
        (available.length ? ` (available: ${available.join(', ')})` : ''),
    );
    this.name = 'PlatformNotFoundError';
  }
}
