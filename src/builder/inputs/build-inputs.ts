/**
 * A build's main inputs made ready before anything else happens: the context (a local directory,
 * or one materialized from stdin, an archive, git or a URL: context-source.ts) and the Dockerfile
 * (given as text, a host path, or a path inside the context; `Dockerfile`, else `dockerfile`, by
 * default, as buildx looks for it).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { resolveInRoot } from '../dispatch/fs-root.js';
import { prepareContext, type ContextSource } from './context-source.js';
import { secretReader } from './git.js';

export interface InputOptions {
  contextDir?: string;
  contextSource?: ContextSource;
  /** Host path of the Dockerfile. */
  dockerfile?: string;
  dockerfileText?: string;
  /** The Dockerfile's path inside the context (default `Dockerfile`). */
  dockerfileInContext?: string;
  buildArgs?: Record<string, string>;
  sourceDateEpoch?: number;
  /** SSH_AUTH_SOCK for ssh git remotes. */
  sshAuthSock?: string;
  /** `--secret`s (GIT_AUTH_TOKEN, GIT_AUTH_HEADER for a git context). */
  secrets?: { id: string; src?: string; env?: string }[];
  task?: (label: string) => { done(): void; fail(msg?: string): void };
  signal?: AbortSignal;
}

export interface BuildInputs {
  /** The context directory (undefined for a build without one). */
  contextDir: string | undefined;
  /** The context was made for this build (no `.dockerignore` applies, as in BuildKit for remote contexts; no stat cache kept). */
  materialized: boolean;
  dockerfileText: string;
  /** The Dockerfile as messages name it. */
  dockerfileName?: string;
  /** Its host path, when it has one (`<Dockerfile>.dockerignore` sits beside it). */
  dockerfilePath?: string;
}

/** The context must be a directory: say so in one line rather than fail on the first read in it. */
async function checkContextDir(dir: string): Promise<void> {
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') throw new NotFoundError(`build context ${JSON.stringify(dir)} not found`, { cause: e });
    throw e;
  });
  if (!st.isDirectory()) throw new InvalidArgumentError(`build context ${JSON.stringify(dir)} is not a directory`);
}

async function readDockerfile(path: string, name = path): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`Dockerfile ${JSON.stringify(name)} not found`, { cause: e });
    if (code === 'EISDIR') throw new InvalidArgumentError(`Dockerfile ${JSON.stringify(name)} is a directory`, { cause: e });
    throw e;
  }
}

/** `Dockerfile` in `dir`, else `dockerfile` when only that exists (buildx). */
async function defaultDockerfile(dir: string): Promise<string> {
  const upper = join(dir, 'Dockerfile');
  if (await stat(upper).catch(() => undefined)) return upper;
  const lower = join(dir, 'dockerfile');
  return (await stat(lower).catch(() => undefined)) ? lower : upper;
}

/** Opens the context and reads the Dockerfile; what it materializes goes into `scratch`. */
export async function openInputs(o: InputOptions, scratch: string): Promise<BuildInputs> {
  let contextDir = o.contextDir;
  let materialized = false;
  let text = o.dockerfileText;
  let contextName: string | undefined;
  if (o.contextSource && o.contextSource.kind !== 'dir') {
    const keep = o.buildArgs?.BUILDKIT_CONTEXT_KEEP_GIT_DIR;
    const p = await prepareContext(o.contextSource, {
      scratch,
      dockerfileGiven: o.dockerfile !== undefined || o.dockerfileText !== undefined || o.dockerfileInContext !== undefined,
      ...(keep !== undefined ? { keepGitDir: ['1', 't', 'true'].includes(keep.toLowerCase()) } : {}),
      commitTimes: o.sourceDateEpoch !== undefined,
      ...(o.sshAuthSock ? { sshAuthSock: o.sshAuthSock } : {}),
      ...(o.secrets?.length ? { secret: secretReader(o.secrets) } : {}),
      ...(o.task ? { task: o.task } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    contextDir = p.dir;
    materialized = p.dir !== undefined;
    contextName = p.name;
    if (p.dockerfileText !== undefined) text = p.dockerfileText;
  } else if (o.contextSource?.kind === 'dir') {
    contextDir = o.contextSource.path;
  }
  if (contextDir !== undefined && !materialized) await checkContextDir(contextDir);
  if (text !== undefined) return { contextDir, materialized, dockerfileText: text };
  if (o.dockerfile !== undefined) {
    return { contextDir, materialized, dockerfileText: await readDockerfile(o.dockerfile), dockerfileName: o.dockerfile, dockerfilePath: o.dockerfile };
  }
  if (contextDir === undefined) throw new InvalidArgumentError('no Dockerfile given');
  if (materialized) {
    // A path inside the context, confined to it (a symlink in a downloaded tree cannot lead out).
    const name = o.dockerfileInContext ?? 'Dockerfile';
    const path = o.dockerfileInContext !== undefined ? await resolveInRoot(contextDir, name) : await defaultDockerfile(contextDir);
    const shown = `${contextName ?? 'context'}: ${path.slice(contextDir.length + 1) || name}`;
    return { contextDir, materialized, dockerfileText: await readDockerfile(path, shown), dockerfileName: path.slice(contextDir.length + 1) || name };
  }
  const path = await defaultDockerfile(contextDir);
  return { contextDir, materialized, dockerfileText: await readDockerfile(path), dockerfileName: path, dockerfilePath: path };
}
