/**
 * validateImage(store, desc): a full conformance check of an image in the store, for the end of
 * every test that produces one (after go-containerregistry's validate.Image):
 *  - every blob's digest and size is recomputed (manifest, config, each layer);
 *  - each layer is decompressed per its media type and its diffID recomputed, and the config's
 *    rootfs.diff_ids must equal them in order, one per layer;
 *  - history entries without empty_layer must match the number of layers;
 *  - manifest and config (and index, if given one) validate against the OCI image-spec JSON
 *    schemas in test/conformance/data/image-spec-schema (Docker schema2 media types are mapped
 *    to their OCI counterparts first, as image-spec's own backwards-compatibility tests do), plus
 *    the checks the Go validator adds beyond the schema (digest syntax, Env as KEY=value).
 * Throws an Error listing every problem found.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { OciStore } from '../../src/store/store.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../../src/image/types.js';
import { isDigest } from '../../src/image/digest.js';
import { isImage, isIndex, isLayer, layerCompression, MediaTypes } from '../../src/image/media-types.js';
import { decompress } from '../../src/compress/compress.js';

export const SCHEMA_DIR = join(import.meta.dirname, 'data', 'image-spec-schema');
const BASE = 'https://opencontainers.org/schema/image/';

type SchemaName = 'config-schema.json' | 'image-manifest-schema.json' | 'image-index-schema.json' | 'image-layout-schema.json' | 'content-descriptor.json';

/**
 * The schemas are draft-04 (`id`); Ajv 8 speaks draft-07+. Every file is registered under one
 * base URL so their relative `$ref`s ("defs-descriptor.json#/...") resolve, nested `id`s (which
 * would move the resolution base) are dropped, and formats are enforced with ajv-formats.
 */
function toDraft7(node: unknown, top: boolean, file: string): unknown {
  if (Array.isArray(node)) return node.map((n) => toDraft7(n, false, file));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if (k === '$schema') continue;
    if (k === 'id' && typeof v === 'string') continue;
    if (k === 'properties' && v && typeof v === 'object') {
      // property names are data, not keywords: keep them all (even one called "id")
      out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([pk, pv]) => [pk, toDraft7(pv, false, file)]));
      continue;
    }
    out[k] = toDraft7(v, false, file);
  }
  if (top) out.$id = BASE + file;
  return out;
}

let ajvCache: { ajv: Ajv; fns: Map<string, ValidateFunction> } | undefined;

