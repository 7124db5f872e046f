/**
 * Container start-up latency: `imgbuild run --rm busybox true` beside `podman run --rm` of the
 * same image (private root, vfs, the flags this machine needs) and `runc run` of the same bundle
 * (our container's config.json over its mounted rootfs), measured in one run with hyperfine.
 *
 *   npx tsx bench/run.ts              # 30 runs each
 *   BENCH_QUICK=1 npx tsx bench/run.ts  # 5 runs each
 *
 * The image gets into podman's storage with `skopeo copy oci:<our store>:<ref> containers-storage:`,
 * so both run the very same layer. Goal: imgbuild at most half of podman's time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBusybox, BUSYBOX_REF } from '../test/helpers/base-image.js';
import { OciStore } from '../src/layers/store.js';
import { createContainer } from '../src/containers/create.js';
import { removeContainer } from '../src/containers/lifecycle.js';
import { mountAll, unmount } from '../src/overlay/mount.js';
import type { SandboxSpec } from '../src/runner/spec.js';

const REPO = join(import.meta.dirname, '..');
const CLI = join(REPO, 'dist', 'cli', 'main.js');
const runs = process.env.BENCH_QUICK === '1' ? 5 : 30;

function sh(cmd: string, args: string[], o: { quiet?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  if (!o.quiet && r.stderr.trim()) process.stderr.write(r.stderr);
  return r.stdout;
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

if (!existsSync(CLI)) sh(process.execPath, [join(REPO, 'scripts', 'build.mjs')]);
for (const tool of ['hyperfine', 'podman', 'runc', 'skopeo']) {
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
  sh(process.execPath, [CLI, '--root', root, 'run', '--rm', 'busybox', 'true']);

  mkdirSync(join(pod, 'tmp'), { recursive: true });
  const storage = `[vfs@${join(pod, 'storage')}+${join(pod, 'run')}]`;
  sh('skopeo', ['copy', '-q', `oci:${root}:${BUSYBOX_REF}`, `containers-storage:${storage}${BUSYBOX_REF}`], { quiet: true });
  const podman = [
    'podman', '--root', join(pod, 'storage'), '--runroot', join(pod, 'run'), '--storage-driver', 'vfs',
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
  const runcCmd = `runc run --bundle ${quote(bundle)} bench-$$-$(date +%s%N) </dev/null`;

  const ours = [process.execPath, CLI, '--root', root, 'run', '--rm', 'busybox', 'true'];
  const json = join(base, 'hyperfine.json');
  process.stdout.write(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${runs} runs each\n`);
  const h = spawnSync(
    'hyperfine',
    ['--warmup', '3', '--runs', String(runs), '--style', 'basic', '--export-json', json,
      '-n', 'imgbuild run --rm', ours.map(quote).join(' '),
      '-n', 'podman run --rm', podman.map(quote).join(' '),
      '-n', 'runc run (same bundle)', runcCmd,
      '-n', 'imgbuild --version (CLI start-up floor)', [process.execPath, CLI, '--version'].map(quote).join(' ')],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (h.status !== 0) throw new Error(`hyperfine failed (${h.status})`);
  const res = (JSON.parse(readFileSync(json, 'utf8')) as { results: { command: string; mean: number; median: number; stddev: number }[] }).results;
  const [im, pm, rc, floor] = res;
  if (!im || !pm || !rc || !floor) throw new Error('hyperfine returned fewer results than commands');
  const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`;
  process.stdout.write('\n| command | median | mean ± sd | vs imgbuild |\n|---|---|---|---|\n');
  for (const r of res) {
    process.stdout.write(`| ${r.command} | ${ms(r.median)} | ${ms(r.mean)} ± ${ms(r.stddev)} | ${(r.median / im.median).toFixed(2)}× |\n`);
  }
  const ratio = im.median / pm.median;
  process.stdout.write(`\nimgbuild/podman = ${ratio.toFixed(3)} (goal ≤ 0.50: ${ratio <= 0.5 ? 'met' : 'NOT met'}); imgbuild/runc = ${(im.median / rc.median).toFixed(2)}\n`);
  process.stdout.write(`run beyond the CLI start-up floor: ${ms(im.median - floor.median)} (create, cgroup + netns, sandbox, removal)\n`);
} finally {
  if (mounted) await unmount(join(bundle, 'rootfs')).catch(() => {});
  if (ctrId) await removeContainer(root, ctrId, { force: true }).catch(() => {});
  if (existsSync(join(pod, 'storage'))) {
    spawnSync('podman', ['--root', join(pod, 'storage'), '--runroot', join(pod, 'run'), '--storage-driver', 'vfs', 'system', 'reset', '-f'], { stdio: 'ignore' });
  }
  const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(base));
  if (left.length === 0) rmSync(base, { recursive: true, force: true });
  else process.stderr.write(`mounts left under ${base}; not removing it:\n${left.join('\n')}\n`);
}
