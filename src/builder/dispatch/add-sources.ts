/**
 * What ADD fetches and unpacks beyond the context: a URL downloaded into the step's scratch dir
 * (with --checksum verified), and a local archive extracted, compressed with gzip (in process) or
 * bzip2, xz or zstd (through the system's tools, as a child process each).
 */
import { chmod, open as openFile, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { createGunzip } from 'node:zlib';
import { join, posix } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { deferredTrust } from '../../registry/trust.js';
import { applyLayer } from '../../tar/apply.js';
import { ImgbuildError } from '../../errors.js';

/** A downloaded ADD source: the file, the name it takes in the image, and its mtime. */
export interface Download {
  path: string;
  name: string;
  mtimeMs: number;
}

/**
 * fetch() for an ADD URL. Node's own trusts its default CA store; when the `imgbuild` executable
 * deferred NODE_EXTRA_CA_CERTS (src/registry/trust.ts), an https URL goes through undici's
 * fetch (the package's: its Agent must match its fetch) with those certificates added.
 */
async function fetchForAdd(url: string, signal?: AbortSignal): Promise<{ ok: boolean; status: number; statusText: string; data: Buffer; lastModified: string | null }> {
  const ca = url.startsWith('https:') ? deferredTrust(process.env) : undefined;
  const read = async (res: { ok: boolean; status: number; statusText: string; arrayBuffer(): Promise<ArrayBuffer>; headers: { get(n: string): string | null } }) => ({
    ok: res.ok,
    status: res.status,
    statusText: res.statusText,
    data: Buffer.from(await res.arrayBuffer()),
    lastModified: res.headers.get('last-modified'),
  });
  // fetch() reports every network failure as "fetch failed": the reason is its cause.
  const failed = (e: unknown): never => {
    if (signal?.aborted) throw e;
    const reason = (e as { cause?: { message?: string; code?: string } }).cause;
    const why = reason?.message ?? (e as Error).message;
    throw new ImgbuildError('UNAVAILABLE', `ADD ${url}: ${why}${reason?.code && !why.includes(reason.code) ? ` (${reason.code})` : ''}`, { cause: e });
  };
  if (!ca) return read(await fetch(url, signal ? { signal } : {}).catch(failed));
  // Required here, on first use: undici's index is slow to load (docs/architecture.md, Measurements).
  const undici = createRequire(import.meta.url)('undici') as typeof import('undici');
  const dispatcher = new undici.Agent({ connect: { ca } });
  try {
    return await read(await undici.fetch(url, { dispatcher, ...(signal ? { signal } : {}) }).catch(failed));
  } finally {
    await dispatcher.close();
  }
}

/** Downloads an ADD URL into `dir`. */
export async function download(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<Download> {
  const res = await fetchForAdd(url, signal);
  if (!res.ok) throw new ImgbuildError('UNAVAILABLE', `ADD ${url}: HTTP ${res.status} ${res.statusText}`);
  const data = res.data;
  if (checksum) {
    const [alg, hex] = checksum.split(':');
    if (alg !== 'sha256' && alg !== 'sha384' && alg !== 'sha512') throw new ImgbuildError('INVALID_ARGUMENT', `ADD --checksum: unsupported algorithm ${alg}`);
    const actual = createHash(alg).update(data).digest('hex');
    if (actual !== hex) throw new ImgbuildError('FAILED_PRECONDITION', `ADD ${url}: checksum mismatch: expected ${checksum}, got ${alg}:${actual}`);
  }
  const u = new URL(url);
  const name = posix.basename(u.pathname) || 'index.html';
  const path = join(dir, `dl-${randomBytes(6).toString('hex')}`);
  await writeFile(path, data, { mode: 0o600 });
  await chmod(path, 0o600);
  const lm = res.lastModified;
  const mtimeMs = lm ? Date.parse(lm) : 0;
  return { path, name, mtimeMs: Number.isFinite(mtimeMs) ? mtimeMs : 0 };
}

/** Extracts a local archive (tar, optionally gzip/bzip2/xz/zstd compressed) into `destDir`. */
export async function extractArchive(archive: string, destDir: string, signal?: AbortSignal): Promise<void> {
  const fh = await openFile(archive, 'r');
  const head = Buffer.alloc(6);
  await fh.read(head, 0, 6, 0);
  await fh.close();
  let stream: Readable;
  const viaTool = (cmd: string): Readable => {
    const p = spawn(cmd, ['-dc', archive], { stdio: ['ignore', 'pipe', 'inherit'] });
    return p.stdout;
  };
  if (head[0] === 0x1f && head[1] === 0x8b) stream = createReadStream(archive).pipe(createGunzip());
  else if (head.subarray(0, 3).toString('latin1') === 'BZh') stream = viaTool('bzip2');
  else if (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') stream = viaTool('xz');
  else if (head.readUInt32LE(0) === 0xfd2fb528) stream = viaTool('zstd');
  else stream = createReadStream(archive);
  await applyLayer(destDir, stream, { mode: 'flat', ...(signal ? { signal } : {}) });
}
