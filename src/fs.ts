/**
 * Small file-system helpers open to every area (they depend on nothing internal; see the
 * dependency rule in test/conformance/dependency-rule.test.ts).
 */
import { lstatSync, type Stats } from 'node:fs';
import { access, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Whether a path can be reached (any kind of file; links followed). */
export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `mkdir -p` one level at a time, for directories named by the user. Node's recursive mkdir
 * never returns where mkdir fails with ENOENT under a directory that exists (a path under /proc
 * spun at full CPU, deaf to SIGTERM).
 */
export async function mkdirp(dir: string, mode?: number): Promise<void> {
  if ((await stat(dir).catch(() => undefined))?.isDirectory()) return;
  const parent = dirname(dir);
  if (parent !== dir) await mkdirp(parent, mode);
  await mkdir(dir, mode === undefined ? undefined : { mode }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
}

/** The names in `dir`; none when it is missing (or not a directory). Other errors are thrown. */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

/**
 * Writes a stream's chunks to `out` (stdout) with back-pressure. A reader that goes away
 * (`imgbuild export CTR | head -c 100`: EPIPE) ends the copy quietly, as a pipe's end is no failure.
 */
export async function writeAllTo(chunks: AsyncIterable<Buffer | string>, out: NodeJS.WritableStream): Promise<void> {
  let gone = false;
  const onError = (e: NodeJS.ErrnoException): void => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') gone = true;
  };
  out.on('error', onError);
  try {
    for await (const chunk of chunks) {
      if (gone) return;
      if (!out.write(chunk)) {
        await new Promise<void>((res) => {
          const done = (): void => {
            out.off('drain', done);
            out.off('error', done);
            out.off('close', done);
            res();
          };
          out.on('drain', done);
          out.on('error', done);
          out.on('close', done);
        });
      }
    }
  } finally {
    out.off('error', onError);
  }
}

/** `lstat` of a path that may be missing: undefined when it (or a directory on its way) is not there. */
export function lstatIfThere(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}
