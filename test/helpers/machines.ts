/**
 * Stores standing for separate machines (the build cache's tests pass a cache from one to another),
 * and the build helper those tests share.
 */
import { expect } from 'vitest';
import { join } from 'node:path';
import { ensureBusybox } from './base-image.js';
import { runCli, type CliResult } from './cli.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { validateImage } from '../conformance/validate-image.js';

/** A maker of fresh stores with busybox under `dir`: each call is one more machine. */
export function machineMaker(dir: string): () => Promise<string> {
  let n = 0;
  return async () => {
    const root = join(dir, `m${++n}`);
    await ensureBusybox(root);
    return root;
  };
}

/** A plain-progress build that must succeed; its image id beside the CLI's result. */
export async function buildOk(root: string, ctx: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult & { id: string }> {
  const r = await runCli(['build', '--progress=plain', ...args, ctx], { root, env });
  expect(r.code, r.stderr).toBe(0);
  return { ...r, id: r.stdout.trim() };
}

/** The manifest digest of `ref` in the store at `root`, after checking the image is whole. */
export async function validImageDigest(root: string, ref: string): Promise<string> {
  const store = await OciStore.open(root);
  try {
    const img = await findImage(store, ref);
    await validateImage(store, img.descriptor);
    return img.descriptor.digest;
  } finally {
    await store.release();
  }
}
