/**
 * `build --check`: BuildKit's Dockerfile checks without building. The inputs are opened as a
 * build opens them (a context from stdin, an archive, git or a URL is materialized in a scratch
 * dir under the system's temporary dir, so a check never creates a store), `.dockerignore` is read
 * for CopyIgnoredFile, and base images are looked up in the store when there is one.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { OciStore } from '../store/store.js';
import { loadIgnore } from './frontend/dockerignore.js';
import { openInputs, type InputOptions } from './inputs/build-inputs.js';
import { lintDockerfile, type LintResult } from './lint/lint.js';
import { storeBaseImages } from './lint/base-images.js';

export interface CheckOptions extends Omit<InputOptions, 'buildArgs' | 'task'> {
  root: string;
  buildArgs?: Record<string, string>;
  target?: string;
  platform?: string;
}

export interface CheckResult extends LintResult {
  /** The Dockerfile checked, and its name as printed. */
  text: string;
  file: string;
}

export async function checkDockerfile(o: CheckOptions): Promise<CheckResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'imgbuild-check-'));
  const root = resolve(o.root);
  // Only an existing store is opened: a check leaves nothing behind.
  const store = (await stat(join(root, 'index.json')).catch(() => undefined)) ? await OciStore.open(root) : undefined;
  try {
    const inputs = await openInputs({ ...o, ...(o.buildArgs ? { buildArgs: o.buildArgs } : {}) }, join(scratch, 'inputs'));
    const ignore = inputs.contextDir !== undefined && !inputs.materialized ? await loadIgnore(inputs.contextDir, inputs.dockerfilePath) : undefined;
    // Named by its base name, as BuildKit's source maps name it.
    const file = basename(inputs.dockerfileName ?? 'Dockerfile');
    const r = await lintDockerfile(inputs.dockerfileText, {
      file,
      buildArgs: new Map(Object.entries(o.buildArgs ?? {})),
      scope: 'check',
      ...(o.target !== undefined ? { target: o.target } : {}),
      ...(o.platform !== undefined ? { platform: o.platform } : {}),
      ...(store ? { baseImage: storeBaseImages(store) } : {}),
      ...(ignore ? { ignore } : {}),
    });
    return { ...r, text: inputs.dockerfileText, file };
  } finally {
    await store?.release().catch(() => {});
    // Contexts are unpacked or cloned here, never mounted.
    await rm(scratch, { recursive: true, force: true });
  }
}
