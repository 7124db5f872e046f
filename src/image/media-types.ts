/** Media types imgbuild reads and writes, OCI and Docker, with the predicates callers branch on. */
export const MediaTypes = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_LAYER_NONDIST: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_NONDIST_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_NONDIST_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_FOREIGN_GZIP: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DOCKER_LAYER_ZSTD: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
} as const;

export type MediaType = (typeof MediaTypes)[keyof typeof MediaTypes] | (string & {});

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYERS: ReadonlyMap<string, Compression> = new Map<string, Compression>([
  [MediaTypes.OCI_LAYER, 'none'],
  [MediaTypes.OCI_LAYER_GZIP, 'gzip'],
  [MediaTypes.OCI_LAYER_ZSTD, 'zstd'],
  [MediaTypes.OCI_LAYER_NONDIST, 'none'],
  [MediaTypes.OCI_LAYER_NONDIST_GZIP, 'gzip'],
  [MediaTypes.OCI_LAYER_NONDIST_ZSTD, 'zstd'],
  [MediaTypes.DOCKER_LAYER, 'none'],
  [MediaTypes.DOCKER_LAYER_GZIP, 'gzip'],
  [MediaTypes.DOCKER_LAYER_FOREIGN_GZIP, 'gzip'],
  [MediaTypes.DOCKER_LAYER_ZSTD, 'zstd'],
]);

export function isLayer(mt: string): boolean {
  return LAYERS.has(mt);
}

/** The compression a layer media type declares; undefined when it is not a layer type. */
export function layerCompression(mt: string): Compression | undefined {
  return LAYERS.get(mt);
}

export function isIndex(mt: string): boolean {
  return mt === MediaTypes.OCI_INDEX || mt === MediaTypes.DOCKER_MANIFEST_LIST;
}

export function isImage(mt: string): boolean {
  return mt === MediaTypes.OCI_MANIFEST || mt === MediaTypes.DOCKER_MANIFEST;
}

export function isConfig(mt: string): boolean {
  return mt === MediaTypes.OCI_CONFIG || mt === MediaTypes.DOCKER_CONFIG;
}

export function isDockerType(mt: string): boolean {
  return mt.startsWith('application/vnd.docker.');
}

/** The layer media type for a compression, in the OCI or Docker vocabulary. */
export function layerMediaType(c: Compression, format: 'oci' | 'docker' = 'oci'): MediaType {
  if (format === 'docker') {
    return c === 'gzip' ? MediaTypes.DOCKER_LAYER_GZIP : c === 'zstd' ? MediaTypes.DOCKER_LAYER_ZSTD : MediaTypes.DOCKER_LAYER;
  }
  return c === 'gzip' ? MediaTypes.OCI_LAYER_GZIP : c === 'zstd' ? MediaTypes.OCI_LAYER_ZSTD : MediaTypes.OCI_LAYER;
}
