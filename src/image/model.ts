/**
 * The image model: what a loaded image is, its id (the config digest, as Docker shows it), its
 * layers' chain ids and size, and the platform matcher. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import type { Digest } from './digest.js';
import type { Descriptor, ImageConfig, Manifest, Platform } from './types.js';

export interface LoadedImage {
  /** The full reference it was found by (`docker.io/library/busybox:latest`), when found by tag. */
  ref?: string;
  /** The image manifest (after platform selection). */
  descriptor: Descriptor;
  rawManifest: Buffer;
  manifest: Manifest;
  rawConfig: Buffer;
  config: ImageConfig;
  /** The index entry that led here when it differs from `descriptor` (an image index). */
  indexDescriptor?: Descriptor;
}

function normVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8')) return 'v8';
  return p.variant;
}

/** containerd's platform matcher, reduced to exact os/arch and a variant check when one is asked for. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant !== undefined || want.architecture === 'arm64') return normVariant(have) === normVariant(want);
  return true;
}

/** chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)) (image-spec config.md). */
export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  let prev: Digest | undefined;
  for (const d of diffIds) {
    prev = prev === undefined ? d : (`sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}` as Digest);
    out.push(prev);
  }
  return out;
}

/** The image id: the config digest. */
export function imageId(img: Pick<LoadedImage, 'manifest'>): Digest {
  return img.manifest.config.digest;
}

/** Sum of the manifest, config and layer blob sizes (what `images` shows as SIZE). */
export function imageSize(img: LoadedImage): number {
  return img.descriptor.size + img.manifest.config.size + img.manifest.layers.reduce((n, l) => n + l.size, 0);
}
