/**
 * Rootless: imgbuild as an unprivileged user with subordinate id ranges beside rootless podman and
 * buildah, as the same user, in the same run.
 *
 *   npx tsx bench/rootless.ts                 # 30 rounds of `run --rm`, 5 cold builds each
 *   BENCH_QUICK=1 npx tsx bench/rootless.ts   # 5 rounds, 1 build, a 300-file context
 *   BENCH_ONLY=rootless npm run bench
 *
 * - `run --rm busybox true`: imgbuild against `podman run --rm` (runc, cgroupfs, overlay storage of
 *   its own under the user's home), both with `--network none` and both with `--network host`
 *   (rootless podman's default network, slirp4netns, needs /dev/net/tun, which the user may not
 *   open here). Floors beside them: `imgbuild --version` (Node's start) and `unshare` with the
 *   user's id maps running `true` (the user namespace imgbuild re-executes itself in); as root,
 *   root's own `imgbuild run --rm` too.
 * - a cold build: a fresh store holding only the base, then a Dockerfile with a COPY of a real
 *   tree (the first files of /usr/share/doc) and a RUN that writes and deletes files, against
 *   `buildah bud --layers` with `--isolation oci --runtime runc` and with `--isolation chroot`.
 *
 * The commands take turns round by round (load elsewhere hits them alike); each ratio is the
 * median of the ratios within a round. Beside wall time, the CPU time of each command's process
 * tree, which a busy machine disturbs less. The base image comes into every store from one OCI archive
 * (`imgbuild load`, `podman load`, `buildah pull oci-archive:`). Run as root, the bench works as
 * `imgbuild-bench`, made by scripts/rootless-user.sh (and removed again if this run made it);
 * otherwise as the calling user. A peer that is missing or fails is skipped with one line.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ensureBusybox } from '../test/helpers/base-image.js';
import { CLI_EXE, CLI_MAIN, REPO_ROOT } from '../test/helpers/cli.js';
import { subordinateRange } from '../src/host/userns.js';

const quick = process.env.BENCH_QUICK === '1';
const RUN_ROUNDS = quick ? 5 : Number(process.env.BENCH_RUN_ROUNDS ?? 30);
const BUILD_ROUNDS = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 5));
const CONTEXT_FILES = quick ? 300 : 3000;
/** Not `imgbuild-ci`: the rootless tests may be using (and removing) that one meanwhile. */
const BENCH_USER = 'imgbuild-bench';
/** After imgbuild-ci's range (scripts/rootless-user.sh), so the two never overlap. */
const BENCH_SUBID_START = '3000131072';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const say = (s: string): void => void process.stdout.write(`${s}\n`);

interface User {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Whether this run made the user (and so removes it). */
  created: boolean;
}

const asRoot = process.getuid?.() === 0;
const have = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
const userScript = (verb: string): SpawnSyncReturns<string> =>
  spawnSync('bash', [join(REPO_ROOT, 'scripts', 'rootless-user.sh'), verb], {
    encoding: 'utf8',
    env: { ...process.env, IMGBUILD_TEST_USER: BENCH_USER, IMGBUILD_TEST_SUBID_START: BENCH_SUBID_START },
  });

function benchUser(): User | undefined {
  if (!asRoot) {
    const u = userInfo();
    return { name: u.username, uid: u.uid, gid: u.gid, home: homedir(), created: false };
  }
  const existed = spawnSync('id', ['-u', BENCH_USER], { stdio: 'ignore' }).status === 0;
  const r = userScript('ensure');
  if (r.status !== 0) {
    say(`rootless bench skipped: scripts/rootless-user.sh ensure failed: ${r.stderr.trim().split('\n')[0]}`);
    return undefined;
  }
  const id = (flag: string): number => Number(spawnSync('id', [flag, BENCH_USER], { encoding: 'utf8' }).stdout.trim());
  const home = spawnSync('getent', ['passwd', BENCH_USER], { encoding: 'utf8' }).stdout.split(':')[5]!;
  return { name: BENCH_USER, uid: id('-u'), gid: id('-g'), home, created: !existed };
}

