/**
 * Per-test temporary roots. Cleanup unmounts anything still mounted below the directory
 * (deepest first) before removing it, so a failed test never makes `rm` walk into a live mount.
 */
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .map((m) => m.replace(/\\040/g, ' '));
}

export async function unmountAll(dir: string): Promise<void> {
  const ms = (await mountsUnder(dir)).sort((a, b) => b.length - a.length);
  for (const m of ms) spawnSync('umount', ['-l', m]);
}

export async function makeTmp(prefix = 'imgbuild-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const base = process.env.IMGBUILD_TEST_TMP ?? tmpdir();
  const dir = await mkdtemp(join(base, prefix));
  return {
    dir,
    cleanup: async () => {
      await unmountAll(dir);
      if ((await mountsUnder(dir)).length > 0) throw new Error(`mounts left under ${dir}; not removing it`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
