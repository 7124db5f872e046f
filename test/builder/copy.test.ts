import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, writeFile, symlink, link, lstat, lchown, readFile, readlink, readdir, chmod, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { planCopy, applyCopy, planDigest, globToRegExp, parseChmod, CopySourceNotFoundError, CopyDestinationError, type SourceTree } from '../../src/builder/dispatch/copy.js';
import { ignoreMatcher, StatCache } from '../../src/builder/context.js';
import { SMALL_FILE_LIMIT } from '../../src/builder/dispatch/copy-file.js';
import { resolveInRoot, resolveChown, resolveProcessUser } from '../../src/builder/dispatch/fs-root.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let ctx: string;
let rootfs: string;

async function tree(dir: string, base = ''): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(join(dir, base))).sort()) {
    const rel = base ? `${base}/${n}` : n;
    const st = await lstat(join(dir, rel));
    if (st.isDirectory()) {
      out.push(`${rel}/`);
      out.push(...(await tree(dir, rel)));
    } else if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(join(dir, rel))}`);
    else out.push(rel);
  }
  return out;
}

interface CopyOpts { workdir?: string; tree?: SourceTree; chown?: { uid: number; gid: number }; chmod?: number; exclude?: string[]; parents?: boolean; keepEntries?: number; root?: string }

async function copy(sources: string[], dest: string, o: CopyOpts = {}): Promise<string> {
  const t = o.tree ?? { root: ctx, kind: 'context' as const };
  const plan = await planCopy({ sources, tree: t, hash: true, ...(o.exclude ? { exclude: o.exclude } : {}), ...(o.parents ? { parents: true } : {}), ...(o.keepEntries !== undefined ? { keepEntries: o.keepEntries } : {}) });
  await applyCopy(plan, { root: o.root ?? rootfs, dest, workdir: o.workdir ?? '/', ...(o.chown ? { chown: o.chown } : {}), ...(o.chmod !== undefined ? { chmod: o.chmod } : {}) });
  return planDigest(plan);
}

beforeEach(async () => {
  tmp = await makeTmp();
  ctx = join(tmp.dir, 'ctx');
  rootfs = join(tmp.dir, 'rootfs');
  await mkdir(join(ctx, 'dir/sub'), { recursive: true });
  await writeFile(join(ctx, 'a.txt'), 'A');
  await writeFile(join(ctx, 'b.txt'), 'B');
  await writeFile(join(ctx, 'c.md'), 'C');
  await writeFile(join(ctx, 'dir/x'), 'X');
  await writeFile(join(ctx, 'dir/sub/y'), 'Y');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await mkdir(join(rootfs, 'existing'));
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\napps:x:1001:\nextra:x:1500:app\n');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('COPY destination rules', () => {
  it('file to a path without trailing slash becomes that file', async () => {
    await copy(['a.txt'], '/new');
    expect(await readFile(join(rootfs, 'new'), 'utf8')).toBe('A');
  });
  it('file to a path with trailing slash goes inside (dir created)', async () => {
    await copy(['a.txt'], '/new/');
    expect(await readFile(join(rootfs, 'new/a.txt'), 'utf8')).toBe('A');
  });
  it('file to an existing directory goes inside', async () => {
    await copy(['a.txt'], '/existing');
    expect(await readFile(join(rootfs, 'existing/a.txt'), 'utf8')).toBe('A');
  });
  it('a directory contributes its contents, not itself', async () => {
    await copy(['dir'], '/d');
    expect(await tree(join(rootfs, 'd'))).toEqual(['sub/', 'sub/y', 'x']);
  });
  it('dir contents merge into an existing dir', async () => {
    await writeFile(join(rootfs, 'existing/keep'), 'k');
    await copy(['dir/'], '/existing/');
    expect(await tree(join(rootfs, 'existing'))).toEqual(['keep', 'sub/', 'sub/y', 'x']);
  });
  it('relative dest is relative to WORKDIR; missing parents are created', async () => {
    await copy(['a.txt'], 'deep/er/', { workdir: '/app' });
    expect(await readFile(join(rootfs, 'app/deep/er/a.txt'), 'utf8')).toBe('A');
    expect((await lstat(join(rootfs, 'app'))).mode & 0o7777).toBe(0o755);
  });
  it('dot dest means WORKDIR', async () => {
    await copy(['a.txt', 'b.txt'], '.', { workdir: '/w' });
    expect(await tree(join(rootfs, 'w'))).toEqual(['a.txt', 'b.txt']);
  });
  it('several sources need a directory destination', async () => {
    await expect(copy(['a.txt', 'b.txt'], '/nodir')).rejects.toBeInstanceOf(CopyDestinationError);
    await copy(['a.txt', 'b.txt'], '/existing');
    expect(await tree(join(rootfs, 'existing'))).toEqual(['a.txt', 'b.txt']);
  });
  it('wildcards match per component; multiple matches need a dir dest', async () => {
    await copy(['*.txt'], '/w/');
    expect(await tree(join(rootfs, 'w'))).toEqual(['a.txt', 'b.txt']);
    await expect(copy(['*.txt'], '/nodir')).rejects.toBeInstanceOf(CopyDestinationError);
    await copy(['[ab].t?t', 'c.*'], '/v/');
    expect(await tree(join(rootfs, 'v'))).toEqual(['a.txt', 'b.txt', 'c.md']);
  });
  it('a missing literal source is an error; an empty wildcard is not', async () => {
    await expect(copy(['nope'], '/x')).rejects.toBeInstanceOf(CopySourceNotFoundError);
    await copy(['*.none'], '/x/');
  });
  it('files from the context become root-owned and keep their mode and mtime', async () => {
    await chmod(join(ctx, 'a.txt'), 0o751);
    await utimes(join(ctx, 'a.txt'), 1000, 1234);
    await copy(['a.txt'], '/f');
    const st = await lstat(join(rootfs, 'f'));
    expect([st.uid, st.gid, st.mode & 0o7777, Math.round(st.mtimeMs / 1000)]).toEqual([0, 0, 0o751, 1234]);
  });
  it('--chown and --chmod apply to everything copied', async () => {
    const owner = await resolveChown(rootfs, 'app:apps');
    expect(owner).toEqual({ uid: 1000, gid: 1001 });
    await copy(['dir'], '/o', { chown: owner, chmod: parseChmod('700') });
    for (const p of ['o/x', 'o/sub', 'o/sub/y']) {
      const st = await lstat(join(rootfs, p));
      expect([p, st.uid, st.gid, st.mode & 0o777]).toEqual([p, 1000, 1001, 0o700]);
    }
    expect(await resolveChown(rootfs, '42')).toEqual({ uid: 42, gid: 42 });
    await expect(resolveChown(rootfs, 'ghost')).rejects.toThrow(/ghost/);
    expect(() => parseChmod('u+x')).toThrow(/octal/);
  });
  it('USER resolution uses the primary and supplementary groups', async () => {
    expect(await resolveProcessUser(rootfs, 'app')).toMatchObject({ uid: 1000, gid: 1001, additionalGids: [1500] });
    expect(await resolveProcessUser(rootfs, '1000:5')).toMatchObject({ uid: 1000, gid: 5, additionalGids: [] });
    expect(await resolveProcessUser(rootfs, '4242')).toMatchObject({ uid: 4242, gid: 0 });
  });
  it('copies from an image keep their owner', async () => {
    const img = join(tmp.dir, 'img');
    await mkdir(join(img, 'opt'), { recursive: true });
    await writeFile(join(img, 'opt/f'), 'f');
    await lchown(join(img, 'opt/f'), 7, 8);
    await copy(['/opt/f'], '/g', { tree: { root: img, kind: 'image' } });
    const st = await lstat(join(rootfs, 'g'));
    expect([st.uid, st.gid]).toEqual([7, 8]);
  });
  it('symlinks inside a tree stay symlinks; a named symlink source is followed', async () => {
    await symlink('x', join(ctx, 'dir/lnk'));
    await symlink('dir/x', join(ctx, 'top'));
    await copy(['dir'], '/s');
    expect(await readlink(join(rootfs, 's/lnk'))).toBe('x');
    await copy(['top'], '/t');
    expect((await lstat(join(rootfs, 't'))).isFile()).toBe(true);
    expect(await readFile(join(rootfs, 't'), 'utf8')).toBe('X');
  });
  it('hard links inside one COPY stay hard links', async () => {
    await link(join(ctx, 'dir/x'), join(ctx, 'dir/x2'));
    await copy(['dir'], '/h');
    const a = await lstat(join(rootfs, 'h/x'));
    const b = await lstat(join(rootfs, 'h/x2'));
    expect(a.ino).toBe(b.ino);
  });
  it('files either side of the small-file limit are copied byte-exactly with owner, mode and times', async () => {
    // Up to SMALL_FILE_LIMIT a file goes through a buffer, above it through the kernel's copy.
    const sizes = { empty: 0, one: 1, below: SMALL_FILE_LIMIT - 1, at: SMALL_FILE_LIMIT, above: SMALL_FILE_LIMIT + 1, big: 3 * SMALL_FILE_LIMIT + 7 };
    const img = join(tmp.dir, 'img');
    await mkdir(join(img, 'src/deep'), { recursive: true });
    const bytes = new Map<string, Buffer>();
    let i = 0;
    for (const [name, size] of Object.entries(sizes)) {
      const data = randomBytes(size);
      bytes.set(name, data);
      const p = join(img, 'src/deep', name);
      await writeFile(p, data);
      await lchown(p, 100 + i, 200 + i);
      await chmod(p, i % 2 ? 0o4755 : 0o640);
      await utimes(p, 1000, 1_500_000_000 + i);
      i++;
    }
    await link(join(img, 'src/deep/below'), join(img, 'src/deep/below-link'));
    await link(join(img, 'src/deep/above'), join(img, 'src/deep/above-link'));
    const image = { tree: { root: img, kind: 'image' as const } };
    await copy(['/src'], '/keep', image);
    await copy(['/src'], '/owned', { ...image, chown: { uid: 7, gid: 8 }, chmod: 0o4711 });
    // A destination already there: written over, in a dir the COPY did not make.
    await mkdir(join(rootfs, 'over/deep'), { recursive: true });
    for (const name of Object.keys(sizes)) await writeFile(join(rootfs, 'over/deep', name), 'old contents, longer than one byte');
    await copy(['/src'], '/over', image);
    i = 0;
    for (const [name] of Object.entries(sizes)) {
      for (const dir of ['keep', 'over']) {
        const p = join(rootfs, dir, 'deep', name);
        const st = await lstat(p);
        expect(Buffer.compare(await readFile(p), bytes.get(name)!), `${dir}/${name}`).toBe(0);
        expect([dir, name, st.uid, st.gid, st.mode & 0o7777, st.mtimeMs, st.atimeMs]).toEqual([dir, name, 100 + i, 200 + i, i % 2 ? 0o4755 : 0o640, (1_500_000_000 + i) * 1000, (1_500_000_000 + i) * 1000]);
      }
      const o = await lstat(join(rootfs, 'owned/deep', name));
      expect(Buffer.compare(await readFile(join(rootfs, 'owned/deep', name)), bytes.get(name)!)).toBe(0);
      expect([name, o.uid, o.gid, o.mode & 0o7777, o.mtimeMs]).toEqual([name, 7, 8, 0o4711, (1_500_000_000 + i) * 1000]);
      i++;
    }
    for (const name of ['below', 'above']) {
      expect((await lstat(join(rootfs, 'keep/deep', name))).ino).toBe((await lstat(join(rootfs, 'keep/deep', `${name}-link`))).ino);
    }
  });
  it('--parents keeps the source path, with a /./ pivot', async () => {
    await copy(['dir/sub/y', 'a.txt'], '/p/', { parents: true });
    expect(await tree(join(rootfs, 'p'))).toEqual(['a.txt', 'dir/', 'dir/sub/', 'dir/sub/y']);
    await copy(['dir/./sub/y'], '/q/', { parents: true });
    expect(await tree(join(rootfs, 'q'))).toEqual(['sub/', 'sub/y']);
  });
  it('--exclude drops matching paths', async () => {
    await copy(['dir'], '/e', { exclude: ['sub'] });
    expect(await tree(join(rootfs, 'e'))).toEqual(['x']);
    await copy(['.'], '/e2', { exclude: ['*.txt', 'dir/sub/*'] });
    expect(await tree(join(rootfs, 'e2'))).toEqual(['c.md', 'dir/', 'dir/sub/', 'dir/x']);
  });
  it('.dockerignore hides files, with exceptions', async () => {
    const t: SourceTree = { root: ctx, kind: 'context', ignore: ignoreMatcher(['*.txt', 'dir', '!dir/sub']) };
    await copy(['.'], '/i', { tree: t });
    expect(await tree(join(rootfs, 'i'))).toEqual(['c.md', 'dir/', 'dir/sub/', 'dir/sub/y']);
    await expect(copy(['a.txt'], '/j', { tree: t })).rejects.toBeInstanceOf(CopySourceNotFoundError);
  });
});

describe('COPY confinement', () => {
  it('sources cannot climb out of the context', async () => {
    await writeFile(join(tmp.dir, 'secret'), 'S');
    await expect(copy(['../secret'], '/x')).rejects.toBeInstanceOf(CopySourceNotFoundError);
    await copy(['../../a.txt'], '/clamped');
    expect(await readFile(join(rootfs, 'clamped'), 'utf8')).toBe('A');
  });
  it('a context symlink pointing outside is resolved inside the context', async () => {
    await writeFile(join(tmp.dir, 'outside'), 'O');
    await symlink(join(tmp.dir, 'outside'), join(ctx, 'abs-out'));
    await symlink('../outside', join(ctx, 'rel-out'));
    await expect(copy(['abs-out'], '/x')).rejects.toBeInstanceOf(CopySourceNotFoundError);
    await expect(copy(['rel-out'], '/x')).rejects.toBeInstanceOf(CopySourceNotFoundError);
    // and inside a copied tree it stays a link (never read through)
    await symlink('/etc/shadow', join(ctx, 'dir/abs'));
    await copy(['dir'], '/k');
    expect(await readlink(join(rootfs, 'k/abs'))).toBe('/etc/shadow');
  });
  it('a dangling image symlink into a dir the COPY makes: files reaching it both ways overwrite, the later wins', async () => {
    // /t/a -> n does not exist yet; the source has both a/ and n/: a/f and n/f are one file.
    await mkdir(join(rootfs, 't'));
    await symlink('n', join(rootfs, 't/a'));
    await mkdir(join(ctx, 'two/a'), { recursive: true });
    await mkdir(join(ctx, 'two/n'), { recursive: true });
    await writeFile(join(ctx, 'two/a/f'), 'via-a');
    await writeFile(join(ctx, 'two/n/f'), 'via-n');
    await copy(['two'], '/t');
    expect(await readlink(join(rootfs, 't/a'))).toBe('n');
    expect(await readFile(join(rootfs, 't/n/f'), 'utf8')).toBe('via-n');
  });
  it('destination symlinks are followed but clamped at the rootfs', async () => {
    await symlink('/', join(rootfs, 'up'));
    await symlink('../../../../..', join(rootfs, 'dots'));
    await symlink(tmp.dir, join(rootfs, 'host'));
    await copy(['a.txt'], '/up/a1');
    await copy(['a.txt'], '/dots/a2');
    await copy(['a.txt'], '/host/a3');
    expect(await readFile(join(rootfs, 'a1'), 'utf8')).toBe('A');
    expect(await readFile(join(rootfs, 'a2'), 'utf8')).toBe('A');
    expect(await readFile(join(rootfs, tmp.dir, 'a3'), 'utf8')).toBe('A');
    await expect(lstat(join(tmp.dir, 'a3'))).rejects.toThrow();
  });
  it('an existing destination file that is a symlink is replaced, not written through', async () => {
    await writeFile(join(tmp.dir, 'victim'), 'V');
    await symlink(join(tmp.dir, 'victim'), join(rootfs, 'f'));
    await copy(['a.txt'], '/f');
    expect(await readFile(join(tmp.dir, 'victim'), 'utf8')).toBe('V');
    expect((await lstat(join(rootfs, 'f'))).isFile()).toBe(true);
  });
  it('resolveInRoot never leaves the root', async () => {
    await symlink('../../../../etc', join(rootfs, 'l'));
    expect(await resolveInRoot(rootfs, '/l/passwd')).toBe(join(rootfs, 'etc/passwd'));
    expect(await resolveInRoot(rootfs, '/../../x')).toBe(join(rootfs, 'x'));
    // A link met after `..` out of a missing dir is still followed (and clamped), never left for the host to follow.
    expect(await resolveInRoot(rootfs, '/missing/../l/passwd')).toBe(join(rootfs, 'etc/passwd'));
    // A file mid-path reads as missing rather than failing.
    await writeFile(join(rootfs, 'plain'), 'p');
    expect(await resolveInRoot(rootfs, '/plain/x')).toBe(join(rootfs, 'plain/x'));
  });
});

describe('COPY content digest', () => {
  it('changes with content and mode, not with mtime; uses the stat cache', async () => {
    const sc = await StatCache.open(join(tmp.dir, 'sc.json'));
    const t: SourceTree = { root: ctx, kind: 'context', statCache: sc };
    const d1 = planDigest(await planCopy({ sources: ['.'], tree: t, hash: true }));
    expect(sc.misses).toBe(5);
    const d2 = planDigest(await planCopy({ sources: ['.'], tree: t, hash: true }));
    expect(d2).toBe(d1);
    expect(sc.hits).toBe(5);
    await utimes(join(ctx, 'a.txt'), 5, 5);
    expect(planDigest(await planCopy({ sources: ['.'], tree: t, hash: true }))).toBe(d1);
    await writeFile(join(ctx, 'a.txt'), 'A2');
    const d3 = planDigest(await planCopy({ sources: ['.'], tree: t, hash: true }));
    expect(d3).not.toBe(d1);
    await chmod(join(ctx, 'b.txt'), 0o600);
    expect(planDigest(await planCopy({ sources: ['.'], tree: t, hash: true }))).not.toBe(d3);
    await sc.save();
    const sc2 = await StatCache.open(join(tmp.dir, 'sc.json'));
    await planCopy({ sources: ['.'], tree: { ...t, statCache: sc2 }, hash: true });
    expect(sc2.misses).toBe(0);
  });
  it('glob translation follows Go filepath.Match', () => {
    expect(globToRegExp('*.txt').test('a.txt')).toBe(true);
    expect(globToRegExp('*.txt').test('a/b.txt')).toBe(false);
    expect(globToRegExp('[^a]*').test('abc')).toBe(false);
    expect(globToRegExp('f?o').test('foo')).toBe(true);
    expect(globToRegExp('a\\*').test('a*')).toBe(true);
  });
});

describe('COPY of an item past the plan\'s memory budget', () => {
  /** Every path below dir with its type, mode, owner, mtime, link count and content or target. */
  async function listing(dir: string, base = ''): Promise<string[]> {
    const out: string[] = [];
    for (const n of (await readdir(join(dir, base))).sort()) {
      const rel = base ? `${base}/${n}` : n;
      const st = await lstat(join(dir, rel));
      const what = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? `-> ${await readlink(join(dir, rel))}` : `${st.nlink} ${await readFile(join(dir, rel), 'utf8')}`;
      out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isSymbolicLink() ? '' : Math.floor(st.mtimeMs / 1000)} ${what}`);
      if (st.isDirectory()) out.push(...(await listing(dir, rel)));
    }
    return out;
  }

  it('is walked again when written: the same files and the same digest as a plan that kept every entry', async () => {
    await symlink('x', join(ctx, 'dir/lnk'));
    await link(join(ctx, 'dir/x'), join(ctx, 'dir/x2'));
    await mkdir(join(ctx, 'dir/keep/deep'), { recursive: true });
    await writeFile(join(ctx, 'dir/keep/deep/k'), 'K');
    await writeFile(join(ctx, 'dir/keep/drop.txt'), 'D');
    await mkdir(join(ctx, 'dir/gone'));
    await writeFile(join(ctx, 'dir/gone/g.txt'), 'G');
    await chmod(join(ctx, 'dir/sub'), 0o750);
    await utimes(join(ctx, 'dir/sub'), 1_000_000, 1_000_000);
    for (let i = 0; i < 20; i++) await writeFile(join(ctx, 'dir', `n${i}`), `n${i}`);
    // An image symlink where the source has a dir: two source dirs land in one host dir.
    const cases: { sources: string[]; dest: string; o: CopyOpts; image?: (root: string) => Promise<void> }[] = [
      { sources: ['dir'], dest: '/d', o: {} },
      { sources: ['.'], dest: '/all', o: { tree: { root: ctx, kind: 'context', ignore: ignoreMatcher(['*.txt', 'dir', '!dir/keep/deep', '!dir/sub']) } } },
      { sources: ['dir', 'a.txt'], dest: '/m/', o: { exclude: ['n1*'], chown: { uid: 7, gid: 8 }, chmod: 0o640 } },
      { sources: ['dir'], dest: '/existing', o: {}, image: async (r) => { await mkdir(join(r, 'existing/sub'), { recursive: true }); await writeFile(join(r, 'existing/x'), 'old'); } },
      { sources: ['dir'], dest: '/t', o: {}, image: async (r) => { await mkdir(join(r, 't')); await symlink('sub', join(r, 't/keep')); } },
    ];
    for (const [i, c] of cases.entries()) {
      const roots = [join(tmp.dir, `kept-${i}`), join(tmp.dir, `walked-${i}`)];
      const digests: string[] = [];
      for (const [j, root] of roots.entries()) {
        await mkdir(join(root, 'existing'), { recursive: true });
        await c.image?.(root);
        // The same time in both roots whatever second each was made in (the copy may keep it).
        await utimes(join(root, 'existing'), 1_000_000, 1_000_000);
        digests.push(await copy(c.sources, c.dest, { ...c.o, root, keepEntries: j === 0 ? 1_000_000 : 0 }));
        // The destination dir is made, or written into, at copy time: a second may turn between roots.
        await utimes(join(root, c.dest), 1_000_000, 1_000_000);
      }
      expect(await listing(roots[1]!), `case ${i}`).toEqual(await listing(roots[0]!));
      expect(digests[1], `case ${i}`).toBe(digests[0]);
    }
    // The walked-again plan still made the implied parents of re-included paths, and only those.
    expect((await listing(join(tmp.dir, 'walked-1', 'all'))).map((l) => l.split(' ')[0])).toEqual(['c.md', 'dir', 'dir/keep', 'dir/keep/deep', 'dir/keep/deep/k', 'dir/sub', 'dir/sub/y']);
  });

  it('gives the digest of the entries it walked, as planDigest of the kept entries does', async () => {
    const plan = await planCopy({ sources: ['.'], tree: { root: ctx, kind: 'context' }, hash: true });
    const { digest: _d, ...fresh } = plan;
    expect(planDigest(fresh)).toBe(planDigest(plan));
    const walked = await planCopy({ sources: ['.'], tree: { root: ctx, kind: 'context' }, hash: true, keepEntries: 2 });
    expect(walked.items[0]!.entries).toHaveLength(1);
    expect(walked.items[0]!.walk).toBeDefined();
    expect(planDigest(walked)).toBe(planDigest(plan));
  });
});
