/**
 * Timing and clean-up helpers shared by the build bench and its peers: timed commands (with the
 * peak RSS GNU time reports), medians, tree removal that unmounts first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface Timing {
  secs: number;
  /** Peak RSS in KiB of the largest process of the command's tree (GNU time's %M), when measured. */
  rssKiB?: number;
  /** The last line the command printed (a quiet build's image id). */
  last: string;
}

/** GNU time, when installed: its %M is ru_maxrss of the waited-for tree (the largest process in it). */
export const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

export interface TimedOptions {
  env?: NodeJS.ProcessEnv;
  /** Wrap the command in GNU time to read its peak RSS (a fork and exec, ~1 ms, inside the timing). */
  rss?: { file: string };
}

/** Runs argv, times its wall clock; a non-zero exit throws with the tail of its stderr. */
export function timed(argv: string[], o: TimedOptions = {}): Timing {
  const full = o.rss && GNU_TIME ? [GNU_TIME, '-f', '%M', '-o', o.rss.file, ...argv] : argv;
  const t0 = performance.now();
  const r = spawnSync(full[0]!, full.slice(1), { encoding: 'utf8', env: o.env ?? process.env, maxBuffer: 1 << 26 });
  const secs = (performance.now() - t0) / 1000;
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.slice(0, 3).join(' ')} … exited ${r.status ?? r.signal}: ${tail(r.stderr)}`);
  const t: Timing = { secs, last: r.stdout.trim().split('\n').pop() ?? '' };
  if (o.rss && GNU_TIME) {
    // GNU time writes "Command exited…" lines first when the command fails; the last line is %M.
    const kib = Number(readFileSync(o.rss.file, 'utf8').trim().split('\n').pop());
    if (Number.isFinite(kib)) t.rssKiB = kib;
  }
  return t;
}

/** Runs argv to completion; throws on a non-zero exit. Returns stdout. */
export function run(argv: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.slice(0, 4).join(' ')} … exited ${r.status ?? r.signal}: ${tail(r.stderr)}`);
  return r.stdout;
}

/** The last non-empty line of a tool's stderr: the one that names its failure. */
export function tail(stderr: string | undefined): string {
  return (stderr ?? '').trim().split('\n').filter(Boolean).pop() ?? '(no message)';
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v "${name}"`], { stdio: 'ignore' }).status === 0;
}

export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2;
}

/** Mount points at or below dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts whatever a tool left mounted below dir, then removes it; refuses while mounts remain. */
export function removeTree(dir: string): void {
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`mounts left under ${dir} (${left[0]}); not removing it`);
  rmSync(dir, { recursive: true, force: true });
}

/** Cgroup directories named `rel` under each controller of this host (v1 hierarchies and v2). */
export function cgroupDirs(rel: string): string[] {
  const base = '/sys/fs/cgroup';
  const out: string[] = [];
  if (existsSync(join(base, 'cgroup.controllers'))) out.push(join(base, rel));
  else {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const f = line.split(' ');
      const fstype = f[f.indexOf('-') + 1];
      if ((fstype === 'cgroup' || fstype === 'cgroup2') && f[4]) out.push(join(f[4], rel));
    }
  }
  return out;
}
