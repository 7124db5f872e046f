/**
 * Git sources (a git build context, `ADD <git ref>`, a named context) fetched with the host's
 * `git`, as BuildKit's git source does: the ref is resolved to a commit with `ls-remote` first
 * (that commit is what caches key on), then only that commit is fetched (shallow) and checked
 * out, submodules included. Without `keepGitDir` the checkout has no `.git`; with it (and no
 * subdir) the `.git` holds the fetched ref, its origin URL without password, and no reflog.
 *
 * git runs with the user's environment and configuration (credentials, ssh keys and
 * known_hosts), never prompting; an ssh agent forwarded with `--ssh default` is the one it uses.
 */
import { spawn } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, rename, rm, lutimes } from 'node:fs/promises';
import { join } from 'node:path';
import { ImgbuildError } from '../../errors.js';
import { isCommitId, redactRemote, type GitRef } from './git-url.js';

/** What a git source resolved to, before anything is fetched. */
export interface ResolvedGit {
  /** The commit checked out. */
  commit: string;
  /** The full ref it was found under (`refs/heads/main`, `refs/tags/v1`); the commit itself for a commit id. */
  ref: string;
  /** The annotated tag object when the ref names one. */
  tagObject?: string;
}

export interface GitOptions {
  /** A dir of the caller's for git's own files (removed by the caller). */
  scratch: string;
  /** The Authorization header for an http(s) remote (from the GIT_AUTH_* secrets: gitAuthHeader). */
  authHeader?: string;
  /** SSH_AUTH_SOCK for ssh remotes (the `--ssh default` agent), else the environment's. */
  sshAuthSock?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export class GitError extends ImgbuildError {
  constructor(code: 'UNAVAILABLE' | 'NOT_FOUND' | 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'GitError';
  }
}

/**
 * git's reason in a line: its first `fatal:`/`error:` line with the line before it (often the
 * cause: ssh's `Permission denied`, a curl error), else its last lines.
 */
function gitFailure(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('hint:') && !/^@+$/.test(l));
  const i = lines.findIndex((l) => /^(fatal|error): /.test(l));
  const picked = i < 0 ? lines.slice(-2) : [...(i > 0 && !/^(fatal|error|warning): /.test(lines[i - 1]!) ? [lines[i - 1]!] : []), lines[i]!];
  return picked.map((l) => l.replace(/^(fatal|error): /, '')).join('; ');
}

/** The git command of an argument list (past `-c k=v` and `--git-dir=` options). */
function subcommand(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-c') i++;
    else if (!args[i]!.startsWith('-')) return args[i]!;
  }
  return '';
}

