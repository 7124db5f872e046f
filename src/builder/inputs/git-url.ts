/**
 * Git references as BuildKit reads them (dfgitutil.ParseGitRef, gitutil.ParseURL): a URL with
 * the http, https, ssh or git scheme (http and https only when the path ends in `.git`), an
 * scp-like `user@host:path`, or the deprecated `github.com/...`; a fragment `#ref:subdir` and
 * query keys (`ref`, `tag`, `branch`, `subdir`, `checksum`/`commit`, `keep-git-dir`,
 * `submodules`, `mtime`) refine it. Pure parsing, no I/O.
 */
import { posix } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';

export interface GitRef {
  /** The remote as git is given it: the URL without fragment and query. */
  remote: string;
  scheme: 'http' | 'https' | 'ssh' | 'git';
  /** A branch, tag, full ref or commit; empty for the remote's default branch. */
  ref: string;
  /** A directory inside the repository (clean, relative, no leading slash); empty for the root. */
  subdir: string;
  /** The commit (a hex prefix of it) the ref must resolve to. */
  checksum?: string;
  keepGitDir?: boolean;
  submodules?: boolean;
  mtime?: 'checkout' | 'commit';
  /** `github.com/...` without a scheme: a build context only, never an ADD source. */
  indistinguishableFromLocal: boolean;
}

const SCHEMES = new Set(['http', 'https', 'ssh', 'git']);
const PROTO = /^([a-zA-Z0-9]+):\/\//;
const SCP = /^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$/;

/** A `#ref:subdir` fragment: the subdir made clean and relative. */
function splitFragment(fragment: string): { ref: string; subdir: string } {
  const i = fragment.indexOf(':');
  const ref = i < 0 ? fragment : fragment.slice(0, i);
  const sub = i < 0 ? '' : fragment.slice(i + 1);
  return { ref, subdir: posix.resolve('/', sub).slice(1) };
}

function parseBool(key: string, v: string): boolean {
  if (v === '') return true;
  const l = v.toLowerCase();
  if (['1', 't', 'true'].includes(l)) return true;
  if (['0', 'f', 'false'].includes(l)) return false;
  throw new InvalidArgumentError(`invalid ${key} value: ${JSON.stringify(v)}`);
}

/** Applies the query keys BuildKit knows (an unknown or repeated key is an error, as there). */
function applyQuery(g: GitRef, query: URLSearchParams): void {
  let tag = '';
  let branch = '';
  const seen = new Set<string>();
  for (const [k, v] of query) {
    if (seen.has(k)) throw new InvalidArgumentError(`git URL query ${JSON.stringify(k)} has multiple values`);
    seen.add(k);
    if (v === '' && !['submodules', 'keep-git-dir', 'fetch-by-commit'].includes(k)) throw new InvalidArgumentError(`git URL query ${JSON.stringify(k)} has no value`);
    switch (k) {
      case 'ref':
        if (g.ref !== '' && g.ref !== v) throw new InvalidArgumentError(`git URL ref conflicts: ${JSON.stringify(g.ref)} vs ${JSON.stringify(v)}`);
        g.ref = v;
        break;
      case 'tag':
        tag = v;
        break;
      case 'branch':
        branch = v;
        break;
      case 'subdir':
        if (g.subdir !== '' && g.subdir !== v) throw new InvalidArgumentError(`git URL subdir conflicts: ${JSON.stringify(g.subdir)} vs ${JSON.stringify(v)}`);
        g.subdir = posix.resolve('/', v).slice(1);
        break;
      case 'checksum':
      case 'commit':
        g.checksum = v;
        break;
      case 'keep-git-dir':
        g.keepGitDir = parseBool(k, v);
        break;
      case 'submodules':
        g.submodules = parseBool(k, v);
        break;
      case 'mtime':
        if (v !== 'checkout' && v !== 'commit') throw new InvalidArgumentError(`invalid mtime value: ${JSON.stringify(v)} (must be "checkout" or "commit")`);
        g.mtime = v;
        break;
      case 'fetch-by-commit':
        parseBool(k, v); // every commit is fetched by its id here when the ref is one
        break;
      default:
        throw new InvalidArgumentError(`unexpected git URL query ${JSON.stringify(k)}`);
    }
  }
  const setRef = (full: string): void => {
    if (g.ref !== '' && g.ref !== full) throw new InvalidArgumentError(`git URL ref conflicts: ${JSON.stringify(g.ref)} vs ${JSON.stringify(full)}`);
    g.ref = full;
  };
  if (tag !== '') setRef(tag.startsWith('refs/tags/') ? tag : `refs/tags/${tag}`);
  if (branch !== '') {
    if (tag !== '') throw new InvalidArgumentError('git URL branch conflicts with tag');
    setRef(branch.startsWith('refs/heads/') ? branch : `refs/heads/${branch}`);
  }
}

/**
 * Parses `s` as a git reference: undefined when it is not one (a local path, an http URL not
 * ending in `.git`, another scheme), an InvalidArgumentError when it is one but malformed.
 */
export function parseGitRef(s: string): GitRef | undefined {
  if (s.startsWith('./') || s.startsWith('../')) return undefined;
  let g: GitRef;
  let query: URLSearchParams | undefined;
  if (s.startsWith('github.com/')) {
    const u = new URL(`https://${s}`);
    g = { remote: `https://github.com${u.pathname}`, scheme: 'https', ...splitFragment(decodeURIComponent(u.hash.slice(1))), indistinguishableFromLocal: true };
    query = u.searchParams;
  } else {
    const proto = PROTO.exec(s);
    if (proto) {
      const scheme = proto[1]!.toLowerCase();
      if (!SCHEMES.has(scheme)) return undefined;
      let u: URL;
      try {
        u = new URL(s);
      } catch (e) {
        throw new InvalidArgumentError(`invalid git URL ${JSON.stringify(s)}`, { cause: e });
      }
      if ((scheme === 'http' || scheme === 'https') && !u.pathname.endsWith('.git')) return undefined;
      const fragment = decodeURIComponent(u.hash.slice(1));
      query = new URLSearchParams(u.search);
      u.hash = '';
      u.search = '';
      g = { remote: u.toString(), scheme: scheme as GitRef['scheme'], ...splitFragment(fragment), indistinguishableFromLocal: false };
    } else {
      const m = SCP.exec(s);
      if (!m) return undefined;
      g = { remote: `${m[1]}@${m[2]}:${m[3]}`, scheme: 'ssh', ...splitFragment(m[5] ?? ''), indistinguishableFromLocal: false };
      if (m[4]) query = new URLSearchParams(m[4]);
    }
  }
  if (query) applyQuery(g, query);
  return g;
}

/** True for a full commit id (sha1 or sha256 object format). */
export function isCommitId(ref: string): boolean {
  return /^[0-9a-f]{40}$/.test(ref) || /^[0-9a-f]{64}$/.test(ref);
}

/** The remote with any password replaced, for messages and a kept `.git`'s origin. */
export function redactRemote(remote: string): string {
  try {
    const u = new URL(remote);
    if (u.password) {
      u.password = 'xxxxx';
      return u.toString();
    }
  } catch {
    // scp-like: no password there
  }
  return remote;
}

/** An `http://` or `https://` URL (a remote context or an ADD download when it is no git ref). */
export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}
