/**
 * A container's keeper: a small detached Node process (keeper-main.ts) that outlives the CLI, as
 * the native monitor does, and carries out what needs someone awake while no imgbuild command
 * runs: the restart policy (restarting the container when its process ends, with docker's
 * back-off) and the HEALTHCHECK (probing on its interval). There is no daemon: a container gets a
 * keeper only when it has a restart policy or a health check, so `run --rm` and plain `run -d`
 * start none. Its command line names the store root and the container id, so that `rm -f` and
 * prune find it even when its pid never reached the record.
 */
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasHealthcheck } from './health.js';
import { isSameProcess } from './proc.js';
import type { ContainerRecord } from './record.js';
import type { LifecycleOptions } from './types.js';

/** Whether container `rec` needs a keeper while it runs: a restart policy other than no, or a health check. */
export function needsKeeper(rec: Pick<ContainerRecord, 'hostConfig' | 'config'>): boolean {
  const p = rec.hostConfig.restartPolicy;
  return (p !== undefined && p.name !== 'no') || hasHealthcheck(rec.config.Healthcheck);
}

function keeperScript(): { cmd: string; args: string[] } {
  // As ports.ts finds port-proxy: next to this module in src/ (tsx) or dist/ (the CLI bundle
  // lives in dist/cli, one level below dist/ as this module is).
  if (import.meta.url.endsWith('.ts')) {
    return { cmd: process.execPath, args: ['--import', 'tsx', fileURLToPath(new URL('../containers/keeper-main.ts', import.meta.url))] };
  }
  return { cmd: process.execPath, args: [fileURLToPath(new URL('../containers/keeper-main.js', import.meta.url))] };
}

/** The lifecycle options a keeper is started with (test roots for cgroups, network and claims). */
export type KeeperOptions = Pick<LifecycleOptions, 'cgroupRoot' | 'networkStateDir' | 'claimsDir'>;

/**
 * Starts the keeper of a running container (when it needs one and has none). It records itself
 * in the container's state; the caller does not wait for that.
 */
export function startKeeper(root: string, id: string, o: KeeperOptions = {}): number {
  const { cmd, args } = keeperScript();
  const opts = JSON.stringify({ cgroupRoot: o.cgroupRoot, networkStateDir: o.networkStateDir, claimsDir: o.claimsDir });
  // It has no use for extra CA certificates (see ports.ts); a small heap keeps it small.
  const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
  // In `/`: a keeper lives long and must not keep the caller's working directory busy (unmounted).
  // (From source, tsx is found from the working directory, which then stays.)
  const child = spawn(cmd, ['--max-semi-space-size=1', '--max-old-space-size=32', ...args, root, id, opts], {
    detached: true,
    stdio: 'ignore',
    ...(import.meta.url.endsWith('.ts') ? {} : { cwd: '/' }),
    env,
  });
  child.unref();
  return child.pid!;
}

/**
 * Starts container `rec`'s keeper when it needs one and none runs (a keeper still alive from an
 * earlier run goes on with the new one). Called once the start has claimed the container: a
 * keeper finding it exited would apply the restart policy itself.
 */
export async function ensureKeeper(root: string, rec: Pick<ContainerRecord, 'id' | 'hostConfig' | 'config'>, o: KeeperOptions = {}): Promise<void> {
  if (needsKeeper(rec) && (await findKeepers(rec.id)).length === 0) startKeeper(root, rec.id, o);
}

/** Running keepers (of container `id` only, when given), found by their command line. */
export async function findKeepers(id?: string): Promise<{ pid: number; id: string; root: string }[]> {
  const out: { pid: number; id: string; root: string }[] = [];
  const names = await readdir('/proc').catch(() => [] as string[]);
  await Promise.all(
    names.map(async (n) => {
      if (!/^\d+$/.test(n)) return;
      const argv = await readFile(`/proc/${n}/cmdline`, 'utf8').then((t) => t.split('\0'), () => []);
      const i = argv.findIndex((a) => /\/containers\/keeper-main\.[jt]s$/.test(a));
      if (i < 0) return;
      const kid = argv[i + 2] ?? '';
      if (!/^[0-9a-f]{64}$/.test(kid) || (id !== undefined && kid !== id)) return;
      out.push({ pid: Number(n), id: kid, root: argv[i + 1] ?? '' });
    }),
  );
  return out;
}

/**
 * Ends container `id`'s keeper (rm -f, prune) and waits for it to be gone, so that it cannot
 * start the container again after its kernel objects were released. SIGTERM first (it leaves at
 * once, killing a probe in flight), SIGKILL after a second.
 */
export async function stopKeeper(id: string, state: Pick<ContainerRecord['state'], 'keeperPid' | 'keeperStartTime'> = {}): Promise<void> {
  const pids = new Set((await findKeepers(id)).map((k) => k.pid));
  if (state.keeperPid && (await isSameProcess(state.keeperPid, state.keeperStartTime))) pids.add(state.keeperPid);
  if (pids.size === 0) return;
  const signal = (sig: NodeJS.Signals): void => {
    for (const p of pids) {
      try {
        process.kill(p, sig);
      } catch {
        pids.delete(p);
      }
    }
  };
  signal('SIGTERM');
  for (let i = 0; pids.size > 0; i++) {
    if (i === 50) signal('SIGKILL');
    await sleep(20);
    for (const p of [...pids]) if (!(await isSameProcess(p, undefined))) pids.delete(p);
    if (i > 250) break;
  }
}
