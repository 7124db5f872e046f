/**
 * `--cache-to` / `--cache-from` values as buildx reads them, and the cache manifest's format:
 * what an export writes reads back, and what is not an imgbuild cache is refused as such.
 */
import { describe, expect, it } from 'vitest';
import { csvFields, parseCacheFrom, parseCacheTo } from '../../src/builder/remote-cache/options.js';
import { CACHE_CONFIG_TYPE, CacheFormatError, encodeCache, LayerList, parseCacheConfig, parseCacheManifest, type CacheConfig } from '../../src/builder/remote-cache/format.js';
import { MediaTypes } from '../../src/image/media-types.js';
import type { Digest } from '../../src/image/digest.js';

const d = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;

describe('--cache-to and --cache-from values', () => {
  it('splits CSV fields as Go encoding/csv does', () => {
    expect(csvFields('a,b=c')).toEqual(['a', 'b=c']);
    expect(csvFields('"type=local","dest=a,b"')).toEqual(['type=local', 'dest=a,b']);
    expect(() => csvFields('x="a"')).toThrow(/bare quote/);
    expect(csvFields('"x="""')).toEqual(['x="']);
    expect(() => csvFields('"open')).toThrow(/unterminated/);
  });

  it('reads registry and local exports with their defaults', () => {
    expect(parseCacheTo('type=registry,ref=localhost:5000/app:cache')).toEqual([
      { to: { type: 'registry', ref: 'localhost:5000/app:cache' }, mode: 'min', compression: 'gzip', ignoreError: false, cacheMounts: false },
    ]);
    expect(parseCacheTo('TYPE=local,Dest=/c,mode=max,compression=uncompressed,ignore-error=true,tag=t')).toEqual([
      { to: { type: 'local', dir: '/c', tag: 't' }, mode: 'max', compression: 'none', ignoreError: true, cacheMounts: false },
    ]);
    expect(parseCacheTo('type=registry,ref=r/x,compression=zstd,compression-level=9,image-manifest=true,oci-mediatypes=true')[0]).toMatchObject({ compression: 'zstd', compressionLevel: 9 });
  });

  it('reads bare refs as registry imports, as docker build --cache-from does', () => {
    expect(parseCacheFrom('r/a:1,r/b')).toEqual([{ from: { type: 'registry', ref: 'r/a:1' } }, { from: { type: 'registry', ref: 'r/b' } }]);
    expect(parseCacheFrom('type=local,src=/c,digest=sha256:abc')).toEqual([{ from: { type: 'local', dir: '/c', tag: 'latest', digest: 'sha256:abc' } }]);
  });

  it('refuses what BuildKit would not take, in one line naming the attribute', () => {
    expect(() => parseCacheTo('ref=r/x')).toThrow(/type required/);
    expect(() => parseCacheTo('type=registry')).toThrow(/needs ref=/);
    expect(() => parseCacheTo('type=registry,ref=r/x,mode=all')).toThrow(/mode must be min or max/);
    expect(() => parseCacheTo('type=registry,ref=r/x,compression=lz4')).toThrow(/compression must be/);
    expect(() => parseCacheTo('type=registry,ref=r/x,ignore-error=maybe')).toThrow(/ignore-error must be true or false/);
    expect(() => parseCacheTo('type=gha')).toThrow(/unsupported cache type "gha"/);
    expect(() => parseCacheTo('type=local')).toThrow(/needs dest=DIR/);
    expect(() => parseCacheFrom('type=local,dest=/x')).toThrow(/unknown attribute "dest"/);
    expect(() => parseCacheFrom('type=registry,ref=r/UPPER')).toThrow(/ref "r\/UPPER"/);
    expect(() => parseCacheFrom('a,b=c')).toThrow(/invalid value "a"/);
    expect(() => parseCacheTo(`type=registry,ref=r/x@sha256:${'a'.repeat(64)}`)).toThrow(/names a digest; a cache is written under a tag/);
    expect(parseCacheFrom(`r/x@sha256:${'a'.repeat(64)}`)).toHaveLength(1);
  });
});

describe('cache manifest format', () => {
  const layer = { mediaType: MediaTypes.OCI_LAYER_GZIP, digest: d('a'), size: 10 };
  const config: CacheConfig = {
    schemaVersion: 1,
    steps: [{
      key: `blake3:${'1'.repeat(64)}` as Digest, parent: 'empty:linux/amd64', chainId: d('b'), diffId: d('b'), layer: 0,
      image: { mediaType: MediaTypes.OCI_LAYER, digest: d('b'), size: 2048 }, history: { created: '2024-01-01T00:00:00Z', created_by: 'RUN x' },
    }],
  };

  it('reads back what an export writes', () => {
    const list = new LayerList();
    expect(list.add(layer)).toBe(0);
    expect(list.add({ ...layer })).toBe(0);
    const { configBytes, manifest } = encodeCache(config, list.layers);
    expect(manifest.config.mediaType).toBe(CACHE_CONFIG_TYPE);
    expect(manifest.artifactType).toBe('application/vnd.imgbuild.cache.v1');
    const m = parseCacheManifest(Buffer.from(JSON.stringify(manifest)));
    const doc = parseCacheConfig(configBytes, m);
    expect(doc.byKey.get(config.steps[0]!.key)).toEqual(config.steps[0]);
  });

  it('refuses an image that is not a cache, and drops entries that do not check out', () => {
    const image = { schemaVersion: 2, mediaType: MediaTypes.OCI_MANIFEST, config: { mediaType: MediaTypes.OCI_CONFIG, digest: d('c'), size: 2 }, layers: [] };
    expect(() => parseCacheManifest(JSON.stringify(image))).toThrow(/an image, not an imgbuild build cache/);
    expect(() => parseCacheManifest(JSON.stringify({ ...image, config: { ...image.config, mediaType: 'application/vnd.buildkit.cacheconfig.v0' } }))).toThrow(CacheFormatError);
    expect(() => parseCacheManifest('{')).toThrow(/not JSON/);
    const { configBytes, manifest } = encodeCache({ ...config, steps: [...config.steps, { ...config.steps[0]!, key: `blake3:${'2'.repeat(64)}` as Digest, layer: 5 }] }, [layer]);
    const doc = parseCacheConfig(configBytes, manifest);
    expect(doc.config.steps).toHaveLength(1);
    expect(() => parseCacheConfig('{"schemaVersion":2,"steps":[]}', manifest)).toThrow(/schema version 1/);
  });
});
