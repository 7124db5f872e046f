import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, writeFile, stat, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { canonicalJson, stepKey, BuildCache, type StepKeyParts } from '../../src/builder/cache.js';
import { build } from '../../src/builder/build.js';
import type { BuildReporter } from '../../src/builder/build.js';
import { OciStore } from '../../src/store/store.js';
import { digestOf } from '../../src/image/digest.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { validateImage } from '../conformance/validate-image.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp();
});
afterEach(async () => {
  await tmp.cleanup();
});

function recorder(): { reporter: BuildReporter; events: string[] } {
  const events: string[] = [];
  return {
    events,
    reporter: {
      task(label) {
        return {
          log: (l) => events.push(`log ${l}`),
          done: (note) => events.push(`${note ?? 'DONE'} ${label}`),
          fail: (m) => events.push(`FAIL ${label} ${m ?? ''}`),
        };
      },
    },
  };
}

describe('cache keys', () => {
  const base: StepKeyParts = { parent: 'sha256:aa', instruction: { kind: 'copy', sources: ['a'], dest: '/b' }, env: ['A=1'], workdir: '/', content: 'c1' };
  it('canonical JSON does not depend on key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } })).toBe('{"a":{"d":[1,{"x":1,"y":2}]},"b":1}');
    expect(stepKey({ ...base })).toBe(stepKey({ content: 'c1', workdir: '/', env: ['A=1'], instruction: { dest: '/b', sources: ['a'], kind: 'copy' }, parent: 'sha256:aa' }));
  });
  it('every part changes the key', () => {
    const k = stepKey(base);
    expect(k.startsWith('blake3:')).toBe(true);
    for (const change of [{ parent: 'sha256:bb' }, { instruction: { kind: 'copy', sources: ['a'], dest: '/c' } }, { env: ['A=2'] }, { workdir: '/x' }, { content: 'c2' }, { user: 'app' }, { shell: ['/bin/bash', '-c'] }]) {
      expect(stepKey({ ...base, ...change })).not.toBe(k);
    }
  });
  it('records are returned only while their layer blob exists', async () => {
    const store = await OciStore.open(join(tmp.dir, 'root'));
    const cache = await BuildCache.open(store);
    const layer = await store.put(Buffer.from('layer'), MediaTypes.OCI_LAYER);
    const key = stepKey(base);
    expect(await cache.get(key)).toBeUndefined();
    const rec = { diffId: digestOf('layer'), layer, chainId: digestOf('chain'), history: { created_by: 'COPY a /b' } };
    await cache.put(key, rec);
    expect(await cache.get(key)).toMatchObject(rec);
    await store.delete(layer.digest);
    expect(await cache.get(key)).toBeUndefined();
  });
});

/** The files a stat cache file holds (a header line, then a line of entries per directory). */
function statCacheEntries(text: string): number {
  return text.split('\n').slice(1).filter(Boolean).reduce((n, l) => n + (JSON.parse(l.slice(l.indexOf('\t') + 1)) as unknown[]).length, 0);
}

describe('build cache on real builds (scratch, COPY)', () => {
  it('keeps a stat cache file per context: a build reads and rewrites only its own context\'s entries', async () => {
    const root = join(tmp.dir, 'root');
    const files = async (): Promise<string[]> => (await readdir(join(root, 'cache', 'build'))).filter((n) => n.startsWith('stat-cache-')).sort();
    for (const [name, n] of [['one', 3], ['two', 5]] as const) {
      const ctx = join(tmp.dir, name);
      await mkdir(ctx, { recursive: true });
      for (let i = 0; i < n; i++) await writeFile(join(ctx, `f${i}`), `${name} ${i}\n`);
      await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
      await build({ root, contextDir: ctx, tags: [name], reporter: recorder().reporter });
    }
    const [a, b] = await files();
    const sizes = await Promise.all([a!, b!].map(async (f) => statCacheEntries(await readFile(join(root, 'cache', 'build', f), 'utf8'))));
    // each holds its own context's files (the Dockerfile included), never the other's
    expect(sizes.sort()).toEqual([4, 6]);
  });

  it('reuses steps, re-reads nothing on a no-op rebuild, and invalidates from a changed file on', async () => {
    const root = join(tmp.dir, 'root');
    const ctx = join(tmp.dir, 'ctx');
    await mkdir(join(ctx, 'src'), { recursive: true });
    for (let i = 0; i < 50; i++) await writeFile(join(ctx, 'src', `f${i}.txt`), `file ${i}\n`);
    await writeFile(join(ctx, 'late.txt'), 'late v1\n');
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY src/ /src/\nENV A=1\nCOPY late.txt /late.txt\nCOPY src/f1.txt /again.txt\n');

    const r1 = recorder();
    const first = await build({ root, contextDir: ctx, tags: ['cachetest'], reporter: r1.reporter });
    expect(r1.events.filter((e) => e.startsWith('CACHED'))).toEqual([]);
    const store = await OciStore.open(root);
    await validateImage(store, first.descriptor);

    const metaBefore = await stat(join(root, 'overlay', 'metadata.json'));
    const statFiles = (await readdir(join(root, 'cache', 'build'))).filter((n) => /^stat-cache-[0-9a-f]{16}\.json$/.test(n));
    expect(statFiles).toHaveLength(1);
    expect(statCacheEntries(await readFile(join(root, 'cache', 'build', statFiles[0]!), 'utf8'))).toBe(51);

    const r2 = recorder();
    const second = await build({ root, contextDir: ctx, tags: ['cachetest'], reporter: r2.reporter });
    expect(r2.events.filter((e) => e.startsWith('CACHED')).length).toBe(3);
    expect(second.imageId).toBe(first.imageId);
    // No snapshot was prepared, committed or removed: the snapshot metadata is untouched.
    const metaAfter = await stat(join(root, 'overlay', 'metadata.json'));
    expect(metaAfter.mtimeMs).toBe(metaBefore.mtimeMs);

    await writeFile(join(ctx, 'late.txt'), 'late v2\n');
    const r3 = recorder();
    const third = await build({ root, contextDir: ctx, tags: ['cachetest'], reporter: r3.reporter });
    const cached = r3.events.filter((e) => e.startsWith('CACHED'));
    expect(cached.length).toBe(1);
    expect(cached[0]).toContain('COPY src/ /src/');
    expect(r3.events.some((e) => e.startsWith('DONE') && e.includes('COPY src/f1.txt'))).toBe(true);
    expect(third.imageId).not.toBe(first.imageId);
    await validateImage(store, third.descriptor);

    // --no-cache rebuilds every step; with SOURCE_DATE_EPOCH two such builds give one image.
    const r4 = recorder();
    const fourth = await build({ root, contextDir: ctx, noCache: true, sourceDateEpoch: 1, reporter: r4.reporter });
    expect(r4.events.filter((e) => e.startsWith('CACHED'))).toEqual([]);
    const fifth = await build({ root, contextDir: ctx, noCache: true, sourceDateEpoch: 1 });
    expect(fifth.imageId).toBe(fourth.imageId);
    expect(fifth.config.created).toBe('1970-01-01T00:00:01Z');
  });

  it('a touched file with the same content still hits the cache', async () => {
    const root = join(tmp.dir, 'root');
    const ctx = join(tmp.dir, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'a'), 'same');
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a /a\n');
    await build({ root, contextDir: ctx });
    await writeFile(join(ctx, 'a'), 'same');
    const r = recorder();
    await build({ root, contextDir: ctx, reporter: r.reporter });
    expect(r.events.some((e) => e.startsWith('CACHED') && e.includes('COPY a /a'))).toBe(true);
  });
});
