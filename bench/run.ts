/**
 * Container start-up latency: `imgbuild run --rm --network none busybox true` beside `podman run
 * --rm --network none` of the same image (private roots, vfs and overlay, the flags this machine
 * needs; the faster is the yardstick), imgbuild's default bridge network, and `runc run` of the same bundle
 * (our container's config.json over its mounted rootfs), measured in one run, the commands taking
 * turns round by round (a shared machine's load then hits them alike).
 *
 *   npx tsx bench/run.ts              # 30 rounds
 *   BENCH_QUICK=1 npx tsx bench/run.ts  # 5 rounds
 *
 *   BENCH_BASELINE_CLI=/other/checkout/bin/imgbuild npx tsx bench/run.ts  # adds that build's run
 *
 * The image gets into podman's storage with `skopeo copy oci:<our store>:<ref> containers-storage:`,
 * so both run the very same layer. Goal: imgbuild at most half of podman's time. imgbuild runs as
 * users start it, through the executable bin/imgbuild.
 *
 * History (medians of 30, load 0.7-1.2): 152 vs 261 ms (0.58) with dist/cli/main.js as ES
 * modules; 123 vs 252 ms (0.49) from the code-cached CommonJS bundle; 103 vs 257 ms (0.40) with
 * the container child joining its v1 cgroups itself; 81 vs 238 ms (0.34) with NODE_EXTRA_CA_CERTS
 * (set on this machine) deferred past Node's start. See docs/architecture.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBusybox, BUSYBOX_REF } from '../test/helpers/base-image.js';
import { OciStore } from '../src/store/store.js';
import { createContainer } from '../src/containers/create.js';
import { removeContainer } from '../src/containers/remove.js';
import { mountAll, unmount } from '../src/snapshots/mount.js';
import type { SandboxSpec } from '../src/sandbox/spec.js';

const REPO = join(import.meta.dirname, '..');
const CLI = join(REPO, 'bin', 'imgbuild');
const runs = process.env.BENCH_QUICK === '1' ? 5 : 30;

function sh(cmd: string, args: string[], o: { quiet?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  if (!o.quiet && r.stderr.trim()) process.stderr.write(r.stderr);
  return r.stdout;
}

if (!existsSync(join(REPO, 'dist', 'cli', 'bundle.cjs'))) sh(process.execPath, [join(REPO, 'scripts', 'build.mjs')]);
for (const tool of ['podman', 'runc', 'skopeo']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is needed for this benchmark`);
}

const base = mkdtempSync(join(tmpdir(), 'imgbuild-bench-run-'));
const root = join(base, 'root');
const pod = join(base, 'podman');
const bundle = join(base, 'bundle');
let ctrId: string | undefined;
let mounted = false;
try {
  await ensureBusybox(root);
  // Warm our snapshot cache (the first run unpacks the layer, like podman's first pull would).
  sh(CLI, ['--root', root, 'run', '--rm', 'busybox', 'true']);

  mkdirSync(join(pod, 'tmp'), { recursive: true });
  // podman on both of its drivers (vfs copies the image per container, overlay mounts it): the
  // faster one is the yardstick. Its storage of each driver is a root of its own.
  const podmanOn = (driver: 'vfs' | 'overlay'): string[] => {
    const dir = join(pod, driver);
    return ['podman', '--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', driver];
  };
  for (const driver of ['vfs', 'overlay'] as const) {
    const dir = join(pod, driver);
    sh('skopeo', ['copy', '-q', `oci:${root}:${BUSYBOX_REF}`, `containers-storage:[${driver}@${join(dir, 'storage')}+${join(dir, 'run')}]${BUSYBOX_REF}`], { quiet: true });
  }
  const podman = (driver: 'vfs' | 'overlay'): string[] => [
    ...podmanOn(driver),
    '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--tmpdir', join(pod, 'tmp'),
    'run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1000:1000', BUSYBOX_REF, 'true',
  ];

  // runc runs our own bundle: the container's config.json over its rootfs mounted at bundle/rootfs.
  const store = await OciStore.open(root);
  const rec = await createContainer(store, { image: 'busybox', cmd: ['true'] });
  ctrId = rec.id;
  await store.release();
  const cdir = join(root, 'containers', rec.id);
  const spec = JSON.parse(readFileSync(join(cdir, 'spec.json'), 'utf8')) as SandboxSpec;
  const config = JSON.parse(readFileSync(join(cdir, 'config.json'), 'utf8')) as { root: { path: string }; process: { terminal?: boolean } };
  mkdirSync(join(bundle, 'rootfs'), { recursive: true });
  await mountAll(spec.rootfs, join(bundle, 'rootfs'));
  mounted = true;
  config.root.path = 'rootfs';
  config.process.terminal = false;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  // Each runc run needs a fresh container name; `runc run` deletes it on exit.
  let runcSeq = 0;
  const commands: { name: string; argv: () => string[] }[] = [
    // Both without a network: podman's default one needs its own bridge and iptables here.
    { name: 'imgbuild run --rm --network none', argv: () => [CLI, '--root', root, 'run', '--rm', '--network', 'none', 'busybox', 'true'] },
    { name: 'podman run --rm --network none (vfs)', argv: () => podman('vfs') },
    { name: 'podman run --rm --network none (overlay)', argv: () => podman('overlay') },
    { name: 'runc run (same bundle)', argv: () => ['runc', 'run', '--bundle', bundle, `bench-${process.pid}-${runcSeq++}`] },
    { name: 'imgbuild --version (CLI start-up floor)', argv: () => [CLI, '--version'] },
    { name: 'imgbuild run --rm (default bridge network)', argv: () => [CLI, '--root', root, 'run', '--rm', 'busybox', 'true'] },
  ];
  // BENCH_BASELINE_CLI=<other checkout>/bin/imgbuild (or a .js/.cjs entry, run with node): an earlier build on the same store, for
  // before/after figures from one run.
  const baseline = process.env.BENCH_BASELINE_CLI;
  if (baseline) commands.push({ name: 'baseline imgbuild run --rm --network none', argv: () => [...(/\.c?js$/.test(baseline) ? [process.execPath] : []), baseline, '--root', root, 'run', '--rm', '--network', 'none', 'busybox', 'true'] });
  // The machine is shared: the commands take turns (one run of each per round) so that a burst of
  // load elsewhere hits all of them alike, and the ratios stay meaningful.
  // Node 20 can, rarely, hang in its platform shutdown after exit (nodejs/node#64274): such a run
  // is killed after 20 s, reported, and left out rather than stalling the benchmark.
  let hung = 0;
  const once = (argv: string[]): number | undefined => {
    const t = process.hrtime.bigint();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000, killSignal: 'SIGKILL' });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.signal === 'SIGKILL' && ms >= 20_000) {
      hung++;
      return undefined;
    }
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
    return ms;
  };
  process.stdout.write(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${runs} interleaved rounds\n`);
  for (let i = 0; i < 3; i++) for (const c of commands) once(c.argv());
  const times = commands.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    commands.forEach((c, k) => {
      const ms = once(c.argv());
      if (ms !== undefined) times[k]!.push(ms);
    });
  }
  if (hung > 0) process.stdout.write(`${hung} run(s) hung after exiting and were left out\n`);
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
    return { median: median / 1000, mean: mean / 1000, stddev: sd / 1000 };
  };
  const res = commands.map((c, k) => ({ command: c.name, ...stats(times[k]!) }));
  const [im, pvfs, pov, rc, floor] = res;
  if (!im || !pvfs || !pov || !rc || !floor) throw new Error('fewer results than commands');
  const pm = pvfs.median <= pov.median ? pvfs : pov;
  const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`;
  process.stdout.write('\n| command | median | mean ± sd | vs imgbuild |\n|---|---|---|---|\n');
  for (const r of res) {
    process.stdout.write(`| ${r.command} | ${ms(r.median)} | ${ms(r.mean)} ± ${ms(r.stddev)} | ${(r.median / im.median).toFixed(2)}× |\n`);
  }
  const ratio = im.median / pm.median;
  process.stdout.write(`\nimgbuild/podman = ${ratio.toFixed(3)} against ${pm.command} (goal ≤ 0.50: ${ratio <= 0.5 ? 'met' : 'NOT met'}); imgbuild/runc = ${(im.median / rc.median).toFixed(2)}\n`);
  process.stdout.write(`run beyond the CLI start-up floor: ${ms(im.median - floor.median)} (create, cgroup + netns, sandbox, removal)\n`);
} finally {
  if (mounted) await unmount(join(bundle, 'rootfs')).catch(() => {});
  if (ctrId) await removeContainer(root, ctrId, { force: true }).catch(() => {});
  for (const driver of ['vfs', 'overlay']) {
    const dir = join(pod, driver);
    if (existsSync(join(dir, 'storage'))) {
      spawnSync('podman', ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', driver, 'system', 'reset', '-f'], { stdio: 'ignore' });
    }
  }
  const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(base));
  if (left.length === 0) rmSync(base, { recursive: true, force: true });
  else process.stderr.write(`mounts left under ${base}; not removing it:\n${left.join('\n')}\n`);
}
