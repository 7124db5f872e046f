/** Small helpers the case modules share: Dockerfile lines, archives made at context-write time. */
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { tar, type TarBuilder } from '../../../helpers/tar.js';

/**
 * A Dockerfile from lines: plain strings keep `${VAR}` as written (a template literal would
 * interpolate it), a backslash is written `\\`.
 */
export function lines(...l: string[]): string {
  return `${l.join('\n')}\n`;
}

/**
 * The RUN that upstream writes as `adduser -D NAME` (busybox-static from Debian has no adduser):
 * a user and its own group with id `id`, as adduser makes them.
 */
export function addUser(name: string, id: number): string {
  return `RUN echo '${name}:x:${id}:${id}::/home/${name}:/bin/sh' >> /etc/passwd && echo '${name}:x:${id}:' >> /etc/group`;
}

/** An uncompressed tar made by `fill`. */
export function tarBytes(fill: (t: TarBuilder) => TarBuilder): () => Promise<Buffer> {
  return () => fill(tar()).buffer();
}

/** A gzip-compressed tar made by `fill`. */
export function tarGz(fill: (t: TarBuilder) => TarBuilder): () => Promise<Buffer> {
  return async () => gzipSync(await fill(tar()).buffer());
}

/** A tar compressed by an external tool (`xz`, `bzip2`, `zstd`) reading stdin. */
export function tarVia(tool: string, fill: (t: TarBuilder) => TarBuilder): () => Promise<Buffer> {
  return async () => {
    const r = spawnSync(tool, ['-c'], { input: await fill(tar()).buffer(), maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr.toString()}`);
    return r.stdout;
  };
}

/** The one-file archive BuildKit's ADD tests use: `foo` holding `content0`. */
export const fooTar = (t: TarBuilder): TarBuilder => t.file('foo', 'content0');
