/**
 * A build cache shared through a registry, beside BuildKit's: the same build on a fresh machine
 * (an empty store / a dockerd with no images and no build cache but the busybox base) with a warm
 * cache in a local registry (the real docker-registry of test/helpers/registry.ts), against a
 * cold build of each tool.
 *  - imgbuild: a store that built it once exports `--cache-to type=registry,ref=REG/bench-cache:ib`
 *    (untimed); a fresh store then builds with `--cache-from type=registry,ref=...` (timed);
 *  - BuildKit (a private dockerd, bench/build/buildkit.ts): `docker build --build-arg
 *    BUILDKIT_INLINE_CACHE=1 -t REG/bench:bk` and `docker push` (untimed; inline cache is what
 *    BuildKit offers without buildx), then `docker image rm` of everything but the base and
 *    `builder prune -af`, and `docker build --cache-from REG/bench:bk` (timed).
 * Both build with `--network host`. A missing peer (dockerd, docker-registry) or an imgbuild
 * without `--cache-from` is skipped with one line, as in the build bench.
 *
 * The workload has real content: /usr/share/doc copied in, a RUN that hashes it, tars and
 * gzips it at level 9 and copies the tree (CPU and I/O a cache saves), and a COPY of the project's
 * `src/` after it. A second table is imgbuild's alone (no peer exports cache mounts): a
 * `RUN --mount=type=cache` step that misses on a fresh store because a file it follows changed,
 * its mount restored from a cache written with `cache-mounts=true` against one written without.
 *
 *   BENCH_ONLY=cache npm run bench
 *   BENCH_QUICK=1 node --import tsx bench/cache.ts   # 600 files of /usr/share/doc
 *   BENCH_RUNS=3                                     # repetitions, medians shown (default 1)
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBusybox } from '../test/helpers/base-image.js';
import { CLI_EXE, CLI_MAIN, REPO_ROOT } from '../test/helpers/cli.js';
import { REGISTRY_BIN, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { BuildKit } from './build/buildkit.js';
import { median, removeTree, run, timed, type Timing } from './build/measure.js';

const quick = process.env.BENCH_QUICK === '1';
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const say = (s: string): boolean => process.stderr.write(`bench/cache: ${s}\n`);
const out = (s: string): boolean => process.stdout.write(s);

type Scenario = 'cold' | 'warm registry cache' | 'RUN misses, cache mount empty' | 'RUN misses, cache mount restored';
const times = new Map<string, number[]>();
const note = (tool: string, s: Scenario, t: Timing): void => {
  times.set(`${tool}/${s}`, [...(times.get(`${tool}/${s}`) ?? []), t.secs]);
  say(`${tool} ${s}: ${t.secs.toFixed(2)} s`);
};
const secs = (tool: string, s: Scenario): number | undefined => median(times.get(`${tool}/${s}`) ?? []);

/** The context: a real tree, a RUN working on it, a COPY of another real tree. */
function makeContext(dir: string): { files: number } {
  const doc = join(dir, 'doc');
  mkdirSync(doc, { recursive: true });
  if (quick) {
    const names = spawnSync('ls', ['/usr/share/doc'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).slice(0, 200);
    for (const n of names) run(['cp', '-a', join('/usr/share/doc', n), join(doc, n)]);
  } else {
    run(['cp', '-a', '/usr/share/doc/.', doc]);
  }
  run(['cp', '-a', join(REPO_ROOT, 'src'), join(dir, 'app')]);
  writeFileSync(join(dir, 'Dockerfile'), [
    'FROM busybox',
    'COPY doc /src',
    'RUN mkdir /out && cd /src && find . -type f -exec sha256sum {} + | sort > /out/sums && tar cf - . | gzip -9 > /out/src.tar.gz && cp -a /src /out/tree',
    'COPY app /app',
    '',
  ].join('\n'));
  // A package manager's step: the expensive part (here gzip -9 of the tree) fills the cache mount
  // once; every run extracts from it.
  writeFileSync(join(dir, 'Dockerfile.mounts'), [
    'FROM busybox',
    'COPY doc /src',
    'COPY app /app',
    "RUN --mount=type=cache,target=/cache sh -c 'test -f /cache/src.tar.gz || { cd /src && tar cf - . | gzip -9 > /cache/part && mv /cache/part /cache/src.tar.gz; }; "
      + "mkdir /out && tar xzf /cache/src.tar.gz -C /out && find /app -type f | wc -l > /out/app-files'",
    '',
  ].join('\n'));
  const files = Number(run(['sh', '-c', `find ${JSON.stringify(dir)} -type f | wc -l`]).trim());
  return { files };
}

/** imgbuild on a fresh store copied from `base` each time. */
class ImgbuildSide {
  readonly root: string;
  constructor(work: string, private readonly base: string) {
    this.root = join(work, 'imgbuild-root');
  }

  fresh(): void {
    removeTree(this.root);
    run(['cp', '-a', this.base, this.root]);
  }

  build(ctx: string, flags: string[] = []): Timing {
    return timed([CLI_EXE, '--root', this.root, 'build', '-q', '--network', 'host', ...flags, '-t', 'bench', ctx]);
  }

  /** Whether this imgbuild has `build --cache-from` (the registry cache). */
  static hasRegistryCache(): boolean {
    const r = spawnSync(CLI_EXE, ['build', '--help'], { encoding: 'utf8' });
    return /--cache-from/.test(r.stdout) && /--cache-to/.test(r.stdout);
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI_MAIN)) run([process.execPath, join(REPO_ROOT, 'scripts', 'build.mjs')]);
  const work = mkdtempSync(join(process.env.IMGBUILD_TEST_TMP ?? tmpdir(), 'ib-cache-'));
  let bk: BuildKit | undefined;
  let reg: TestRegistry | undefined;
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    try {
      bk?.close();
    } catch (e) {
      say(`BuildKit: clean-up: ${(e as Error).message}`);
    }
    await reg?.stop().catch(() => {});
    removeTree(work);
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (!existsSync(REGISTRY_BIN)) {
      out(`skipped: ${REGISTRY_BIN} is not installed (Debian: apt-get install docker-registry)\n`);
      return;
    }
    reg = await startRegistry({ mode: 'none' });
    const base = join(work, 'base');
    await ensureBusybox(base);
    const archive = join(work, 'busybox-docker.tar');
    run([CLI_EXE, '--root', base, 'save', '--format', 'docker', '-o', archive, 'busybox']);
    const ctx = join(work, 'ctx');
    const { files } = makeContext(ctx);
    say(`context: ${files} files`);

    const ib = new ImgbuildSide(work, base);
    const ibCache = ImgbuildSide.hasRegistryCache();
    if (!ibCache) out('imgbuild\'s warm row skipped: this build has no `build --cache-from`\n');
    const started = BuildKit.start(work, archive);
    if (typeof started === 'string') out(`BuildKit skipped: ${started}\n`);
    else bk = started;
    const loadBefore = loadavg();
    const t0 = Date.now();
    const cacheRef = `${reg.host}/bench-cache:ib`;
    const bkRef = `${reg.host}/bench:bk`;
    const ids: Record<string, string[]> = {};
    const id = (k: string, t: Timing): void => void (ids[k] ??= []).push(t.last);

    for (let rep = 0; rep < RUNS; rep++) {
      // imgbuild: cold, then machine A exports (untimed), then a fresh machine B imports.
      spawnSync('sync');
      ib.fresh();
      id('imgbuild cold', (() => { const t = ib.build(ctx); note('imgbuild', 'cold', t); return t; })());
      if (ibCache) {
        ib.fresh();
        id('imgbuild A', ib.build(ctx, ['--cache-to', `type=registry,ref=${cacheRef},mode=max`]));
        ib.fresh();
        spawnSync('sync');
        const t = ib.build(ctx, ['--cache-from', `type=registry,ref=${cacheRef}`]);
        note('imgbuild', 'warm registry cache', t);
        id('imgbuild B', t);
      }
      if (bk) {
        try {
          bk.reset();
          spawnSync('sync');
          id('BuildKit cold', (() => { const t = bk.buildWith(ctx, []); note('BuildKit', 'cold', t); return t; })());
          bk.reset();
          id('BuildKit A', bk.buildWith(ctx, ['--build-arg', 'BUILDKIT_INLINE_CACHE=1'], bkRef));
          bk.cli(['push', '-q', bkRef]);
          // A fresh daemon but for the base: no images, no build cache.
          bk.reset();
          spawnSync('sync');
          // With the inline cache's build arg again: it puts the cache's metadata in the image
          // config, so only then can a fully cached build give the very image that made the cache.
          const t = bk.buildWith(ctx, ['--build-arg', 'BUILDKIT_INLINE_CACHE=1', '--cache-from', bkRef], 'bench');
          note('BuildKit', 'warm registry cache', t);
          id('BuildKit B', t);
          bk.reset();
        } catch (e) {
          out(`BuildKit left out: ${(e as Error).message}\n`);
          bk.close();
          bk = undefined;
        }
      }
      if (ibCache) {
        // The RUN with a cache mount misses on a fresh store (a file of app/ changed): with
        // cache-mounts=true its mount arrives filled, without it the RUN fills it again.
        const df = join(ctx, 'Dockerfile.mounts');
        ib.fresh();
        ib.build(ctx, ['-f', df, '--cache-to', `type=registry,ref=${reg.host}/bench-cache:mounts,cache-mounts=true`, '--cache-to', `type=registry,ref=${reg.host}/bench-cache:plain`]);
        appendFileSync(join(ctx, 'app', 'index.ts'), `// changed ${rep}\n`);
        for (const [s, tag] of [['RUN misses, cache mount empty', 'plain'], ['RUN misses, cache mount restored', 'mounts']] as const) {
          ib.fresh();
          spawnSync('sync');
          note('imgbuild', s, ib.build(ctx, ['-f', df, '--cache-from', `type=registry,ref=${reg.host}/bench-cache:${tag}`]));
        }
      }
      ib.fresh();
    }

    const minutes = ((Date.now() - t0) / 60000).toFixed(1);
    out(`\n${files} files in the context${quick ? ' (quick size)' : ''}; medians of ${RUNS} run(s); ${minutes} min; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadavg().map((x) => x.toFixed(2)).join(' ')} after on ${cpus().length} cores\n`);
    if (Math.max(loadBefore[0]!, loadavg()[0]!) > cpus().length) out('the machine was busy with other work: these figures are noisy\n');
    // The warm build only means something if it gave the image the exporting machine built.
    for (const tool of ['imgbuild', 'BuildKit']) {
      const a = ids[`${tool} A`];
      const b = ids[`${tool} B`];
      if (a && b && a.some((x, i) => x !== b[i])) out(`${tool}: the build from the registry cache gave another image than the one that made the cache (${b[0]} after ${a[0]})\n`);
    }
    const f = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(2));
    const r = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '–' : `${(a / b).toFixed(2)}×`);
    out('\n| build on a fresh store | imgbuild (s) | BuildKit (s) | ÷ BuildKit |\n|---|---:|---:|---:|\n');
    for (const s of ['cold', 'warm registry cache'] as const) out(`| ${s} | ${f(secs('imgbuild', s))} | ${f(secs('BuildKit', s))} | ${r(secs('imgbuild', s), secs('BuildKit', s))} |\n`);
    out(`| warm ÷ cold | ${r(secs('imgbuild', 'warm registry cache'), secs('imgbuild', 'cold'))} | ${r(secs('BuildKit', 'warm registry cache'), secs('BuildKit', 'cold'))} | |\n`);
    if (ibCache) {
      out('\nA RUN --mount=type=cache step that misses on a fresh store (BuildKit exports no cache mount: no peer row)\n');
      out('\n| build on a fresh store | imgbuild (s) |\n|---|---:|\n');
      for (const s of ['RUN misses, cache mount empty', 'RUN misses, cache mount restored'] as const) out(`| ${s} | ${f(secs('imgbuild', s))} |\n`);
      out(`| restored ÷ empty | ${r(secs('imgbuild', 'RUN misses, cache mount restored'), secs('imgbuild', 'RUN misses, cache mount empty'))} |\n`);
    }
  } finally {
    await cleanup();
  }
}

await main();