/** Runs git (with umask 022, as a checkout by a daemon would be) and returns its stdout. */
function git(args: string[], o: GitOptions & { cwd?: string; what: string; remote?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...(o.env ?? process.env), GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' };
    if (o.sshAuthSock) env.SSH_AUTH_SOCK = o.sshAuthSock;
    if (o.authHeader && o.remote) {
      // Through the environment, not the arguments, where any user could read it (ps).
      const n = Number(env.GIT_CONFIG_COUNT ?? 0) || 0;
      env.GIT_CONFIG_COUNT = String(n + 1);
      env[`GIT_CONFIG_KEY_${n}`] = `http.${tokenScope(o.remote)}.extraheader`;
      env[`GIT_CONFIG_VALUE_${n}`] = `Authorization: ${o.authHeader}`;
    }
    // No hooks or local config of a repository from the network ever run: git runs in dirs it made.
    const child = spawn('sh', ['-c', 'umask 022 && exec git "$@"', 'git', ...args], {
      cwd: o.cwd ?? o.scratch,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (err.length < 8192) err += d;
    });
    child.on('error', (e) => {
      if (o.signal?.aborted) return reject(e);
      reject(new GitError('UNAVAILABLE', `${o.what}: cannot run git: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      if (o.signal?.aborted) return reject(new ImgbuildError('ABORTED', 'operation aborted'));
      if (code === 127) return reject(new GitError('NOT_FOUND', `${o.what}: git is not installed (it fetches git sources)`));
      if (code !== 0) {
        const why = gitFailure(err);
        return reject(new GitError('UNAVAILABLE', `${o.what}: git ${subcommand(args)} failed: ${why || `exit status ${code}`}`));
      }
      resolve(Buffer.concat(out).toString('utf8'));
    });
  });
}

/**
 * A token reaches the remote itself, and every github.com repository for a github.com remote
 * (BuildKit's tokenScope, as actions/checkout does).
 */
function tokenScope(remote: string): string {
  for (const p of ['https://github.com/', 'https://www.github.com/']) if (remote.startsWith(p)) return p;
  return remote;
}

/**
 * The Authorization header BuildKit sends an http(s) remote from the build's secrets:
 * `GIT_AUTH_HEADER.<host>`, `GIT_AUTH_TOKEN.<host>`, `GIT_AUTH_HEADER`, `GIT_AUTH_TOKEN`, the first
 * given; a token as `basic base64(x-access-token:TOKEN)`, a header as it is.
 */
export async function gitAuthHeader(remote: string, secret: (id: string) => Promise<Buffer | undefined>): Promise<string | undefined> {
  let host: string;
  try {
    const u = new URL(remote);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    host = u.host;
  } catch {
    return undefined;
  }
  for (const [name, token] of [[`GIT_AUTH_HEADER.${host}`, false], [`GIT_AUTH_TOKEN.${host}`, true], ['GIT_AUTH_HEADER', false], ['GIT_AUTH_TOKEN', true]] as const) {
    const v = await secret(name);
    if (v === undefined) continue;
    return token ? `basic ${Buffer.from(`x-access-token:${v.toString('utf8')}`).toString('base64')}` : v.toString('utf8');
  }
  return undefined;
}

/** The remote's default branch (`ls-remote --symref HEAD`), as a full ref. */
async function defaultBranch(g: GitRef, o: GitOptions, what: string): Promise<string> {
  const out = await git(['ls-remote', '--symref', '--', g.remote, 'HEAD'], { ...o, what, remote: g.remote });
  for (const line of out.split('\n')) {
    const m = /^ref: (\S+)\tHEAD$/.exec(line);
    if (m) return m[1]!;
  }
  throw new GitError('NOT_FOUND', `${what}: the repository names no default branch (give a ref)`);
}

/**
 * Resolves the ref to a commit as BuildKit does: a branch wins over a tag of the same name, an
 * annotated tag resolves to its commit, and `checksum` must be a prefix of the commit (or of the
 * tag object).
 */
export async function resolveGit(g: GitRef, o: GitOptions): Promise<ResolvedGit> {
  const what = `git source ${redactRemote(g.remote)}`;
  if (g.checksum !== undefined && !/^[0-9a-fA-F]+$/.test(g.checksum)) throw new GitError('INVALID_ARGUMENT', `invalid checksum ${g.checksum} for Git URL, expected hex commit hash`);
  const check = (commit: string, tag?: string): void => {
    if (g.checksum === undefined) return;
    const c = g.checksum.toLowerCase();
    if (!commit.startsWith(c) && !(tag?.startsWith(c) ?? false)) {
      throw new GitError('FAILED_PRECONDITION', `${what}: expected checksum to match ${g.checksum}, got ${commit}${tag ? ` or ${tag}` : ''}`);
    }
  };
  if (isCommitId(g.ref)) {
    check(g.ref);
    return { commit: g.ref, ref: g.ref };
  }
  const ref = g.ref === '' ? await defaultBranch(g, o, what) : g.ref;
  const out = await git(['ls-remote', '--', g.remote, ref, `${ref}^{}`], { ...o, what, remote: g.remote });
  const bare = ref.replace(/^refs\//, '');
  const partial = `refs/${bare}`;
  const head = `refs/heads/${ref.replace(/^refs\/heads\//, '')}`;
  const tagRef = `refs/tags/${ref.replace(/^refs\/tags\//, '')}`;
  let sha = '';
  let used = '';
  let headSha = '';
  let tagSha = '';
  let peeled = '';
  for (const line of out.split('\n')) {
    const [s, r] = line.split('\t');
    if (!s || !r) continue;
    if (r === head) headSha = s;
    else if (r === tagRef) tagSha = s;
    else if (r === `${tagRef}^{}`) peeled = s;
    else if (r === partial) {
      sha = s;
      used = r;
    }
  }
  if (!sha && headSha) {
    sha = headSha;
    used = head;
  }
  if (sha) peeled = '';
  if (!sha && tagSha) {
    sha = tagSha;
    used = tagRef;
  }
  if (!sha) throw new GitError('NOT_FOUND', `${what}: the repository does not contain ref ${ref}`);
  if (!isCommitId(sha)) throw new GitError('UNAVAILABLE', `${what}: invalid commit id ${JSON.stringify(sha)} from the remote`);
  if (peeled) {
    check(peeled, sha);
    return { commit: peeled, ref: used, tagObject: sha };
  }
  check(sha);
  return { commit: sha, ref: used };
}

/** Walks `rel` inside `root` refusing anything but real directories (no symlink leaves the tree). */
async function checkDirsOnly(root: string, rel: string, what: string): Promise<void> {
  let cur = root;
  for (const part of rel.split('/')) {
    cur = join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (!st) throw new GitError('NOT_FOUND', `${what}: subdir ${JSON.stringify(rel)} does not exist in the repository`);
    if (!st.isDirectory()) throw new GitError('INVALID_ARGUMENT', `${what}: subdir ${JSON.stringify(rel)} is not a directory in the repository`);
  }
}

/** Sets the mtime of everything under `dir` (symlinks themselves, not their targets). */
async function setTimes(dir: string, seconds: number): Promise<void> {
  for (const n of await readdir(dir)) {
    const p = join(dir, n);
    const st = await lstat(p);
    if (st.isDirectory()) await setTimes(p, seconds);
    await lutimes(p, seconds, seconds);
  }
  await lutimes(dir, seconds, seconds);
}

/**
 * Fetches the resolved commit and checks it out into `dest` (an empty or missing dir): the
 * subdir's contents when one is given, `.git` kept only when asked and the whole tree is taken.
 */
export async function checkoutGit(g: GitRef, r: ResolvedGit, dest: string, o: GitOptions & { keepGitDir: boolean }): Promise<void> {
  const what = `git source ${redactRemote(g.remote)}`;
  const keep = o.keepGitDir && g.subdir === '';
  await mkdir(dest, { recursive: true });
  const work = g.subdir === '' ? dest : join(o.scratch, 'tree');
  const gitDir = keep ? join(dest, '.git') : join(o.scratch, 'repo.git');
  const run = (args: string[]): Promise<string> => git([`--git-dir=${gitDir}`, `--work-tree=${work}`, ...args], { ...o, what, cwd: work, remote: g.remote });
  await mkdir(work, { recursive: true });
  await git(['-c', 'init.defaultBranch=master', 'init', '-q', ...(keep ? [] : ['--bare']), ...(r.commit.length === 64 ? ['--object-format=sha256'] : []), keep ? dest : gitDir], { ...o, what });
  await run(['remote', 'add', 'origin', g.remote]);
  // A named ref is fetched under its own name (a kept .git then has it); a commit id by itself.
  const spec = r.ref === r.commit ? r.commit : `+${r.ref}:${r.ref}`;
  try {
    await run(['fetch', '-q', '--depth=1', '--no-tags', 'origin', spec]);
  } catch (e) {
    if (r.ref !== r.commit) throw e;
    // A server that refuses a commit it does not advertise: fetch its branches and tags instead.
    await run(['fetch', '-q', '--no-tags', 'origin', '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*']);
  }
  await run(['cat-file', '-e', `${r.commit}^{commit}`]).catch((e: unknown) => {
    throw new GitError('NOT_FOUND', `${what}: commit ${r.commit} is not in the repository`, { cause: e });
  });
  if (keep) {
    await run(['-c', 'advice.detachedHead=false', 'checkout', '-q', r.commit]);
    await run(['remote', 'set-url', 'origin', redactRemote(g.remote)]);
    await run(['reflog', 'expire', '--all', '--expire=now']);
    await rm(join(gitDir, 'FETCH_HEAD'), { force: true });
  } else {
    await run(['checkout', '-q', '--no-overlay', r.commit, '--', '.']);
  }
  if (g.submodules !== false && (await lstat(join(work, '.gitmodules')).catch(() => undefined))) {
    await run(['submodule', 'update', '--init', '--recursive', '--depth=1']);
  }
  if (g.subdir !== '') {
    await checkDirsOnly(work, g.subdir, what);
    const from = join(work, g.subdir);
    for (const n of await readdir(from)) await rename(join(from, n), join(dest, n));
  }
  if (g.mtime === 'commit') {
    const t = Number((await run(['log', '-1', '--format=%ct', r.commit])).trim());
    await setTimes(dest, t);
  }
  if (!keep) await rm(join(dest, '.git'), { recursive: true, force: true });
}

/**
 * Reads a build's `--secret`s by id (a file, an environment variable, or the variable named like
 * the id, as RUN --mount=type=secret reads them): undefined for an id not given.
 */
export function secretReader(list: Iterable<{ id: string; src?: string; env?: string }>): (id: string) => Promise<Buffer | undefined> {
  const byId = new Map([...list].map((s) => [s.id, s]));
  return async (id) => {
    const s = byId.get(id);
    if (!s) return undefined;
    if (s.src) return readFile(s.src);
    return Buffer.from(process.env[s.env ?? s.id] ?? '');
  };
}
