/**
 * Where a build's context comes from, read as `docker build` reads its argument (buildx
 * `LoadInputs`): `-` is stdin (a tar archive, plain or compressed, is the context; anything else
 * is the Dockerfile, with no context), a local directory is itself, a git reference or an http(s)
 * URL is fetched (an archive there is the context, a plain file the Dockerfile). A local tar file
 * is accepted as the context too, where Docker wants it on stdin.
 *
 * Every context that is not a local directory is materialized into the build's scratch dir, so a
 * failed or killed build leaves nothing behind that the scratch dir's removal does not take.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { ImgbuildError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { extractArchiveFile, fileArchiveKind } from './archive.js';
import { checkoutGit, gitAuthHeader, resolveGit } from './git.js';
import { isHttpUrl, parseGitRef, redactRemote, type GitRef } from './git-url.js';
import { fetchUrl } from './http.js';

export type ContextSource =
  | { kind: 'dir'; path: string }
  /** A tar archive file (plain, gzip, bzip2, xz or zstd). */
  | { kind: 'archive'; path: string }
  /** `-`: a tar archive or a Dockerfile on stdin. */
  | { kind: 'stdin'; stream: Readable }
  | { kind: 'git'; ref: GitRef }
  | { kind: 'url'; url: string };

/** Reads the context argument of `build` (the stream is what `-` reads). */
export async function contextSourceOf(arg: string, stdin: () => Readable): Promise<ContextSource> {
  if (arg === '-') return { kind: 'stdin', stream: stdin() };
  const st = await stat(arg).catch(() => undefined);
  if (st?.isDirectory()) return { kind: 'dir', path: arg };
  const git = parseGitRef(arg);
  if (git) return { kind: 'git', ref: git };
  if (isHttpUrl(arg)) return { kind: 'url', url: arg };
  if (st?.isFile() && (await fileArchiveKind(arg))) return { kind: 'archive', path: arg };
  if (st) throw new InvalidArgumentError(`build context ${JSON.stringify(arg)} is not a directory`);
  throw new NotFoundError(`build context ${JSON.stringify(arg)} not found`);
}

/** A context made ready for the build. */
export interface PreparedContext {
  /** The context directory; undefined when there is none (a Dockerfile alone on stdin or at a URL). */
  dir: string | undefined;
  /** The Dockerfile when it came as the input itself. */
  dockerfileText?: string;
  /** What the context is, for messages (`<stdin>`, a URL). */
  name: string;
}

export interface PrepareOptions {
  /** The build's scratch dir (created here when missing; removed by the caller). */
  scratch: string;
  /** A Dockerfile was named (`-f`): a Dockerfile on stdin would then be ambiguous. */
  dockerfileGiven: boolean;
  /** Keep `.git` in a git context (the BUILDKIT_CONTEXT_KEEP_GIT_DIR build arg). */
  keepGitDir?: boolean;
  /** SOURCE_DATE_EPOCH is set: a git context's files take the commit's time (BuildKit). */
  commitTimes?: boolean;
  /** The `--ssh default` agent for ssh git remotes. */
  sshAuthSock?: string;
  /** The build's secrets by id (GIT_AUTH_TOKEN and GIT_AUTH_HEADER authenticate an http(s) git remote). */
  secret?: (id: string) => Promise<Buffer | undefined>;
  /** Reports a step of its own (fetching, extracting). */
  task?: (label: string) => { done(): void; fail(msg?: string): void };
  signal?: AbortSignal;
}

async function withTask<T>(o: PrepareOptions, label: string, fn: () => Promise<T>): Promise<T> {
  const t = o.task?.(label);
  try {
    const r = await fn();
    t?.done();
    return r;
  } catch (e) {
    t?.fail(e instanceof Error ? e.message : String(e));
    throw e;
  }
}

/**
 * An archive file becomes the context dir; any other file is a Dockerfile (stdin and URLs only:
 * `plainIsDockerfile`), refused when `-f` named one too.
 */
async function fileContext(file: string, o: PrepareOptions, name: string): Promise<PreparedContext> {
  const kind = await fileArchiveKind(file);
  if (!kind) {
    if (o.dockerfileGiven) throw new InvalidArgumentError(`ambiguous Dockerfile source: both ${name} and -f name a Dockerfile`);
    return { dir: undefined, dockerfileText: await readFile(file, 'utf8'), name };
  }
  const dir = join(o.scratch, 'context');
  await mkdir(dir, { recursive: true });
  await extractArchiveFile(file, dir, { what: `build context ${name}`, kind, ...(o.signal ? { signal: o.signal } : {}) });
  return { dir, name };
}

