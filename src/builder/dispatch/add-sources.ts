/**
 * What ADD fetches and unpacks beyond the context: a URL downloaded into the step's scratch dir
 * (with --checksum verified), a git repository checked out at a commit (inputs/git.ts), and a
 * local archive extracted (plain, gzip, bzip2, xz or zstd; see inputs/archive.ts).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { ImgbuildError } from '../../errors.js';
import { fetchUrl } from '../inputs/http.js';
import { extractArchiveFile } from '../inputs/archive.js';
import { mayMakeDevices } from '../../tar/devices.js';
import { checkoutGit, gitAuthHeader, resolveGit, type ResolvedGit } from '../inputs/git.js';
import { isHttpUrl, parseGitRef, type GitRef } from '../inputs/git-url.js';
import type { Add, Copy } from '../frontend/instructions.js';

/** A downloaded ADD source: the file, the name it takes in the image, and its mtime. */
export interface Download {
  path: string;
  name: string;
  mtimeMs: number;
}

/** Downloads an ADD URL into `dir`. */
export async function download(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<Download> {
  const res = await fetchUrl(url, `ADD ${url}`, signal);
  if (!res.ok) throw new ImgbuildError('UNAVAILABLE', `ADD ${url}: HTTP ${res.status} ${res.statusText}`);
  const data = res.data;
  if (checksum) {
    // BuildKit's digest.Parse: "algorithm:hex", an algorithm it knows.
    const i = checksum.indexOf(':');
    if (i < 0) throw new ImgbuildError('INVALID_ARGUMENT', `ADD --checksum=${checksum}: invalid checksum digest format`);
    const alg = checksum.slice(0, i);
    const hex = checksum.slice(i + 1);
    if (alg !== 'sha256' && alg !== 'sha384' && alg !== 'sha512') throw new ImgbuildError('INVALID_ARGUMENT', `ADD --checksum=${checksum}: unsupported digest algorithm`);
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

/**
 * Extracts a local archive (tar, optionally gzip/bzip2/xz/zstd compressed) into `destDir`;
 * with `owner` (ADD --chown) every entry gets that owner. Device nodes are made where the process
 * may (`FROM scratch` + `ADD rootfs.tar.xz /` is how Debian's images are made), as Docker does.
 */
export async function extractArchive(archive: string, destDir: string, signal?: AbortSignal, owner?: { uid: number; gid: number }): Promise<void> {
  await extractArchiveFile(archive, destDir, { what: `ADD ${basename(archive)}`, allowDevices: mayMakeDevices(), ...(owner ? { owner } : {}), ...(signal ? { signal } : {}) });
}

/** A git reference among ADD's sources, resolved to its commit. */
export interface GitSource {
  word: string;
  ref: GitRef;
  resolved: ResolvedGit;
  keepGitDir: boolean;
  /** From the GIT_AUTH_* secrets, for an http(s) remote. */
  authHeader?: string;
}

/** How git sources are fetched: where, with which agent and secrets. */
export interface GitFetch {
  scratch: string;
  sshAuthSock?: string;
  /** The build's secrets by id (GIT_AUTH_TOKEN, GIT_AUTH_HEADER). */
  secret?: (id: string) => Promise<Buffer | undefined>;
  signal?: AbortSignal;
}

/**
 * The git references among the sources (BuildKit: a COPY may not name one, nor may `--checksum`
 * go with several sources or a local one). Words that are no git reference are left alone.
 */
export function gitSourcesOf(ins: Copy | Add): { word: string; ref: GitRef }[] {
  const out: { word: string; ref: GitRef }[] = [];
  for (const word of ins.sources) {
    const ref = parseGitRef(word);
    if (!ref || ref.indistinguishableFromLocal) continue;
    if (ins.kind === 'copy') throw new ImgbuildError('INVALID_ARGUMENT', "source can't be a git ref for COPY");
    out.push({ word, ref });
  }
  if (ins.kind === 'add' && ins.checksum !== undefined) {
    if (ins.sources.length !== 1) throw new ImgbuildError('INVALID_ARGUMENT', "checksum can't be specified for multiple sources");
    if (out.length === 0 && !isHttpUrl(ins.sources[0]!)) throw new ImgbuildError('INVALID_ARGUMENT', 'checksum requires HTTP(S) or Git sources');
  }
  return out;
}

/**
 * Resolves each git source to its commit (no checkout yet: a cached step needs none). The
 * instruction's `--checksum` and `--keep-git-dir` join the URL's own `checksum` and
 * `keep-git-dir`, which must not contradict them.
 */
export async function resolveGitSources(list: { word: string; ref: GitRef }[], ins: Add, o: GitFetch): Promise<GitSource[]> {
  const out: GitSource[] = [];
  for (const { word, ref } of list) {
    const g: GitRef = { ...ref };
    if (ins.checksum !== undefined) {
      if (g.checksum !== undefined && g.checksum !== ins.checksum) throw new ImgbuildError('INVALID_ARGUMENT', `checksum mismatch ${JSON.stringify(ins.checksum)} != ${JSON.stringify(g.checksum)}`);
      g.checksum = ins.checksum;
    }
    if (ins.keepGitDir && g.keepGitDir === false) throw new ImgbuildError('INVALID_ARGUMENT', 'inconsistent keep-git-dir configuration');
    const keepGitDir = g.keepGitDir ?? ins.keepGitDir;
    const authHeader = o.secret ? await gitAuthHeader(g.remote, o.secret) : undefined;
    const resolved = await resolveGit(g, { scratch: o.scratch, ...(authHeader ? { authHeader } : {}), ...(o.sshAuthSock ? { sshAuthSock: o.sshAuthSock } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    out.push({ word, ref: g, resolved, keepGitDir, ...(authHeader ? { authHeader } : {}) });
  }
  return out;
}

/** What a git source contributes to its step's cache key: the commit and how it is checked out. */
export function gitSourceKey(s: GitSource): unknown {
  const g = s.ref;
  return { git: g.remote, commit: s.resolved.commit, tag: s.resolved.tagObject, subdir: g.subdir, keep: s.keepGitDir, submodules: g.submodules ?? true, mtime: g.mtime ?? 'checkout' };
}

/** Checks a resolved git source out into `dir` (a fresh dir under the step's scratch). */
export async function checkoutGitSource(s: GitSource, dir: string, o: GitFetch): Promise<void> {
  await mkdir(o.scratch, { recursive: true });
  await checkoutGit(s.ref, s.resolved, dir, {
    scratch: o.scratch, keepGitDir: s.keepGitDir, ...(s.authHeader ? { authHeader: s.authHeader } : {}), ...(o.sshAuthSock ? { sshAuthSock: o.sshAuthSock } : {}), ...(o.signal ? { signal: o.signal } : {}),
  });
}
