/**
 * The instructions that change only the image config (buildkit `dispatchEnv`, `dispatchLabel`,
 * ...): ENV, LABEL, MAINTAINER, WORKDIR, USER, CMD, ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL,
 * HEALTHCHECK, ONBUILD and SHELL each add a history entry with `empty_layer: true`; ARG changes
 * only the stage's variables. A WORKDIR leaves its mkdir to the next layer step.
 */
import { posix } from 'node:path';
import type { HealthConfig, ImageConfig } from '../../image/types.js';
import { ImgbuildError } from '../../errors.js';
import type { Add, Arg, Copy, Healthcheck, Run, StageInstruction } from '../frontend/instructions.js';
import { processWord } from '../frontend/shell-lex.js';
import { changeConfig, commandArgs, getter, historyEntry, setEnv, type StageCtx } from './stage.js';

/** The instructions that make no layer. */
export type ConfigInstruction = Exclude<StageInstruction, Run | Copy | Add>;

function parsePorts(words: string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    const [port = '', proto = 'tcp'] = w.split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(port);
    if (!m) throw new ImgbuildError('INVALID_ARGUMENT', `invalid EXPOSE port ${JSON.stringify(w)}`);
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    for (let p = lo; p <= hi; p++) out.push(`${p}/${proto.toLowerCase()}`);
  }
  return out;
}

function healthConfig(h: Healthcheck): HealthConfig {
  if (h.test[0] === 'NONE') return { Test: ['NONE'] };
  return {
    Test: h.test,
    ...(h.interval !== undefined ? { Interval: h.interval } : {}),
    ...(h.timeout !== undefined ? { Timeout: h.timeout } : {}),
    ...(h.startPeriod !== undefined ? { StartPeriod: h.startPeriod } : {}),
    ...(h.startInterval !== undefined ? { StartInterval: h.startInterval } : {}),
    ...(h.retries !== undefined ? { Retries: h.retries } : {}),
  };
}

function dispatchArg(s: StageCtx, ins: Arg): void {
  for (const a of ins.args) {
    const fromBuild = s.env.buildArgs.get(a.key);
    let v: string | undefined;
    if (fromBuild !== undefined) v = fromBuild;
    else if (a.value !== undefined) v = processWord(a.value, getter(s), s.env.escape);
    else v = s.env.metaArgs.get(a.key);
    if (v !== undefined) s.args.set(a.key, v);
    else s.args.delete(a.key);
  }
}

/** Dispatches a config-only instruction, already expanded (ARG expands its own values). */
export function dispatchConfig(s: StageCtx, ins: ConfigInstruction, label: string): void {
  const cfgStep = (by: string, fn: (c: NonNullable<ImageConfig['config']>) => void): void => {
    const t = s.env.reporter.task(label);
    changeConfig(s, fn, historyEntry(s, by, true));
    t.done();
  };
  switch (ins.kind) {
    case 'arg':
      dispatchArg(s, ins);
      return;
    case 'env':
      cfgStep(`ENV ${ins.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, (c) => {
        for (const p of ins.pairs) setEnv(s, c, p.key, p.value);
      });
      return;
    case 'label':
      cfgStep(`LABEL ${ins.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, (c) => {
        c.Labels ??= {};
        for (const p of ins.pairs) c.Labels[p.key] = p.value;
      });
      return;
    case 'maintainer':
      changeConfig(s, () => {}, historyEntry(s, `MAINTAINER ${ins.maintainer}`, true));
      s.image.config.author = ins.maintainer;
      return;
    case 'workdir': {
      const cur = s.image.config.config?.WorkingDir || '/';
      const wd = posix.resolve(cur, ins.path);
      cfgStep(`WORKDIR ${wd}`, (c) => {
        c.WorkingDir = wd;
      });
      // A layer step made the earlier ones; this one joins those still to make.
      if (!s.workdirPending) s.pendingWorkdirs = [];
      const user = s.image.config.config?.User;
      if (wd !== '/') (s.pendingWorkdirs ??= []).push({ path: wd, ...(user ? { user } : {}) });
      if (s.pendingWorkdirs?.length) s.workdirPending = true;
      return;
    }
    case 'user':
      cfgStep(`USER ${ins.user}`, (c) => {
        c.User = ins.user;
      });
      return;
    case 'cmd': {
      const args = commandArgs(s, ins.command);
      cfgStep(`CMD ${JSON.stringify(args)}`, (c) => {
        c.Cmd = args;
      });
      s.cmdSet = true;
      return;
    }
    case 'entrypoint': {
      const args = commandArgs(s, ins.command);
      cfgStep(`ENTRYPOINT ${JSON.stringify(args)}`, (c) => {
        c.Entrypoint = args;
        if (!s.cmdSet) c.Cmd = null;
      });
      return;
    }
    case 'expose': {
      const ports = parsePorts(ins.ports.flatMap((p) => p.split(/\s+/).filter(Boolean)));
      cfgStep(`EXPOSE ${ports.join(' ')}`, (c) => {
        c.ExposedPorts ??= {};
        for (const p of ports) c.ExposedPorts[p] = {};
      });
      return;
    }
    case 'volume':
      cfgStep(`VOLUME ${JSON.stringify(ins.paths)}`, (c) => {
        c.Volumes ??= {};
        for (const p of ins.paths) {
          if (p.trim() === '') throw new ImgbuildError('INVALID_ARGUMENT', 'VOLUME specified can not be an empty string');
          c.Volumes[p] = {};
        }
      });
      return;
    case 'stopsignal':
      cfgStep(`STOPSIGNAL ${ins.signal}`, (c) => {
        c.StopSignal = ins.signal;
      });
      return;
    case 'healthcheck':
      cfgStep(`HEALTHCHECK ${JSON.stringify(ins.test)}`, (c) => {
        c.Healthcheck = healthConfig(ins);
      });
      return;
    case 'onbuild':
      cfgStep(`ONBUILD ${ins.expression}`, (c) => {
        (c.OnBuild ??= []).push(ins.expression);
      });
      return;
    case 'shell':
      cfgStep(`SHELL ${JSON.stringify(ins.shell)}`, (c) => {
        c.Shell = ins.shell;
      });
      return;
  }
}
