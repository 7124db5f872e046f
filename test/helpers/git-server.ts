/**
 * A git server on 127.0.0.1 for tests: git's own `git http-backend` (smart http, protocol v2)
 * behind a small node http server, serving the bare repositories under `<dir>/`, and helpers to
 * make repositories with commits, branches and tags.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import type { AddressInfo } from 'node:net';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com',
  GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent',
};

/** Runs git in `cwd`; returns its trimmed stdout, throws with its stderr. */
export function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

export interface GitServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Where the bare repositories live (`<name>.git`). */
  dir: string;
  /** Requests served so far (method and path). */
  requests: string[];
  /** Repositories (`name.git`) whose requests are held unanswered until the server closes. */
  stall: Set<string>;
  /** Repositories (`name.git`) answered only with this Authorization header (else 401). */
  auth: Map<string, string>;
  close(): Promise<void>;
}

/** Serves `dir`'s bare repositories with git http-backend. */
export async function startGitServer(dir: string): Promise<GitServer> {
  const requests: string[] = [];
  const stall = new Set<string>();
  const auth = new Map<string, string>();
  const held = new Set<import('node:http').ServerResponse>();
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${u.pathname}`);
    if ([...stall].some((r) => u.pathname.startsWith(`/${r}/`))) {
      held.add(res);
      return;
    }
    const wanted = [...auth].find(([r]) => u.pathname.startsWith(`/${r}/`))?.[1];
    if (wanted !== undefined && req.headers.authorization !== wanted) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: dir,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(u.pathname),
      QUERY_STRING: u.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
    };
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headerDone = false;
    cgi.stdout.on('data', (b: Buffer) => {
      if (headerDone) {
        res.write(b);
        return;
      }
      head = Buffer.concat([head, b]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headerDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else res.setHeader(k, v);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    requests,
    stall,
    auth,
    close: () => new Promise<void>((r) => {
      for (const res of held) res.destroy();
      server.close(() => r());
    }),
  };
}

/**
 * Makes `<server dir>/<name>.git` from commits: each commit is a map of path → content (a
 * content of null removes the path), optionally tagged or on a branch. Returns the commit ids.
 */
export function makeRepo(serverDir: string, name: string, commits: { files: Record<string, string | null>; tag?: string; annotatedTag?: string; branch?: string; mode?: Record<string, number> }[]): string[] {
  const work = mkdtempSync(join(serverDir, `.work-${name}-`));
  try {
    git(work, 'init', '-q', '-b', 'main');
    const ids: string[] = [];
    for (const c of commits) {
      if (c.branch) git(work, 'checkout', '-q', '-B', c.branch);
      for (const [p, content] of Object.entries(c.files)) {
        const f = join(work, p);
        if (content === null) {
          git(work, 'rm', '-q', '-r', p);
          continue;
        }
        mkdirSync(dirname(f), { recursive: true });
        writeFileSync(f, content, { mode: c.mode?.[p] ?? 0o644 });
        git(work, 'add', p);
      }
      git(work, 'commit', '-q', '--allow-empty', '-m', `commit ${ids.length}`);
      const id = git(work, 'rev-parse', 'HEAD');
      if (c.tag) git(work, 'tag', c.tag);
      if (c.annotatedTag) git(work, 'tag', '-a', '-m', c.annotatedTag, c.annotatedTag);
      ids.push(id);
    }
    git(work, 'checkout', '-q', 'main');
    const bare = join(serverDir, `${name}.git`);
    rmSync(bare, { recursive: true, force: true });
    git(serverDir, 'clone', '-q', '--bare', work, bare);
    return ids;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