/** Materializes `src` (see the module comment); a directory is used in place. */
export async function prepareContext(src: ContextSource, o: PrepareOptions): Promise<PreparedContext> {
  switch (src.kind) {
    case 'dir':
      return { dir: src.path, name: src.path };
    case 'archive': {
      await mkdir(o.scratch, { recursive: true });
      return withTask(o, `[internal] load build context ${src.path}`, async () => {
        const dir = join(o.scratch, 'context');
        await mkdir(dir);
        await extractArchiveFile(src.path, dir, { what: `build context ${JSON.stringify(src.path)}`, ...(o.signal ? { signal: o.signal } : {}) });
        return { dir, name: src.path };
      });
    }
    case 'stdin': {
      await mkdir(o.scratch, { recursive: true });
      // Spooled to a file first: what it is shows in its first bytes, and bzip2 and xz read files.
      const file = join(o.scratch, 'stdin');
      await pipeline(src.stream, createWriteStream(file, { mode: 0o600 }), ...(o.signal ? [{ signal: o.signal }] : []));
      return fileContext(file, o, '<stdin>');
    }
    case 'url': {
      await mkdir(o.scratch, { recursive: true });
      return withTask(o, `[internal] load remote build context ${src.url}`, async () => {
        const file = join(o.scratch, 'download');
        const res = await fetchUrl(src.url, `build context ${src.url}`, o.signal, { toFile: file });
        if (!res.ok) throw new ImgbuildError(res.status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE', `build context ${src.url}: HTTP ${res.status} ${res.statusText}`);
        return fileContext(file, { ...o, dockerfileGiven: false }, src.url);
      });
    }
    case 'git': {
      await mkdir(o.scratch, { recursive: true });
      const g: GitRef = { ...src.ref, ...(o.commitTimes && src.ref.mtime === undefined ? { mtime: 'commit' as const } : {}) };
      const name = redactRemote(src.ref.remote) + (g.ref || g.subdir ? `#${g.ref}${g.subdir ? `:${g.subdir}` : ''}` : '');
      return withTask(o, `[internal] load git source ${name}`, async () => {
        const gitScratch = join(o.scratch, 'git');
        await mkdir(gitScratch);
        const authHeader = o.secret ? await gitAuthHeader(g.remote, o.secret) : undefined;
        const common = {
          scratch: gitScratch, ...(authHeader ? { authHeader } : {}), ...(o.sshAuthSock ? { sshAuthSock: o.sshAuthSock } : {}), ...(o.signal ? { signal: o.signal } : {}),
        };
        const resolved = await resolveGit(g, common);
        const dir = join(o.scratch, 'context');
        await checkoutGit(g, resolved, dir, { ...common, keepGitDir: (o.keepGitDir ?? false) || (g.keepGitDir ?? false) });
        return { dir, name };
      });
    }
  }
}

/** The context and Dockerfile options of `build [-f FILE] CONTEXT`. */
export interface ArgInputs {
  contextDir?: string;
  contextSource?: ContextSource;
  dockerfile?: string;
  dockerfileText?: string;
  dockerfileInContext?: string;
}

/**
 * Reads `build [-f FILE] CONTEXT` as docker does: `-f -` is the Dockerfile on stdin (then the
 * context cannot be `-` too); `-f` is a host path relative to the working directory for a local
 * context dir, and a path inside the context for any other (an absolute one stays a host path).
 * `stdin` is asked for only when `-` names it: making process.stdin costs a build ~0.5 ms.
 */
export async function inputsFromArgs(contextArg: string, file: string | undefined, stdin: () => Readable, cwd: string): Promise<ArgInputs> {
  if (contextArg === '-' && file === '-') throw new InvalidArgumentError("can't use stdin for both build context and dockerfile");
  const src = await contextSourceOf(contextArg, stdin);
  const out: ArgInputs = src.kind === 'dir' ? { contextDir: resolve(cwd, src.path) } : { contextSource: src };
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of stdin()) chunks.push(c as Buffer);
    out.dockerfileText = Buffer.concat(chunks).toString('utf8');
  } else if (file !== undefined) {
    if (src.kind === 'dir' || isAbsolute(file)) out.dockerfile = resolve(cwd, file);
    else out.dockerfileInContext = posix.resolve('/', file).slice(1);
  }
  return out;
}