function compiled(name: SchemaName): ValidateFunction {
  if (!ajvCache) {
    const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
    const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => void;
    addFormats(ajv);
    for (const f of readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.json') && !['spec-examples.json', 'test-vectors.json'].includes(n))) {
      ajv.addSchema(toDraft7(JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')), true, f) as object);
    }
    ajvCache = { ajv, fns: new Map() };
  }
  let fn = ajvCache.fns.get(name);
  if (!fn) {
    fn = ajvCache.ajv.getSchema(BASE + name);
    if (!fn) throw new Error(`schema ${name} not found in ${SCHEMA_DIR}`);
    ajvCache.fns.set(name, fn);
  }
  return fn;
}

const DOCKER_TO_OCI: Record<string, string> = {
  [MediaTypes.DOCKER_MANIFEST_LIST]: MediaTypes.OCI_INDEX,
  [MediaTypes.DOCKER_MANIFEST]: MediaTypes.OCI_MANIFEST,
  [MediaTypes.DOCKER_CONFIG]: MediaTypes.OCI_CONFIG,
  [MediaTypes.DOCKER_LAYER]: MediaTypes.OCI_LAYER,
  [MediaTypes.DOCKER_LAYER_GZIP]: MediaTypes.OCI_LAYER_GZIP,
  [MediaTypes.DOCKER_LAYER_ZSTD]: MediaTypes.OCI_LAYER_ZSTD,
  [MediaTypes.DOCKER_LAYER_FOREIGN_GZIP]: MediaTypes.OCI_LAYER_NONDIST_GZIP,
};

/** image-spec's convertFormats: Docker v2 media types → OCI, by text substitution on the JSON. */
export function convertDockerMediaTypes(json: string): string {
  let s = json;
  for (const [d, o] of Object.entries(DOCKER_TO_OCI)) s = s.split(`"${d}"`).join(`"${o}"`);
  return s;
}

/** Schema errors of a JSON document (text), as readable strings; empty when valid. */
export function schemaErrors(schema: SchemaName, json: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    return [`not JSON: ${(e as Error).message}`];
  }
  const fn = compiled(schema);
  if (fn(doc)) return [];
  return (fn.errors ?? []).map((e) => `${schema}${e.instancePath || '/'} ${e.message ?? 'invalid'}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
}

/** What image-spec's Go validator checks beyond the schema. */
function beyondSchema(kind: 'manifest' | 'config' | 'index', doc: unknown): string[] {
  const errs: string[] = [];
  const checkDesc = (d: Descriptor | undefined, where: string): void => {
    if (!d) return;
    if (!isDigest(d.digest)) errs.push(`${where}: invalid digest ${JSON.stringify(d.digest)}`);
    if (!Number.isSafeInteger(d.size) || d.size < 0) errs.push(`${where}: invalid size ${d.size}`);
  };
  if (kind === 'manifest') {
    const m = doc as Manifest;
    checkDesc(m.config, 'config');
    m.layers?.forEach((l, i) => checkDesc(l, `layers[${i}]`));
  } else if (kind === 'index') {
    (doc as Index).manifests?.forEach((m, i) => checkDesc(m, `manifests[${i}]`));
  } else {
    const c = doc as ImageConfig;
    for (const e of c.config?.Env ?? []) if (!/^[^=]+=.*$/s.test(e)) errs.push(`config.Env entry ${JSON.stringify(e)} is not KEY=value`);
    for (const d of c.rootfs?.diff_ids ?? []) if (!isDigest(d)) errs.push(`rootfs.diff_ids: invalid digest ${JSON.stringify(d)}`);
  }
  return errs;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function readBlob(store: OciStore, d: Descriptor, what: string, errs: string[]): Promise<Buffer | undefined> {
  let raw: Buffer;
  try {
    const { readFile } = await import('node:fs/promises');
    if ((await store.info(d.digest))?.lazy) {
      // A build layer kept unwritten (store/lazy.ts): the bytes its reader packs, checked here again.
      const chunks: Buffer[] = [];
      for await (const c of await store.reader({ digest: d.digest, size: -1 })) chunks.push(c as Buffer);
      raw = Buffer.concat(chunks);
    } else raw = await readFile(store.blobPath(d.digest));
  } catch (e) {
    errs.push(`${what} ${d.digest}: cannot read blob (${(e as Error).message})`);
    return undefined;
  }
  const actual = sha256(raw);
  if (actual !== d.digest) errs.push(`${what}: digest ${d.digest} but content hashes to ${actual}`);
  if (raw.length !== d.size) errs.push(`${what} ${d.digest}: descriptor size ${d.size} but blob has ${raw.length} bytes`);
  return raw;
}

export interface ValidatedImage {
  manifest: Manifest;
  config: ImageConfig;
  diffIds: string[];
}

async function validateManifest(store: OciStore, desc: Descriptor, errs: string[]): Promise<ValidatedImage | undefined> {
  const raw = await readBlob(store, desc, 'manifest', errs);
  if (!raw) return undefined;
  const text = raw.toString('utf8');
  errs.push(...schemaErrors('image-manifest-schema.json', convertDockerMediaTypes(text)).map((e) => `manifest ${desc.digest}: ${e}`));
  const manifest = JSON.parse(text) as Manifest;
  errs.push(...beyondSchema('manifest', manifest).map((e) => `manifest ${desc.digest}: ${e}`));
  if (manifest.mediaType !== undefined && manifest.mediaType !== desc.mediaType) {
    errs.push(`manifest ${desc.digest}: mediaType ${manifest.mediaType} differs from its descriptor's ${desc.mediaType}`);
  }
  const docker = desc.mediaType === MediaTypes.DOCKER_MANIFEST;
  const wantConfig = docker ? MediaTypes.DOCKER_CONFIG : MediaTypes.OCI_CONFIG;
  if (manifest.config?.mediaType !== wantConfig) errs.push(`manifest ${desc.digest}: config mediaType ${manifest.config?.mediaType} (want ${wantConfig})`);
  const rawConfig = manifest.config ? await readBlob(store, manifest.config, 'config', errs) : undefined;
  if (!rawConfig) return undefined;
  const ctext = rawConfig.toString('utf8');
  errs.push(...schemaErrors('config-schema.json', ctext).map((e) => `config ${manifest.config.digest}: ${e}`));
  const config = JSON.parse(ctext) as ImageConfig;
  errs.push(...beyondSchema('config', config).map((e) => `config: ${e}`));
  const diffIds: string[] = [];
  for (const [i, l] of (manifest.layers ?? []).entries()) {
    if (!isLayer(l.mediaType)) {
      errs.push(`layers[${i}]: not a layer media type ${l.mediaType}`);
      continue;
    }
    if (docker !== l.mediaType.startsWith('application/vnd.docker.')) errs.push(`layers[${i}]: ${l.mediaType} mixes vocabularies with ${desc.mediaType}`);
    const blob = await readBlob(store, l, `layers[${i}]`, errs);
    if (!blob) continue;
    const h = createHash('sha256');
    let n = 0;
    try {
      const { Readable } = await import('node:stream');
      for await (const c of decompress(Readable.from([blob]), layerCompression(l.mediaType))) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      diffIds.push(`sha256:${h.digest('hex')}`);
    } catch (e) {
      errs.push(`layers[${i}] ${l.digest}: cannot decompress as ${l.mediaType}: ${(e as Error).message}`);
      diffIds.push('?');
    }
    if (n % 512 !== 0) errs.push(`layers[${i}] ${l.digest}: uncompressed size ${n} is not a multiple of 512 (not a tar)`);
  }
  const want = config.rootfs?.diff_ids ?? [];
  if (config.rootfs?.type !== 'layers') errs.push(`config: rootfs.type ${JSON.stringify(config.rootfs?.type)} (want "layers")`);
  if (want.length !== (manifest.layers ?? []).length) errs.push(`config lists ${want.length} diff_ids for ${(manifest.layers ?? []).length} layers`);
  diffIds.forEach((d, i) => {
    if (want[i] !== undefined && d !== '?' && d !== want[i]) errs.push(`layers[${i}]: diffID ${d} but config.rootfs.diff_ids[${i}] is ${want[i]}`);
  });
  if (config.history) {
    const nonEmpty = config.history.filter((h) => !h.empty_layer).length;
    if (nonEmpty !== (manifest.layers ?? []).length) errs.push(`config.history has ${nonEmpty} non-empty entries for ${(manifest.layers ?? []).length} layers`);
  }
  return { manifest, config, diffIds };
}

/**
 * Validates the image (or image index) `desc` names in `store`; returns the parsed documents of
 * the (first) image. Throws listing all problems.
 */
export async function validateImage(store: OciStore, desc: Descriptor): Promise<ValidatedImage> {
  const errs: string[] = [];
  let result: ValidatedImage | undefined;
  if (isIndex(desc.mediaType)) {
    const raw = await readBlob(store, desc, 'index', errs);
    if (raw) {
      const text = raw.toString('utf8');
      errs.push(...schemaErrors('image-index-schema.json', convertDockerMediaTypes(text)).map((e) => `index ${desc.digest}: ${e}`));
      const idx = JSON.parse(text) as Index;
      errs.push(...beyondSchema('index', idx).map((e) => `index: ${e}`));
      for (const m of idx.manifests ?? []) {
        if (!isImage(m.mediaType) || !(await store.info(m.digest))) continue;
        const r = await validateManifest(store, m, errs);
        result ??= r;
      }
    }
  } else {
    result = await validateManifest(store, desc, errs);
  }
  if (errs.length > 0 || !result) throw new Error(`image ${desc.digest} is invalid:\n  ${errs.join('\n  ') || 'no image found'}`);
  return result;
}
