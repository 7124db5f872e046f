/**
 * What the battery's runners share: writing a case's context, the HTTP server ADD URL cases
 * download from, and checking a built rootfs (a directory on the host) and image config
 * against a case's expectations.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lstat, mkdir, readFile, readlink, symlink, writeFile, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ImageConfig } from '../../../src/image/types.js';
import type { Case, ConfigExpect, ContextEntry, EntryKind, FileExpect } from './types.js';
import { HTTP_FILES } from './cases/http.js';

/** Writes `files` into `dir` (created). Sockets are bound by python3, which leaves the file behind. */
export async function writeEntries(dir: string, files: Record<string, ContextEntry>): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Directories first, so a file's explicit parent keeps the mode the case gives it.
  const entries = Object.entries(files).sort(([a], [b]) => a.localeCompare(b));
  for (const [p, e] of entries) {
    const host = join(dir, p);
    await mkdir(dirname(host), { recursive: true });
    if (typeof e === 'string') {
      await writeFile(host, e);
      await chmod(host, 0o644);
    } else if ('content' in e) {
      await writeFile(host, e.content);
      await chmod(host, e.mode ?? 0o644);
    } else if ('dir' in e) {
      await mkdir(host, { recursive: true });
    } else if ('symlink' in e) {
      await symlink(e.symlink, host);
    } else if ('socket' in e) {
      const r = spawnSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', host]);
      if (r.status !== 0) throw new Error(`cannot make socket ${host}: ${r.stderr}`);
    } else {
      await writeFile(host, await e.bytes());
      await chmod(host, e.mode ?? 0o644);
    }
  }
  // Directory modes last: writing into a 0500 dir would fail.
  for (const [p, e] of entries.reverse()) {
    if (typeof e !== 'string' && 'dir' in e) await chmod(join(dir, p), e.mode ?? 0o755);
  }
}

/** The case's Dockerfile with `{{http}}` filled in. */
export function dockerfileOf(text: string, httpBase: string): string {
  return text.replaceAll('{{http}}', httpBase);
}

/** Writes a case's context (Dockerfile included) into `dir`; returns the Dockerfile's path. */
export async function writeCaseContext(dir: string, c: { dockerfile: string; dockerfileName?: string; files?: Record<string, ContextEntry> }, httpBase: string): Promise<string> {
  await writeEntries(dir, c.files ?? {});
  const df = join(dir, c.dockerfileName ?? 'Dockerfile');
  await writeFile(df, dockerfileOf(c.dockerfile, httpBase));
  return df;
}

