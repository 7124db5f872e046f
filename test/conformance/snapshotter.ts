/**
 * Reusable snapshotter conformance suite (the ideas of containerd's snapshots/testsuite): every
 * test mounts the returned Mount[] for real on the host and checks the merged tree through the
 * mount. Run it with `snapshotterSuite('overlay', (root) => OverlaySnapshotter.open(root))`.
 *
 * Each test gets its own tmp dir; every mount is undone in `finally`, and the test fails if
 * anything is still mounted under its dir at the end.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Snapshotter, SnapshotInfo } from '../../src/snapshots/snapshotter.js';
import type { Mount } from '../../src/sandbox/spec.js';
import { mountAll, unmount } from '../../src/snapshots/mount.js';
import { makeTmp, mountsUnder } from '../helpers/tmp.js';

export type SnapshotterFactory = (root: string) => Promise<Snapshotter>;

export interface SuiteContext {
  dir: string;
  sn: Snapshotter;
}

/** Mounts `mounts` on a fresh dir under `base`, runs `fn` on it, always unmounts. */
export async function withMount<T>(base: string, mounts: Mount[], fn: (target: string) => Promise<T>): Promise<T> {
  await mkdir(join(base, 'mnt'), { recursive: true });
  const target = await mkdtemp(join(base, 'mnt', 'm-'));
  await mountAll(mounts, target);
  try {
    return await fn(target);
  } finally {
    await unmount(target);
    await rm(target, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** Reads the whole tree under `dir` as { 'a/b': 'content' | '<dir>' } for comparison. */
export async function readTree(dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) {
      out[rel] = '<dir>';
      Object.assign(out, await readTree(dir, rel));
    } else if (e.isFile()) {
      out[rel] = await readFile(join(dir, rel), 'utf8');
    } else {
      out[rel] = '<other>';
    }
  }
  return out;
}

/** prepare → mount → fn(writes) → unmount → commit. */
export async function commitLayer(
  ctx: SuiteContext,
  name: string,
  parent: string | undefined,
  fn: (root: string) => Promise<void>,
): Promise<void> {
  const key = `${name}-active`;
  const mounts = await ctx.sn.prepare(key, parent);
  await withMount(ctx.dir, mounts, fn);
  await ctx.sn.commit(name, key);
}

function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: unknown) => String((e as { code?: unknown }).code ?? (e as Error).message),
  );
}

