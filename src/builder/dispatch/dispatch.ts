/**
 * Dispatch: a stage's instructions in order, each to its handler (buildkit `dispatch*`): RUN
 * (run.ts), COPY and ADD (copy-add.ts) as layer steps (layer-step.ts), the rest as changes of the
 * image config (config.ts). A stage builds its image in a private draft and publishes it as an
 * ImageState (image-state.ts) when it ends.
 */
import { throwIfAborted } from '../../errors.js';
import { withLocation } from '../errors.js';
import type { Stage, StageInstruction } from '../frontend/instructions.js';
import { expandInstruction } from '../frontend/instructions.js';
import { parseDockerfile } from '../frontend/parse.js';
import { resolveDeferredMount } from '../frontend/run-mount.js';
import { processWord, type EnvGetter } from '../frontend/shell-lex.js';
import { parsePlatformSpec } from '../frontend/platform.js';
import { formatReference, parseReference } from '../../image/reference.js';
import { loadBase } from './base-image.js';
import { dispatchConfig } from './config.js';
import { dispatchCopy } from './copy-add.js';
import { DEFAULT_PATH, draftOf, emptyImage, latestCreated, type ImageState } from './image-state.js';
import { workdirStep } from './layer-step.js';
import { dispatchRun } from './run.js';
import { changeConfig, envGet, envIndex, firstLine, getter, setEnv, stepTitle, type DispatchEnv, type StageCtx } from './stage.js';

/** Dispatches one instruction of a stage. */
async function dispatchInstruction(s: StageCtx, raw: StageInstruction, label: string): Promise<void> {
  const esc = s.env.escape;
  const g = getter(s);
  const ex = (w: string): string => processWord(w, g, esc);
  switch (raw.kind) {
    case 'run': {
      const ins = expandInstruction(raw, ex);
      return dispatchRun(s, { ...ins, mounts: ins.mounts.map((m) => resolveDeferredMount(m, ex)) }, label);
    }
    case 'copy':
    case 'add':
      return dispatchCopy(s, expandInstruction(raw, ex), label);
    case 'arg':
      return dispatchConfig(s, raw, label);
    default:
      return dispatchConfig(s, expandInstruction(raw, ex), label);
  }
}

/** Resolves a stage's FROM into its starting image (another stage, scratch, or an image). */
async function startImage(env: DispatchEnv, stage: Stage): Promise<ImageState> {
  const meta: EnvGetter = (n) => env.metaArgs.get(n);
  const name = processWord(stage.from.image, meta, env.escape);
  const platform = stage.from.platform ? parsePlatformSpec(processWord(stage.from.platform, meta, env.escape)) : env.platform;
  if (name.toLowerCase() === 'scratch') return emptyImage(platform);
  return (await env.stage(name, stage)) ?? (await loadBase(env, name, platform));
}

/** What a FROM names, as BuildKit titles it: the expanded name, an image's in full (`docker.io/library/x:latest`). */
function fromTitle(env: DispatchEnv, stage: Stage): string {
  const name = processWord(stage.from.image, (n) => env.metaArgs.get(n), env.escape);
  if (name.toLowerCase() === 'scratch' || env.isStage?.(name, stage) !== false) return name;
  try {
    return formatReference(parseReference(name));
  } catch {
    return name;
  }
}

/** Builds one stage and returns its final image. */
export async function dispatchStage(env: DispatchEnv, stage: Stage): Promise<ImageState> {
  const stageLabel = stage.name ?? `stage-${stage.index}`;
  const steps = stage.instructions.length + 1;
  const fromTask = env.reporter.task(`[${stageLabel} 1/${steps}] FROM ${fromTitle(env, stage)}`);
  let start: ImageState;
  try {
    start = await startImage(env, stage);
    fromTask.done();
  } catch (e) {
    fromTask.fail(e instanceof Error ? e.message : String(e));
    throw withLocation(e, stage.from.range, 'FROM');
  }
  const s: StageCtx = {
    env, stage, label: stageLabel, image: draftOf(start), latest: latestCreated(start),
    envAt: envIndex(start.config.config?.Env ?? []),
    args: new Map(), cmdSet: false, workdirPending: false, step: 1, steps,
  };
  // PATH is always set, Docker's default when the base has none (BuildKit; Windows keeps the OS's).
  if (envGet(s, 'PATH') === undefined && s.image.config.os !== 'windows') {
    changeConfig(s, (c) => setEnv(s, c, 'PATH', DEFAULT_PATH.slice('PATH='.length)));
  }
  // The base image's ONBUILD triggers run first, and are not passed on.
  const onbuild = s.image.config.config?.OnBuild ?? [];
  if (onbuild.length) {
    changeConfig(s, (c) => {
      c.OnBuild = null;
    });
    const parsed = parseDockerfile(`FROM scratch\n${onbuild.join('\n')}\n`, { file: 'ONBUILD' });
    for (const ins of parsed.stages[0]?.instructions ?? []) {
      await dispatchInstruction(s, ins, `[${stageLabel} ONBUILD] ${firstLine(ins)}`).catch((e: unknown) => {
        throw withLocation(e, stage.from.range, 'ONBUILD');
      });
    }
  }
  for (const ins of stage.instructions) {
    throwIfAborted(env.signal);
    s.step++;
    const label = `[${stageLabel} ${s.step}/${steps}] ${stepTitle(s, ins)}`;
    try {
      await dispatchInstruction(s, ins, label);
    } catch (e) {
      throw withLocation(e, ins.range, ins.kind.toUpperCase());
    }
  }
  if (s.workdirPending) await workdirStep(s);
  return s.image;
}