/** Serves HTTP_FILES on 127.0.0.1 (a fixed Last-Modified so downloads have a known mtime). */
export async function startHttp(): Promise<{ base: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const f = HTTP_FILES[req.url ?? ''];
    if (!f) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = typeof f === 'string' ? Buffer.from(f) : f;
    res.writeHead(200, { 'content-length': body.length, 'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

function kindOf(st: import('node:fs').Stats): EntryKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isSocket()) return 'socket';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  return 'block';
}

async function checkFile(root: string, path: string, want: FileExpect): Promise<string[]> {
  const host = join(root, path);
  const st = await lstat(host).catch(() => undefined);
  if (!st) return [`${path}: missing`];
  const out: string[] = [];
  const kind = kindOf(st);
  const wantKind = want.type ?? (want.content !== undefined || want.contains !== undefined || want.lacks !== undefined ? 'file' : want.link !== undefined ? 'symlink' : undefined);
  if (wantKind && kind !== wantKind) return [`${path}: is a ${kind}, expected a ${wantKind}`];
  if (want.content !== undefined || want.contains !== undefined || want.lacks !== undefined) {
    const text = (await readFile(host)).toString('utf8');
    if (want.lacks !== undefined && text.includes(want.lacks)) out.push(`${path}: content ${JSON.stringify(text.slice(0, 200))} has ${JSON.stringify(want.lacks)}`);
    if (want.content !== undefined && text !== want.content) out.push(`${path}: content ${JSON.stringify(text.slice(0, 200))}, expected ${JSON.stringify(want.content)}`);
    if (want.contains !== undefined && !text.includes(want.contains)) out.push(`${path}: content ${JSON.stringify(text.slice(0, 200))} lacks ${JSON.stringify(want.contains)}`);
  }
  if (want.mode !== undefined && (st.mode & 0o7777) !== want.mode) out.push(`${path}: mode ${(st.mode & 0o7777).toString(8)}, expected ${want.mode.toString(8)}`);
  if (want.owner !== undefined && `${st.uid}:${st.gid}` !== want.owner) out.push(`${path}: owner ${st.uid}:${st.gid}, expected ${want.owner}`);
  if (want.link !== undefined) {
    const t = await readlink(host);
    if (t !== want.link) out.push(`${path}: link target ${t}, expected ${want.link}`);
  }
  return out;
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

function checkConfig(config: ImageConfig, want: ConfigExpect): string[] {
  const c = (config.config ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  for (const [k, v] of Object.entries(want)) {
    if (k === 'env' || k === 'envLacks') continue;
    const got = c[k];
    if (v === null) {
      if (!isEmpty(got)) out.push(`config.${k}: ${JSON.stringify(got)}, expected none`);
    } else if (JSON.stringify(sortKeys(got)) !== JSON.stringify(sortKeys(v))) {
      out.push(`config.${k}: ${JSON.stringify(got)}, expected ${JSON.stringify(v)}`);
    }
  }
  const env = (c.Env as string[] | undefined) ?? [];
  for (const e of want.env ?? []) if (!env.includes(e)) out.push(`config.Env ${JSON.stringify(env)} lacks ${e}`);
  for (const n of want.envLacks ?? []) if (env.some((e) => e.startsWith(`${n}=`))) out.push(`config.Env ${JSON.stringify(env)} has ${n}`);
  return out;
}

/** Every way the built rootfs at `root` and `config` differ from what the case expects. */
export async function verify(c: Case, root: string, config: ImageConfig): Promise<string[]> {
  const out: string[] = [];
  for (const [p, w] of Object.entries(c.expect.files ?? {})) out.push(...(await checkFile(root, p, typeof w === 'string' ? { content: w } : w)));
  for (const p of c.expect.absent ?? []) {
    if (await lstat(join(root, p)).catch(() => undefined)) out.push(`${p}: exists, expected absent`);
  }
  if (c.expect.config) out.push(...checkConfig(config, c.expect.config));
  if (c.expect.history) {
    const all = config.history ?? [];
    const tail = all.slice(Math.max(0, all.length - c.expect.history.length));
    c.expect.history.forEach((w, i) => {
      const h = tail[i];
      if (!h || !w.createdBy.test(h.created_by ?? '')) out.push(`history[-${c.expect.history!.length - i}]: ${JSON.stringify(h?.created_by)} does not match ${w.createdBy}`);
      else if (w.empty !== undefined && (h.empty_layer ?? false) !== w.empty) out.push(`history[-${c.expect.history!.length - i}]: empty_layer ${h.empty_layer ?? false}, expected ${w.empty}`);
    });
  }
  if (c.expect.layers !== undefined) {
    const n = config.rootfs?.diff_ids?.length ?? 0;
    if (n !== c.expect.layers) out.push(`layers: ${n}, expected ${c.expect.layers}`);
  }
  return out;
}

/** The outcome of one case against one builder: passed, or why not. */
export interface Outcome {
  ok: boolean;
  problems: string[];
}

/** Judges a build that failed with `message` (or succeeded, when undefined) against an error case. */
export function judgeError(c: Case, message: string | undefined): Outcome {
  const re = c.expect.error;
  if (!re) return message === undefined ? { ok: true, problems: [] } : { ok: false, problems: [`build failed: ${message}`] };
  if (message === undefined) return { ok: false, problems: [`build succeeded, expected an error matching ${re}`] };
  return re.test(message) ? { ok: true, problems: [] } : { ok: false, problems: [`error ${JSON.stringify(message.slice(0, 400))} does not match ${re}`] };
}
