/**
 * Stores standing for separate machines (the build cache's tests pass a cache from one to another),
 * and the build and context helpers those tests share.
 */
import { expect } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBusybox } from './base-image.js';
import { runCli, type CliResult } from './cli.js';

/** A maker of fresh stores with busybox under `dir`: each call is one more machine. */
export function machineMaker(dir: string): () => Promise<string> {
  let n = 0;
  return async () => {
    const root = join(dir, `m${++n}`);
    await ensureBusybox(root);
    return root;
  };
}

/** A context dir `dir/name` holding `files` (name → text). */
export async function writeContext(dir: string, name: string, files: Record<string, string>): Promise<string> {
  const ctx = join(dir, name);
  await mkdir(ctx, { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(join(ctx, f), text);
  return ctx;
}

/** A plain-progress build that must succeed; its image id beside the CLI's result. */
export async function buildOk(root: string, ctx: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult & { id: string }> {
  const r = await runCli(['build', '--progress=plain', ...args, ctx], { root, env });
  expect(r.code, r.stderr).toBe(0);
  return { ...r, id: r.stdout.trim() };
}
