/**
 * The keeper program: `keeper-main <root> <id> <options JSON>` (started by keeper.ts). While the
 * container runs it probes its HEALTHCHECK on the interval; when the container's process ends it
 * applies the restart policy: `restarting` with docker's delay, then a new detached start. It
 * leaves when the container ends for good (no policy, a user's stop or kill, a start that fails),
 * when the container is removed, or on SIGTERM (rm -f), killing a probe in flight first.
 */
import { watch, type FSWatcher } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { OciStore } from '../store/store.js';
import { emitContainerEvent } from './events.js';
import { execContainer } from './exec.js';
import {
  applyProbeResult,
  DEFAULT_INTERVAL_NS,
  DEFAULT_TIMEOUT_NS,
  formatDuration,
  initialHealth,
  LimitedOutput,
  probeCommand,
  readHealth,
  writeHealth,
  type HealthResult,
  type HealthState,
} from './health.js';
import { isSameProcess, procStartTime } from './proc.js';
import { containerDir, pathOf, readRecord, updateRecord, type ContainerRecord } from './record.js';
import { releaseResources } from './resources.js';
import { restartDecision } from './restart-policy.js';
import { startContainer } from './start.js';
import { refreshState } from './state.js';
import type { LifecycleOptions } from './types.js';

const [root = '', id = '', optsJson = '{}'] = process.argv.slice(2);
const o = JSON.parse(optsJson) as LifecycleOptions;
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
const ownStart = procStartTime(process.pid);

/** Resolves after `ms`, or earlier when something changes in the container's directory or we are told to stop. */
function waitChange(ms: number): Promise<void> {
  return new Promise((resolve) => {
    let w: FSWatcher | undefined;
    const done = (): void => {
      clearTimeout(t);
      w?.close();
      stop.signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    try {
      w = watch(containerDir(root, id), done);
      w.on('error', done);
    } catch {
      // the directory is gone: the caller finds out
    }
    stop.signal.addEventListener('abort', done, { once: true });
  });
}

/** One run of the check as an exec in the container, killed (its whole session) at the timeout. */
async function probe(rec: ContainerRecord, argv: string[], timeoutNs: number): Promise<HealthResult> {
  const start = new Date();
  const out = new LimitedOutput();
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out.write(c);
      cb();
    },
  });
  const ac = new AbortController();
  let execPid: number | undefined;
  let timedOut = false;
  const killProbe = (): void => {
    // The exec'd process leads its own session: its children (a shell's) go with it.
    if (execPid) {
      try {
        process.kill(-execPid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    ac.abort();
  };
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, onTimeout: () => void): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onTimeout, ms);
  };
  // Starting the exec does not count towards the timeout (docker's own 30 s guard covers it).
  arm(30_000, killProbe);
  stop.signal.addEventListener('abort', killProbe, { once: true });
  let result: { ExitCode: number; Output: string };
  try {
    const r = await execContainer(root, rec.id, { ...o, args: argv }, {
      stdout: sink,
      stderr: sink,
      signal: ac.signal,
      onStart: ({ pid }) => {
        execPid = pid;
        arm(Math.max(1, Math.round(timeoutNs / 1e6)), () => {
          timedOut = true;
          killProbe();
        });
      },
    });
    result = { ExitCode: r.exitCode, Output: out.toString() };
  } catch (e) {
    if (timedOut) {
      const text = out.toString();
      result = { ExitCode: -1, Output: `Health check exceeded timeout (${formatDuration(timeoutNs)})${text ? `: ${text}` : ''}` };
    } else result = { ExitCode: -1, Output: (e as Error).message };
  } finally {
    if (timer) clearTimeout(timer);
    stop.signal.removeEventListener('abort', killProbe);
  }
  return { Start: start.toISOString(), End: new Date().toISOString(), ...result };
}

/** While the container runs: its health check on the interval; returns once it no longer runs. */
async function watchRunning(first: ContainerRecord): Promise<void> {
  const hc = first.config.Healthcheck;
  const argv = probeCommand(hc, first.config.Shell);
  const intervalMs = (hc?.Interval || DEFAULT_INTERVAL_NS) / 1e6;
  const timeoutNs = hc?.Timeout || DEFAULT_TIMEOUT_NS;
  const startedAt = first.state.startedAt ?? new Date().toISOString();
  let health: HealthState | undefined;
  if (argv) {
    health = initialHealth(await readHealth(root, id));
    await writeHealth(root, id, health).catch(() => {});
  }
  // The first probe comes one interval after the start, the next one interval after each ends.
  let next = Date.now() + intervalMs;
  for (;;) {
    if (stop.signal.aborted) return;
    const r = await readRecord(root, id).catch(() => undefined);
    if (!r) return;
    const cur = await refreshState(root, r, o);
    if (cur.state.status !== 'running' || cur.state.startedAt !== first.state.startedAt) return;
    // A paused container is not probed (docker stops its monitor); probing resumes an interval
    // after the unpause.
    if (cur.state.paused) next = Date.now() + intervalMs;
    else if (argv && health && Date.now() >= next) {
      const res = await probe(cur, argv, timeoutNs);
      if (stop.signal.aborted) return;
      // A probe cut short by the container's end says nothing about its health.
      const after = await readRecord(root, id).catch(() => undefined);
      if (!after) return;
      if ((await refreshState(root, after, o)).state.status !== 'running') return;
      const was = health.Status;
      health = applyProbeResult(health, res, { startedAt, startPeriodNs: hc?.StartPeriod ?? 0, retries: hc?.Retries ?? 0 });
      await writeHealth(root, id, health).catch(() => {});
      // docker's action names the new status: `health_status: healthy`.
      if (health.Status !== was) await emitContainerEvent(root, cur, `health_status: ${health.Status}`);
      next = Date.now() + intervalMs;
    }
    await waitChange(argv ? Math.min(1_000, next - Date.now()) : 1_000);
  }
}

