import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { CLI_MAIN, REPO_ROOT, runCli } from '../helpers/cli.js';

const CACHE_DIR = join(REPO_ROOT, 'dist', 'cli', 'code-cache');
const BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'bundle.cjs');
const { commandName } = createRequire(import.meta.url)(CLI_MAIN) as { commandName: (a: string[]) => string };

/** The cache file the executable uses for `command` with the current bundle and Node. */
function cacheFileOf(command: string): string {
  const st = statSync(BUNDLE);
  return join(CACHE_DIR, `${command}-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}.bin`);
}

describe('the imgbuild executable (dist/cli/bin.cjs)', () => {
  it('names the command past the global options', () => {
    expect(commandName(['--root', '/x', 'run', '--rm', 'busybox'])).toBe('run');
    expect(commandName(['--root=/x', 'pull', 'a'])).toBe('pull');
    expect(commandName(['images'])).toBe('images');
    expect(commandName(['--version'])).toBe('none');
    expect(commandName([])).toBe('none');
    // Never a path component: anything but a plain word shares one file.
    expect(commandName(['../../etc/x'])).toBe('other');
    expect(commandName(['RUN'])).toBe('other');
  });

  it('writes a code cache per command at exit, and runs correctly from it', async () => {
    const tmp = await makeTmp();
    try {
      // A command name of its own, so no other test touches this cache file.
      const file = cacheFileOf('cachecheck');
      const first = await runCli(['cachecheck'], { root: tmp.dir });
      expect(first.code).toBe(2);
      expect(first.stderr).toMatch(/unknown command 'cachecheck'/);
      expect(existsSync(file)).toBe(true);
      const size = statSync(file).size;
      expect(size).toBeGreaterThan(1000);
      // The second run reads it (V8 accepts it: it is not rewritten) and behaves the same.
      const mtime = statSync(file).mtimeMs;
      const second = await runCli(['cachecheck'], { root: tmp.dir });
      expect(second).toEqual(first);
      expect(statSync(file).mtimeMs).toBe(mtime);
      // No temporary files are left beside the caches.
      expect(readdirSync(CACHE_DIR).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });

  it('ignores a damaged cache and replaces it', async () => {
    const tmp = await makeTmp();
    try {
      const file = cacheFileOf('damagedcache');
      await runCli(['damagedcache'], { root: tmp.dir });
      const good = readFileSync(file);
      // Garbage of the same length: V8 refuses it, the CLI still works, and the file is rewritten.
      writeFileSync(file, Buffer.alloc(good.length, 0x5a));
      const r = await runCli(['damagedcache'], { root: tmp.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/unknown command 'damagedcache'/);
      expect(readFileSync(file).equals(Buffer.alloc(good.length, 0x5a))).toBe(false);
      const v = await runCli(['--version'], { root: tmp.dir });
      expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    } finally {
      await tmp.cleanup();
    }
  });
});