/** How the bench starts a command as the user, with a private HOME, XDG dirs and TMPDIR under `work`. */
class AsUser {
  readonly env: Record<string, string>;
  /** podman refuses a --runroot longer than 50 characters: a short directory of the user's in /tmp. */
  readonly shortRun: string;
  constructor(readonly user: User, readonly work: string) {
    this.shortRun = mkdtempSync('/tmp/imgbuild-rl-');
    this.env = {
      HOME: work,
      XDG_DATA_HOME: join(work, 'data'),
      XDG_RUNTIME_DIR: join(work, 'run'),
      XDG_CONFIG_HOME: join(work, 'config'),
      TMPDIR: join(work, 'tmp'),
      PATH,
      USER: user.name,
      LOGNAME: user.name,
    };
  }

  /** The argv (and environment) of `argv` run as the user, `env` added to the user's. */
  argv(argv: string[], env: Record<string, string> = {}): { argv: string[]; env: NodeJS.ProcessEnv } {
    const all = { ...this.env, ...env };
    if (!asRoot) return { argv, env: { ...process.env, ...all } };
    const wrap = ['setpriv', '--reuid', String(this.user.uid), '--regid', String(this.user.gid), '--init-groups', '--reset-env'];
    return { argv: [...wrap, 'env', ...Object.entries(all).map(([k, v]) => `${k}=${v}`), ...argv], env: process.env };
  }

  run(argv: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
    const c = this.argv(argv, env);
    return spawnSync(c.argv[0]!, c.argv.slice(1), { encoding: 'utf8', env: c.env, cwd: this.work, maxBuffer: 1 << 26 });
  }

  /** A directory the user owns. */
  mkdir(dir: string, mode = 0o755): string {
    mkdirSync(dir, { recursive: true, mode });
    if (asRoot) chownSync(dir, this.user.uid, this.user.gid);
    return dir;
  }

  /** `unshare` with the user's id maps: what imgbuild re-executes itself under. */
  unshare(argv: string[]): string[] {
    const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8') : '');
    const u = subordinateRange(read('/etc/subuid'), this.user.name, this.user.uid);
    const g = subordinateRange(read('/etc/subgid'), this.user.name, this.user.gid);
    const maps = u && g ? [`--map-users=${u.start},1,${u.size}`, `--map-groups=${g.start},1,${g.size}`] : [];
    return ['unshare', '--map-root-user', ...maps, '--mount', '--propagation', 'private', '--', ...argv];
  }
}

const firstLine = (r: SpawnSyncReturns<string>): string =>
  (r.error?.message ?? r.stderr.split('\n').find((l) => l.trim() && !/level=warning/.test(l)) ?? `status ${r.status}`).trim();

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir));
}

/** Removes a store the user wrote (its files belong to the user's subordinate ids), never through a mount. */
function removeTree(u: AsUser, dir: string): void {
  if (!existsSync(dir)) return;
  const left = mountsUnder(dir);
  if (left.length > 0) {
    process.stderr.write(`mounts left under ${dir}; not removing it:\n${left.join('\n')}\n`);
    return;
  }
  if (asRoot) rmSync(dir, { recursive: true, force: true });
  else u.run(u.unshare(['rm', '-rf', dir]));
}

function stats(xs: number[]): { median: number; mean: number; sd: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { median, mean, sd };
}

/** The median of a/b over the rounds where both ran. */
function pairedRatio(a: (number | undefined)[], b: (number | undefined)[]): number {
  const r: number[] = [];
  a.forEach((x, i) => {
    const y = b[i];
    if (x !== undefined && y !== undefined) r.push(x / y);
  });
  return stats(r).median;
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

interface Timed {
  name: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

const TICK_MS = 1000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100);

/**
 * The CPU time (ms) of this process's children that it waited for, and of theirs: /proc/self/stat's
 * cutime + cstime. It counts in clock ticks (10 ms), so it is summed over the rounds. On a busy
 * machine it is the steadier figure: wall time there is mostly waiting for a core. Processes a
 * command leaves to run on are not counted: podman's conmon, with the runc it starts, and its
 * pause process.
 */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * TICK_MS;
}

