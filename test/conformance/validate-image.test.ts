/**
 * The image validator is only as good as its schema checks: run it against image-spec's own test
 * vectors and spec examples, then show it catches a tampered image.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { schemaErrors, convertDockerMediaTypes, SCHEMA_DIR, validateImage } from './validate-image.js';
import { makeTmp } from '../helpers/tmp.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage, writeImage } from '../../src/store/images.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { digestOf } from '../../src/image/digest.js';

interface Vector { test: string; index: number; schema: string; fail: boolean; document: string; preprocess?: string; needs_beyond_schema?: string }
const vectors = (JSON.parse(readFileSync(join(SCHEMA_DIR, 'test-vectors.json'), 'utf8')) as { cases: Vector[] }).cases;
const examples = (JSON.parse(readFileSync(join(SCHEMA_DIR, 'spec-examples.json'), 'utf8')) as {
  examples: { title: string; mediatype: string; document: string }[];
}).examples;

const SCHEMA_FOR: Record<string, string> = {
  [MediaTypes.OCI_MANIFEST]: 'image-manifest-schema.json',
  [MediaTypes.OCI_INDEX]: 'image-index-schema.json',
  [MediaTypes.OCI_CONFIG]: 'config-schema.json',
  'application/vnd.oci.descriptor.v1+json': 'content-descriptor.json',
  'application/vnd.oci.layout.header.v1+json': 'image-layout-schema.json',
};

describe('schema validation agrees with image-spec test vectors', () => {
  // The vectors that need checks beyond JSON schema are covered by validateImage's extra checks
  // (digest syntax, Env) or depend on validator options; they are listed but judged by schema only
  // where the schema decides.
  const schemaOnly = vectors.filter((v) => !v.needs_beyond_schema || /format: uri/.test(v.needs_beyond_schema));
  it.each(schemaOnly.map((v) => [`${v.test}#${v.index}`, v] as const))('%s', (_name, v) => {
    const doc = v.preprocess ? convertDockerMediaTypes(v.document) : v.document;
    const errs = schemaErrors(v.schema as never, doc);
    expect(errs.length > 0, errs.join('; ')).toBe(v.fail);
  });
});

describe('spec examples validate', () => {
  const usable = examples.filter((e) => SCHEMA_FOR[e.mediatype]);
  it('has examples to check', () => expect(usable.length).toBeGreaterThan(5));
  it.each(usable.map((e) => [e.title, e] as const))('%s', (_t, e) => {
    const errs = schemaErrors(SCHEMA_FOR[e.mediatype] as never, e.document);
    expect(errs, e.document).toEqual([]);
  });
});

describe('validateImage', () => {
  let tmp: Awaited<ReturnType<typeof makeTmp>>;
  let store: OciStore;
  beforeEach(async () => {
    tmp = await makeTmp();
    await ensureBusybox(join(tmp.dir, 's'));
    store = await OciStore.open(join(tmp.dir, 's'));
  });
  afterEach(async () => {
    await store.release();
    await tmp.cleanup();
  });

  it('accepts the busybox base image', async () => {
    const d = (await store.resolve(BUSYBOX_REF))!;
    const r = await validateImage(store, d);
    expect(r.diffIds).toEqual(r.config.rootfs.diff_ids);
  });

  it('rejects a config whose diff_ids do not match the layers', async () => {
    const img = await loadImage(store, (await store.resolve(BUSYBOX_REF))!);
    const bad = await writeImage(store, { ...img.config, rootfs: { type: 'layers', diff_ids: [digestOf('other')] } }, img.manifest.layers);
    await expect(validateImage(store, bad)).rejects.toThrow(/diffID .* but config.rootfs.diff_ids\[0\]/);
  });

  it('rejects a tampered layer and a schema violation', async () => {
    const img = await loadImage(store, (await store.resolve(BUSYBOX_REF))!);
    const bad = await writeImage(store, { ...img.config, config: { Env: ['NOEQUALS'] }, created: 'yesterday' }, img.manifest.layers);
    await expect(validateImage(store, bad)).rejects.toThrow(/date-time[\s\S]*NOEQUALS/);
    const layer = img.manifest.layers[0]!;
    const { open } = await import('node:fs/promises');
    const fh = await open(store.blobPath(layer.digest), 'r+');
    await fh.write(Buffer.from('X'), 0, 1, 1000);
    await fh.close();
    await expect(validateImage(store, img.descriptor)).rejects.toThrow(/content hashes to/);
  });
});
