/**
 * `top`: the processes of a running container, as the host's `ps` shows them (Docker's
 * daemon/top_unix.go semantics): `ps` runs with the caller's options (default `-ef`) and the pids
 * of the container's cgroup as `-q`; when those options cannot be combined with `-q` (`f`), `ps`
 * runs again without it. Either way the rows are filtered by the PID column.
 *
 * Rootless, `top` runs as the user itself (a fresh user namespace may not read the container's
 * processes' namespace links, which find those `exec` started: host/proc-group.ts), and `ps` runs
 * in a user namespace with the user's mapping, so that its UID column shows the container's users
 * (root, 1000) as rootless Docker and podman show them, not the host's subordinate ids.
 */
import { execFile } from 'node:child_process';
import { ImgbuildError } from '../errors.js';
import { unshareCommand } from '../host/userns.js';
import { ContainerStateError } from './errors.js';
import { cgroupOf } from './resources.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';

export interface TopResult {
  titles: string[];
  processes: string[][];
}

function ps(args: string[], signal?: AbortSignal): Promise<{ ok: boolean; out: string; err: string }> {
  const argv = (process.getuid?.() ?? 0) !== 0 ? unshareCommand(['ps', ...args]).args : ['ps', ...args];
  return new Promise((done) => {
    execFile(argv[0]!, argv.slice(1), { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' }, ...(signal ? { signal } : {}) }, (e, out, err) =>
      done({ ok: !e, out, err: err || (e ? e.message : '') }));
  });
}

/**
 * Splits `ps` output into titles and rows keeping only the rows whose PID is one of `pids`. The last
 * column (CMD, COMMAND, ARGS) may hold spaces: every title but the last takes one field.
 */
export function parsePsOutput(out: string, pids: Set<number>): TopResult {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw new ImgbuildError('INVALID_ARGUMENT', "couldn't find PID field in ps output");
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < titles.length) continue;
    const row = [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')];
    const pid = Number(row[pidIndex]);
    if (!Number.isInteger(pid)) throw new ImgbuildError('INVALID_ARGUMENT', `unexpected pid ${JSON.stringify(row[pidIndex])} in ps output`);
    if (pids.has(pid)) processes.push(row);
  }
  return { titles, processes };
}

export async function topContainer(root: string, nameOrId: string, psArgs: string[], o: LifecycleOptions = {}): Promise<TopResult> {
  const rec = await getContainer(root, nameOrId, o);
  if (rec.state.status !== 'running') throw new ContainerStateError(rec.id, `container ${rec.name} is not running`);
  const pids = await (await cgroupOf(rec, o)).members();
  const args = psArgs.length > 0 ? psArgs : ['-ef'];
  let r = pids.length > 0 ? await ps([...args, '-q', pids.join(',')], o.signal) : { ok: false, out: '', err: '' };
  // Some options (`f`) cannot be used with -q: run again without it, as Docker does.
  if (!r.ok) r = await ps(args, o.signal);
  if (!r.ok) throw new ImgbuildError('INVALID_ARGUMENT', `ps ${args.join(' ')}: ${r.err.trim().split('\n')[0] ?? 'failed'}`);
  return parsePsOutput(r.out, new Set(pids));
}