/** Milliseconds, or undefined for a run that failed or hung (Node 20 can hang in its exit: nodejs/node#64274); its CPU time is added to `cpu`. */
function timeOnce(c: Timed, fails: Map<string, string>, cpu: number[] = [0]): number | undefined {
  const c0 = childrenCpuMs();
  const t = process.hrtime.bigint();
  const r = spawnSync(c.argv[0]!, c.argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: c.env, timeout: 20_000, killSignal: 'SIGKILL' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  cpu[0]! += childrenCpuMs() - c0;
  if (r.status === 0) return ms;
  if (!fails.has(c.name)) fails.set(c.name, r.signal === 'SIGKILL' ? 'hung for 20 s' : firstLine(r));
  return undefined;
}

function benchRun(u: AsUser, rootStore: string | undefined): void {
  const commands: Timed[] = [];
  const add = (name: string, argv: string[], env: Record<string, string> = {}): void => void commands.push({ name, ...u.argv(argv, env) });
  for (const net of ['none', 'host']) add(`imgbuild run --rm --network ${net}`, [CLI_EXE, 'run', '--rm', '--network', net, 'busybox', 'true']);
  const pod = join(u.work, 'podman');
  const podman = ['podman', '--root', join(pod, 'storage'), '--runroot', join(u.shortRun, 'podman'), '--tmpdir', join(u.work, 'run', 'podman-tmp'),
    '--storage-driver', 'overlay', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const limits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
  if (!have('podman')) say('podman: skipped (not installed)');
  else {
    const loaded = u.run([...podman, 'load', '-q', '-i', join(u.work, 'base.tar')]);
    const tried = loaded.status === 0 ? u.run([...podman, 'run', '--rm', '--network', 'none', ...limits, 'busybox', 'true']) : loaded;
    if (tried.status !== 0) say(`podman: skipped (${firstLine(tried)})`);
    else for (const net of ['none', 'host']) add(`podman run --rm --network ${net}`, [...podman, 'run', '--rm', '--network', net, ...limits, 'busybox', 'true']);
  }
  add('imgbuild --version (Node start-up floor)', [CLI_EXE, '--version']);
  add('unshare with the id maps, true (namespace floor)', u.unshare(['true']));
  if (rootStore) commands.push({ name: 'root: imgbuild run --rm --network none', argv: [CLI_EXE, '--root', rootStore, 'run', '--rm', '--network', 'none', 'busybox', 'true'], env: process.env });

  const fails = new Map<string, string>();
  say(`load average before: ${load()}; ${RUN_ROUNDS} interleaved rounds of run --rm busybox true`);
  for (let i = 0; i < 3; i++) for (const c of commands) timeOnce(c, fails);
  const times = commands.map(() => [] as (number | undefined)[]);
  const cpu = commands.map(() => [0]);
  for (let i = 0; i < RUN_ROUNDS; i++) commands.forEach((c, k) => times[k]!.push(fails.has(c.name) ? undefined : timeOnce(c, fails, cpu[k])));
  for (const [name, why] of fails) say(`${name}: left out after failing (${why})`);
  say(`load average after: ${load()}\n`);
  const ok = (xs: (number | undefined)[]): number[] => xs.filter((x): x is number => x !== undefined);
  const ref = stats(ok(times[0]!)).median;
  const cpuPerRun = (k: number): number => cpu[k]![0]! / Math.max(1, ok(times[k]!).length);
  say('| command (as the user unless marked) | median | mean ± sd | ÷ imgbuild --network none | CPU per run | CPU ÷ imgbuild |\n|---|---:|---:|---:|---:|---:|');
  commands.forEach((c, k) => {
    const s = stats(ok(times[k]!));
    if (Number.isNaN(s.median)) return;
    say(`| ${c.name} | ${s.median.toFixed(1)} ms | ${s.mean.toFixed(1)} ± ${s.sd.toFixed(1)} ms | ${(s.median / ref).toFixed(2)} | ${cpuPerRun(k).toFixed(0)} ms | ${(cpuPerRun(k) / cpuPerRun(0)).toFixed(2)} |`);
  });
  say('\nCPU per run: of the process tree the bench waits for; podman\'s conmon, with the runc it starts, leaves it, so podman\'s is a lower bound.');
  const at = (name: string): (number | undefined)[] | undefined => times[commands.findIndex((c) => c.name === name)];
  const lines: string[] = [];
  for (const net of ['none', 'host']) {
    const ours = at(`imgbuild run --rm --network ${net}`);
    const theirs = at(`podman run --rm --network ${net}`);
    if (ours && theirs) lines.push(`imgbuild/podman (--network ${net}) = ${pairedRatio(ours, theirs).toFixed(3)}`);
  }
  const root = at('root: imgbuild run --rm --network none');
  if (root) {
    lines.push(`rootless/root imgbuild = ${pairedRatio(times[0]!, root).toFixed(3)}`);
    // What rootless adds, in CPU time: the namespace, and the CLI that only starts its re-run in it.
    const cpuOf = (name: string): number => cpuPerRun(commands.findIndex((c) => c.name === name));
    lines.push(`rootless run - root's run, CPU: ${(cpuPerRun(0) - cpuOf('root: imgbuild run --rm --network none')).toFixed(0)} ms (a Node start, --version: ${cpuOf('imgbuild --version (Node start-up floor)').toFixed(0)} ms; the namespace: ${cpuOf('unshare with the id maps, true (namespace floor)').toFixed(0)} ms)`);
  }
  say(`\npaired ratios (the median of the ratios within a round):\n${lines.join('\n')}`);
}

/** The build context: the first files of /usr/share/doc (a real tree), copied as the user. */
function makeContext(u: AsUser): { dir: string; files: number; source: string } {
  const dir = u.mkdir(join(u.work, 'ctx'));
  const doc = u.mkdir(join(dir, 'doc'));
  writeDockerfile(u, dir);
  const src = '/usr/share/doc';
  const list = spawnSync('sh', ['-c', `cd ${src} && find . \\( -type f -o -type l \\) | LC_ALL=C sort | head -n ${CONTEXT_FILES}`], { encoding: 'utf8' }).stdout;
  let files = list.split('\n').filter(Boolean).length;
  if (files > 0) {
    // Packed by the bench, unpacked by the user, whose files they become.
    const tar = spawnSync('tar', ['-C', src, '-cf', '-', '--no-recursion', '-T', '-'], { input: list, maxBuffer: 1 << 30 });
    const x = u.argv(['tar', '-C', doc, '-xf', '-']);
    const r = tar.status === 0 ? spawnSync(x.argv[0]!, x.argv.slice(1), { input: tar.stdout, env: x.env }) : tar;
    if (r.status !== 0) files = 0;
  }
  if (files === 0) {
    // No documentation installed: files of the same sizes' order instead.
    for (let i = 0; i < CONTEXT_FILES; i++) writeFileSync(join(u.mkdir(join(doc, `d${i % 60}`)), `f${i}`), `${i}\n${'x'.repeat(i % 20_000)}`);
    if (asRoot) spawnSync('chown', ['-R', `${u.user.uid}:${u.user.gid}`, doc]);
    return { dir, files: CONTEXT_FILES, source: 'generated data' };
  }
  return { dir, files, source: src };
}

function writeDockerfile(u: AsUser, dir: string): void {
  const dockerfile = join(dir, 'Dockerfile');
  writeFileSync(dockerfile, [
    'FROM busybox',
    'COPY doc/ /usr/share/doc/',
    'RUN i=0; while [ $i -lt 1000 ]; do echo "$i" > /tmp/w$i; i=$((i+1)); done; rm /tmp/w1*; rm -rf /usr/share/doc/[a-f]*; ls /usr/share/doc | wc -l > /count',
    '',
  ].join('\n'));
  if (asRoot) chownSync(dockerfile, u.user.uid, u.user.gid);
}

interface Builder {
  name: string;
  /** Makes a fresh store holding the base image; returns the timed build's argv and env. */
  prepare(store: string): { argv: string[]; env: Record<string, string> } | string;
}

function benchBuild(u: AsUser): void {
  const ctx = makeContext(u);
  const base = join(u.work, 'base.tar');
  const builders: Builder[] = [{
    name: 'imgbuild build',
    prepare: (store) => {
      const env = { XDG_DATA_HOME: store };
      const r = u.run([CLI_EXE, 'load', '-q', '-i', base], env);
      return r.status === 0 ? { argv: [CLI_EXE, 'build', '-q', '--network', 'none', '-t', 'bench', ctx.dir], env } : firstLine(r);
    },
  }];
  const buildah = (store: string): string[] => ['buildah', '--root', join(store, 'storage'), '--runroot', join(store, 'run'), '--storage-driver', 'overlay'];
  for (const iso of [['--isolation', 'oci', '--runtime', 'runc', '--network', 'none'], ['--isolation', 'chroot']]) {
    builders.push({
      name: `buildah bud --layers ${iso.join(' ')}`,
      prepare: (store) => {
        const r = u.run([...buildah(store), 'pull', '-q', `oci-archive:${base}`]);
        return r.status === 0 ? { argv: [...buildah(store), 'bud', ...iso, '--layers', '--pull=never', '-q', '-t', 'bench', ctx.dir], env: {} } : firstLine(r);
      },
    });
  }
  if (!have('buildah')) {
    say('buildah: skipped (not installed)');
    builders.length = 1;
  }
  say(`\ncold build: ${ctx.files} files of ${ctx.source} copied, a RUN writing 1,000 files and deleting a third of the tree; ${BUILD_ROUNDS} round(s), the builders' order rotating; load average before: ${load()}`);
  const times = builders.map(() => [] as (number | undefined)[]);
  const cpu = builders.map(() => [] as number[]);
  const skipped = new Map<string, string>();
  for (let round = 0; round < BUILD_ROUNDS; round++) {
    for (let j = 0; j < builders.length; j++) {
      const k = (j + round) % builders.length;
      const b = builders[k]!;
      if (skipped.has(b.name)) {
        times[k]!.push(undefined);
        continue;
      }
      const store = u.mkdir(join(u.work, `store-${k}-${round}`));
      try {
        const p = b.prepare(store);
        let ms: number | undefined;
        if (typeof p === 'string') skipped.set(b.name, `base import failed: ${p}`);
        else {
          const c = u.argv(p.argv, p.env);
          const c0 = childrenCpuMs();
          const t = process.hrtime.bigint();
          const r = spawnSync(c.argv[0]!, c.argv.slice(1), { encoding: 'utf8', env: c.env, cwd: u.work, maxBuffer: 1 << 26 });
          ms = Number(process.hrtime.bigint() - t) / 1e6;
          const used = childrenCpuMs() - c0;
          if (r.status === 0) cpu[k]!.push(used);
          else {
            if (k === 0) throw new Error(`rootless imgbuild build failed: ${firstLine(r)}`);
            skipped.set(b.name, firstLine(r));
            ms = undefined;
          }
        }
        times[k]!.push(ms);
      } finally {
        removeTree(u, store);
      }
    }
  }
  for (const [name, why] of skipped) say(`${name}: skipped (${why})`);
  say(`load average after: ${load()}\n`);
  say('| cold build (as the user) | median | runs | imgbuild ÷ it (paired) | CPU (median) | imgbuild CPU ÷ its |\n|---|---:|---|---:|---:|---:|');
  const cpu0 = stats(cpu[0]!).median;
  builders.forEach((b, k) => {
    const xs = times[k]!.filter((x): x is number => x !== undefined);
    if (xs.length === 0) return;
    const c = stats(cpu[k]!).median;
    say(`| ${b.name} | ${(stats(xs).median / 1000).toFixed(2)} s | ${xs.map((x) => (x / 1000).toFixed(2)).join(', ')} | ${k === 0 ? '' : pairedRatio(times[0]!, times[k]!).toFixed(2)} | ${(c / 1000).toFixed(2)} s | ${k === 0 ? '' : (cpu0 / c).toFixed(2)} |`);
  });
}

async function main(): Promise<void> {
  if (!existsSync(CLI_MAIN)) spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (!have('unshare') || !have('newuidmap')) {
    say('rootless bench skipped: unshare (util-linux) or newuidmap (uidmap) is missing');
    return;
  }
  const user = benchUser();
  if (!user) return;
  const work = mkdtempSync(join(asRoot ? user.home : homedir(), 'imgbuild-bench-rootless-'));
  const u = new AsUser(user, work);
  const rootStore = asRoot ? mkdtempSync(join(tmpdir(), 'imgbuild-bench-rootless-root-')) : undefined;
  try {
    u.mkdir(work, 0o700);
    for (const d of ['data', 'config', 'tmp']) u.mkdir(join(work, d));
    u.mkdir(join(work, 'run'), 0o700);
    u.mkdir(u.shortRun, 0o700);
    // One OCI archive of the base, which every tool's store imports.
    const baseStore = rootStore ?? join(work, 'base-store');
    await ensureBusybox(baseStore);
    const archive = join(work, 'base.tar');
    const saved = rootStore
      ? spawnSync(CLI_EXE, ['--root', baseStore, 'save', '-o', archive, 'busybox:latest'], { encoding: 'utf8' })
      : u.run([CLI_EXE, '--root', baseStore, 'save', '-o', archive, 'busybox:latest']);
    if (saved.status !== 0) throw new Error(`imgbuild save of the base failed: ${firstLine(saved)}`);
    if (asRoot) chownSync(archive, user.uid, user.gid);
    const loaded = u.run([CLI_EXE, 'load', '-q', '-i', archive]);
    if (loaded.status !== 0) throw new Error(`rootless imgbuild load failed: ${firstLine(loaded)}`);
    say(`as ${user.name} (uid ${user.uid}${user.created ? ', made for this run' : ''}); stores under ${work}`);
    if (rootStore) spawnSync(CLI_EXE, ['--root', rootStore, 'run', '--rm', '--network', 'none', 'busybox', 'true']);
    benchRun(u, rootStore);
    benchBuild(u);
  } finally {
    cleanup(u, rootStore);
  }
}

function cleanup(u: AsUser, rootStore: string | undefined): void {
  const pod = join(u.work, 'podman');
  if (existsSync(pod)) {
    u.run(['podman', '--root', join(pod, 'storage'), '--runroot', join(u.shortRun, 'podman'), '--tmpdir', join(u.work, 'run', 'podman-tmp'), '--storage-driver', 'overlay', 'system', 'reset', '-f']);
  }
  // Rootless podman leaves a pause process holding its user namespace: this run's, so ended here.
  const pauseFile = join(u.work, 'run', 'podman-tmp', 'pause.pid');
  if (existsSync(pauseFile)) {
    const pid = Number(readFileSync(pauseFile, 'utf8').trim());
    if (pid > 1) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  for (const d of existsSync(u.work) ? readdirSync(u.work) : []) removeTree(u, join(u.work, d));
  removeTree(u, u.work);
  removeTree(u, u.shortRun);
  if (rootStore) removeTree(u, rootStore);
  if (u.user.created) {
    // userdel refuses while the user has processes; a pause process takes a moment to go.
    for (let i = 0; i < 50 && spawnSync('pgrep', ['-u', String(u.user.uid)]).status === 0; i++) spawnSync('sleep', ['0.1']);
    const r = userScript('remove');
    if (r.status !== 0) process.stderr.write(`removing ${u.user.name}: ${r.stderr}`);
  }
}

await main();
