/**
 * Tar archives as build inputs (a context on stdin or given as a file, a downloaded context, a
 * local archive ADD unpacks): recognised by their first bytes, decompressed (gzip and zstd in
 * process, bzip2 and xz through the system's tools) and extracted confined into a directory.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ImgbuildError } from '../../errors.js';
import { createZstdDecompressor } from '../../compress/zstd.js';
import { applyLayer } from '../../tar/apply.js';
import { BLOCK, decodeBlock } from '../../tar/format.js';

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** How many leading bytes archiveKind looks at. */
export const ARCHIVE_HEAD = 2 * BLOCK;

/**
 * What the first bytes of a file say it is: a compressed stream by its magic, a tar by a header
 * block whose checksum holds (old v7 archives have no `ustar` magic), else undefined.
 */
export function archiveKind(head: Buffer): ArchiveKind | undefined {
  const starts = (...m: number[]): boolean => head.length >= m.length && m.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b, 0x08)) return 'gzip';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (head.length < BLOCK) return undefined;
  try {
    return decodeBlock(head.subarray(0, BLOCK), 0) ? 'tar' : undefined;
  } catch {
    return undefined;
  }
}

/** The kind of the file at `path` (undefined when it is no archive). */
export async function fileArchiveKind(path: string): Promise<ArchiveKind | undefined> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(ARCHIVE_HEAD);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return archiveKind(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * `<tool> -dc` reading `path`, as a stream that fails when the tool does (its status and first
 * line of stderr in the message) rather than ending early as if the archive were shorter.
 */
function viaTool(tool: string, path: string, what: string, signal?: AbortSignal): Readable {
  const out = new PassThrough();
  const child = spawn(tool, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  child.stdout.pipe(out, { end: false });
  let stdoutDone = false;
  let status: number | null | undefined;
  const finish = (): void => {
    if (!stdoutDone || status === undefined) return;
    if (status === 0) out.end();
    else out.destroy(new ImgbuildError('INVALID_ARGUMENT', `${what}: ${tool} -dc failed: ${stderr.trim().split('\n')[0] || `exit status ${status}`}`));
  };
  child.stdout.on('end', () => {
    stdoutDone = true;
    finish();
  });
  child.on('close', (code) => {
    status = code ?? -1;
    stdoutDone = true;
    finish();
  });
  child.on('error', (e) => {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    out.destroy(new ImgbuildError(missing ? 'NOT_FOUND' : 'UNAVAILABLE', `${what}: cannot run ${tool}${missing ? ` (install ${tool} to read ${tool} archives)` : `: ${e.message}`}`, { cause: e }));
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return out;
}

/** The tar inside the archive at `path` as a stream. */
export function openArchive(path: string, kind: ArchiveKind, what: string, signal?: AbortSignal): Readable {
  switch (kind) {
    case 'tar':
      return createReadStream(path);
    // pipeline, not pipe: a read error must reach the reader instead of leaving it waiting.
    case 'gzip':
      return pipeline(createReadStream(path), createGunzip(), () => {});
    case 'zstd':
      return pipeline(createReadStream(path), createZstdDecompressor(signal), () => {});
    case 'bzip2':
    case 'xz':
      return viaTool(kind, path, what, signal);
  }
}

/**
 * Extracts the archive at `path` into `dir` (which the caller owns and removes on failure).
 * Entries are confined to `dir` (src/tar/apply.ts); device nodes are refused unless
 * `allowDevices` (ADD into an image's rootfs, which containers mount nodev). `what` names the
 * archive in errors.
 */
export async function extractArchiveFile(path: string, dir: string, o: { what: string; kind?: ArchiveKind; owner?: { uid: number; gid: number }; allowDevices?: boolean; signal?: AbortSignal }): Promise<void> {
  const kind = o.kind ?? (await fileArchiveKind(path));
  if (!kind) throw new ImgbuildError('INVALID_ARGUMENT', `${o.what} is not a tar archive (plain, gzip, bzip2, xz or zstd)`);
  const tar = openArchive(path, kind, o.what, o.signal);
  try {
    await applyLayer(dir, tar, { mode: 'flat', ...(o.owner ? { owner: o.owner } : {}), ...(o.allowDevices ? { allowDevices: true } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  } catch (e) {
    if (e instanceof ImgbuildError) throw e;
    // zlib and stream errors: name the archive rather than the codec.
    throw new ImgbuildError('INVALID_ARGUMENT', `${o.what}: ${(e as Error).message}`, { cause: e });
  } finally {
    tar.destroy();
  }
}