/**
 * Starts the exited container again (its kernel objects made anew, as at its first start). The
 * record turns `created` with us as its starter first, under its lock, unless its user stopped it
 * meanwhile: `cancelled` then (or when someone else started it), `failed` when the start failed.
 */
async function startAgain(): Promise<'started' | 'cancelled' | 'failed'> {
  const startTime = await ownStart;
  let before: ContainerRecord | undefined;
  await updateRecord(root, id, async (r) => {
    if (r.state.status !== 'exited' || !r.state.restarting || r.state.manuallyStopped) return;
    before = structuredClone(r);
    // The last run's exit status would make the new run look ended at once.
    await rm(pathOf(root, id, 'status'), { force: true });
    const { pid: _p, pidStartTime: _ps, proxyPid: _x, proxyStartTime: _xs, error: _e, ...rest } = r.state;
    // Still `restarting` (for ps and inspect) until the process runs.
    r.state = { ...rest, status: 'created', monitorPid: process.pid, monitorStartTime: startTime };
  });
  if (!before) return 'cancelled';
  await releaseResources(before, o).catch(() => {});
  const store = await OciStore.open(root);
  try {
    const rec = await startContainer(store, id, o);
    await updateRecord(root, id, (r) => {
      delete r.state.restarting;
    });
    await emitContainerEvent(root, rec, 'restart');
    return 'started';
  } catch {
    // The failure is the container's error (startContainer recorded it); docker leaves a container
    // whose restart failed exited.
    await updateRecord(root, id, (r) => {
      if (r.state.status === 'created' && r.state.monitorPid === undefined) r.state.status = 'exited';
      delete r.state.restarting;
    }).catch(() => {});
    return 'failed';
  } finally {
    await store.release();
  }
}

async function keep(): Promise<void> {
  for (;;) {
    if (stop.signal.aborted) return;
    const r = await readRecord(root, id).catch(() => undefined);
    if (!r) return;
    const rec = await refreshState(root, r, o);
    if (rec.state.status === 'running') {
      await watchRunning(rec);
      continue;
    }
    // Being started by someone else (a foreground run, a start): wait for it.
    if (rec.state.status === 'created' && rec.state.monitorPid !== process.pid && (await isSameProcess(rec.state.monitorPid, rec.state.monitorStartTime))) {
      await waitChange(200);
      continue;
    }
    if (rec.state.status !== 'exited') return;
    const policy = rec.hostConfig.restartPolicy;
    if (!policy || policy.name === 'no') return;
    const ran = Date.parse(rec.state.finishedAt ?? '') - Date.parse(rec.state.startedAt ?? '');
    const d = restartDecision(policy, {
      exitCode: rec.state.exitCode ?? 0,
      ranMs: Number.isFinite(ran) ? ran : 0,
      restartCount: rec.state.restartCount ?? 0,
      lastDelayMs: rec.state.restartDelayMs ?? 0,
      manuallyStopped: rec.state.manuallyStopped ?? false,
    });
    if (!d.restart) return;
    // (A `restarting` already set is one a keeper before us left: we are the only one now.)
    let marked = false;
    const gone = !(await updateRecord(root, id, (x) => {
      if (x.state.status !== 'exited' || x.state.manuallyStopped) return;
      x.state.restarting = true;
      x.state.restartCount = (x.state.restartCount ?? 0) + 1;
      x.state.restartDelayMs = d.delayMs;
      marked = true;
    }));
    if (gone) return;
    // Stopped or started by its user meanwhile: the loop reads what it is now.
    if (!marked) continue;
    await sleepUnlessStopped(d.delayMs);
    if (stop.signal.aborted) return;
    if ((await startAgain()) === 'failed') return;
  }
}

/** Waits `ms`, waking early to leave when the user stops the container meanwhile. */
async function sleepUnlessStopped(ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && !stop.signal.aborted) {
    await waitChange(until - Date.now());
    const r = await readRecord(root, id).catch(() => undefined);
    if (!r || r.state.manuallyStopped || !r.state.restarting) return;
  }
}

async function main(): Promise<void> {
  const startTime = await ownStart;
  let mine = false;
  await updateRecord(root, id, async (r) => {
    // One keeper per container: a live one already recorded stays in charge.
    if (r.state.keeperPid && r.state.keeperPid !== process.pid && (await isSameProcess(r.state.keeperPid, r.state.keeperStartTime))) return;
    r.state.keeperPid = process.pid;
    r.state.keeperStartTime = startTime;
    mine = true;
  });
  if (!mine) return;
  try {
    await keep();
  } finally {
    await updateRecord(root, id, (r) => {
      if (r.state.keeperPid !== process.pid) return;
      delete r.state.keeperPid;
      delete r.state.keeperStartTime;
      if (r.state.status === 'exited') delete r.state.restarting;
    }).catch(() => {});
  }
}

if (!root || !/^[0-9a-f]{64}$/.test(id)) {
  process.stderr.write('usage: keeper-main <root> <container id> <options JSON>\n');
  process.exitCode = 2;
} else {
  main().catch(() => {
    process.exitCode = 1;
  });
}