export function snapshotterSuite(name: string, factory: SnapshotterFactory): void {
  describe(`snapshotter conformance: ${name}`, () => {
    let ctx: SuiteContext;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      const t = await makeTmp(`imgbuild-sn-${name}-`);
      cleanup = t.cleanup;
      ctx = { dir: t.dir, sn: await factory(join(t.dir, 'root')) };
    });

    afterEach(async () => {
      const left = await mountsUnder(ctx.dir);
      await cleanup();
      expect(left, 'mounts left behind by the test').toEqual([]);
    });

    it('Basic: prepare, write, commit, child sees parent, view sees the stack', async () => {
      await commitLayer(ctx, 'base', undefined, async (r) => {
        await writeFile(join(r, 'foo'), 'foo\n');
        await mkdir(join(r, 'a'));
        await writeFile(join(r, 'a', 'b'), 'b\n');
        await writeFile(join(r, 'a', 'c'), 'c\n');
      });
      const mounts = await ctx.sn.prepare('child', 'base');
      await withMount(ctx.dir, mounts, async (r) => {
        expect(await readTree(r)).toEqual({ a: '<dir>', 'a/b': 'b\n', 'a/c': 'c\n', foo: 'foo\n' });
        await writeFile(join(r, 'bar'), 'bar\n');
        await writeFile(join(r, 'a', 'b'), 'B\n');
        await rm(join(r, 'foo'));
      });
      await ctx.sn.commit('top', 'child');
      await withMount(ctx.dir, await ctx.sn.view('v', 'top'), async (r) => {
        expect(await readTree(r)).toEqual({ a: '<dir>', 'a/b': 'B\n', 'a/c': 'c\n', bar: 'bar\n' });
      });
      // The base is unchanged underneath.
      await withMount(ctx.dir, await ctx.sn.view('v-base', 'base'), async (r) => {
        expect(await readTree(r)).toEqual({ a: '<dir>', 'a/b': 'b\n', 'a/c': 'c\n', foo: 'foo\n' });
      });
      // mounts() of an existing active snapshot gives a working mount again.
      await ctx.sn.prepare('again', 'top');
      await withMount(ctx.dir, await ctx.sn.mounts('again'), async (r) => {
        expect(await readFile(join(r, 'bar'), 'utf8')).toBe('bar\n');
      });
    });

    it('Stat: kinds, parents, labels; keys move on commit', async () => {
      await ctx.sn.prepare('p', undefined, { labels: { role: 'base' } });
      const a = await ctx.sn.stat('p');
      expect(a).toMatchObject({ key: 'p', kind: 'active', labels: { role: 'base' } });
      expect(a.parent).toBeUndefined();
      expect(Date.parse(a.created)).not.toBeNaN();
      await ctx.sn.commit('c', 'p');
      expect(await codeOf(ctx.sn.stat('p'))).toBe('NOT_FOUND');
      const c = await ctx.sn.stat('c');
      expect(c).toMatchObject({ key: 'c', kind: 'committed', labels: { role: 'base' } });
      await ctx.sn.prepare('p2', 'c');
      expect(await ctx.sn.stat('p2')).toMatchObject({ kind: 'active', parent: 'c' });
      await ctx.sn.view('v2', 'c');
      expect(await ctx.sn.stat('v2')).toMatchObject({ kind: 'view', parent: 'c' });
      expect(await codeOf(ctx.sn.stat('nope'))).toBe('NOT_FOUND');
      // Errors of the kind rules.
      expect(await codeOf(ctx.sn.prepare('p2', 'c'))).toBe('ALREADY_EXISTS');
      expect(await codeOf(ctx.sn.prepare('x', 'p2'))).toBe('FAILED_PRECONDITION');
      expect(await codeOf(ctx.sn.prepare('x', 'v2'))).toBe('FAILED_PRECONDITION');
      expect(await codeOf(ctx.sn.prepare('x', 'missing'))).toBe('NOT_FOUND');
      expect(await codeOf(ctx.sn.commit('c2', 'c'))).toBe('FAILED_PRECONDITION');
      expect(await codeOf(ctx.sn.commit('c2', 'v2'))).toBe('FAILED_PRECONDITION');
      expect(await codeOf(ctx.sn.commit('c', 'p2'))).toBe('ALREADY_EXISTS');
      // Usage counts this snapshot's own content.
      await withMount(ctx.dir, await ctx.sn.mounts('p2'), async (r) => writeFile(join(r, 'big'), Buffer.alloc(100_000, 1)));
      await ctx.sn.commit('c2', 'p2');
      const u = await ctx.sn.usage('c2');
      expect(u.size).toBeGreaterThanOrEqual(100_000);
      expect(u.inodes).toBeGreaterThanOrEqual(2);
    });

    it('Transitivity: a change in layer n is seen through every later layer', async () => {
      await commitLayer(ctx, 'l1', undefined, (r) => writeFile(join(r, 'foo'), '1'));
      await commitLayer(ctx, 'l2', 'l1', (r) => writeFile(join(r, 'foo'), '2'));
      await commitLayer(ctx, 'l3', 'l2', (r) => writeFile(join(r, 'bar'), '3'));
      await withMount(ctx.dir, await ctx.sn.view('v', 'l3'), async (r) => {
        expect(await readTree(r)).toEqual({ bar: '3', foo: '2' });
      });
      await withMount(ctx.dir, await ctx.sn.view('v1', 'l1'), async (r) => {
        expect(await readTree(r)).toEqual({ foo: '1' });
      });
    });

    it('Remove: a snapshot with children is refused; leaves first works', async () => {
      await commitLayer(ctx, 'base', undefined, (r) => writeFile(join(r, 'f'), 'x'));
      await ctx.sn.prepare('child', 'base');
      await ctx.sn.view('view', 'base');
      const err = await ctx.sn.remove('base').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'FAILED_PRECONDITION', name: 'SnapshotStateError' });
      expect((await ctx.sn.stat('base')).kind).toBe('committed');
      await ctx.sn.remove('child');
      await ctx.sn.remove('view');
      await ctx.sn.remove('base');
      expect(await codeOf(ctx.sn.stat('base'))).toBe('NOT_FOUND');
      expect(await codeOf(ctx.sn.remove('base'))).toBe('NOT_FOUND');
      const keys: string[] = [];
      await ctx.sn.walk((i) => void keys.push(i.key));
      expect(keys).toEqual([]);
    });

    it('Walk: lists every snapshot with its kind and parent', async () => {
      await commitLayer(ctx, 'c1', undefined, async () => {});
      await commitLayer(ctx, 'c2', 'c1', async () => {});
      await ctx.sn.prepare('a1', 'c2', { labels: { x: 'y' } });
      await ctx.sn.view('v1', 'c1');
      const seen: SnapshotInfo[] = [];
      await ctx.sn.walk((i) => void seen.push(i));
      const byKey = Object.fromEntries(seen.map((i) => [i.key, i]));
      expect(Object.keys(byKey).sort()).toEqual(['a1', 'c1', 'c2', 'v1']);
      expect(byKey.c1).toMatchObject({ kind: 'committed' });
      expect(byKey.c1?.parent).toBeUndefined();
      expect(byKey.c2).toMatchObject({ kind: 'committed', parent: 'c1' });
      expect(byKey.a1).toMatchObject({ kind: 'active', parent: 'c2', labels: { x: 'y' } });
      expect(byKey.v1).toMatchObject({ kind: 'view', parent: 'c1' });
    });

    it('View: read-only, for one layer and for a stack', async () => {
      await commitLayer(ctx, 'l1', undefined, (r) => writeFile(join(r, 'one'), '1'));
      await commitLayer(ctx, 'l2', 'l1', (r) => writeFile(join(r, 'two'), '2'));
      for (const [key, parent] of [
        ['v1', 'l1'],
        ['v2', 'l2'],
      ] as const) {
        await withMount(ctx.dir, await ctx.sn.view(key, parent), async (r) => {
          expect(await exists(join(r, 'one'))).toBe(true);
          const e = await writeFile(join(r, 'new'), 'x').then(
            () => undefined,
            (x: NodeJS.ErrnoException) => x.code,
          );
          expect(e).toBe('EROFS');
        });
      }
      // An empty view (no parent) is an empty read-only tree.
      await withMount(ctx.dir, await ctx.sn.view('v0'), async (r) => {
        expect(await readdir(r)).toEqual([]);
        expect(
          await writeFile(join(r, 'new'), 'x').then(
            () => undefined,
            (x: NodeJS.ErrnoException) => x.code,
          ),
        ).toBe('EROFS');
      });
      // Nothing written through a view reached the committed layers.
      await withMount(ctx.dir, await ctx.sn.view('v3', 'l2'), async (r) => {
        expect(await readTree(r)).toEqual({ one: '1', two: '2' });
      });
    });

    it('DeletedFilesInChild: deletions in a child hide files and dirs of the parent', async () => {
      await commitLayer(ctx, 'base', undefined, async (r) => {
        await mkdir(join(r, 'dir', 'sub'), { recursive: true });
        await writeFile(join(r, 'dir', 'sub', 'f'), 'f');
        await writeFile(join(r, 'file1'), '1');
        await writeFile(join(r, 'file2'), '2');
        await mkdir(join(r, 'keep'));
        await writeFile(join(r, 'keep', 'old'), 'old');
      });
      await commitLayer(ctx, 'child', 'base', async (r) => {
        await rm(join(r, 'file2'));
        await rm(join(r, 'dir'), { recursive: true });
        // Replace a dir by an empty one of the same name: the old content must not show through.
        await rm(join(r, 'keep'), { recursive: true });
        await mkdir(join(r, 'keep'));
        await writeFile(join(r, 'keep', 'new'), 'new');
      });
      await withMount(ctx.dir, await ctx.sn.view('v', 'child'), async (r) => {
        expect(await readTree(r)).toEqual({ file1: '1', keep: '<dir>', 'keep/new': 'new' });
      });
      await commitLayer(ctx, 'grandchild', 'child', (r) => writeFile(join(r, 'file2'), 'again'));
      await withMount(ctx.dir, await ctx.sn.view('v2', 'grandchild'), async (r) => {
        expect(await readTree(r)).toEqual({ file1: '1', file2: 'again', keep: '<dir>', 'keep/new': 'new' });
      });
    });

    it('128 layers: a stack of 128 committed layers mounts and shows every layer', async () => {
      const N = 128;
      let parent: string | undefined;
      for (let i = 0; i < N; i++) {
        const name = `layer-${i}`;
        await commitLayer(ctx, name, parent, async (r) => {
          await writeFile(join(r, `f${i}`), String(i));
          await writeFile(join(r, 'top'), String(i));
        });
        parent = name;
      }
      const mounts = await ctx.sn.prepare('work', parent);
      await withMount(ctx.dir, mounts, async (r) => {
        const names = await readdir(r);
        expect(names.length).toBe(N + 1);
        expect(await readFile(join(r, 'top'), 'utf8')).toBe(String(N - 1));
        expect(await readFile(join(r, 'f0'), 'utf8')).toBe('0');
        expect(await readFile(join(r, `f${N - 1}`), 'utf8')).toBe(String(N - 1));
        await writeFile(join(r, 'written'), 'w');
      });
      await withMount(ctx.dir, await ctx.sn.view('view', parent), async (r) => {
        expect((await readdir(r)).length).toBe(N + 1);
      });
    }, 120_000);
  });
}
