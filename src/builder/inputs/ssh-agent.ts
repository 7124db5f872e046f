/**
 * `build --ssh`: ssh agents a build forwards (buildx's `default|<id>[=<socket>|<key>[,<key>]]`),
 * served on a unix socket per use (a RUN --mount=type=ssh, a git fetch over ssh). As BuildKit's
 * sshprovider does it, an agent socket is reached through a read-only filter (listing keys and
 * signing pass, adding, removing and locking are refused) and key files are loaded into an agent
 * of our own that can only list and sign. Nothing of it is written to disk but the socket.
 */
import { openSync, closeSync } from 'node:fs';
import { chmod, chown, readFile, stat } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ImgbuildError, InvalidArgumentError } from '../../errors.js';
import { parsePrivateKey, sshString, type AgentKey } from './ssh-keys.js';

/** One `--ssh` value: the id and the socket or key files (none: $SSH_AUTH_SOCK). */
export interface SshSpec {
  id: string;
  paths: string[];
}

/** Parses `--ssh default`, `--ssh id=/path/sock`, `--ssh id=key1,key2` (buildx). */
export function parseSshFlag(s: string): SshSpec {
  const i = s.indexOf('=');
  const id = i < 0 ? s : s.slice(0, i);
  if (id === '') throw new InvalidArgumentError(`--ssh needs an id: ${JSON.stringify(s)}`);
  return { id, paths: i < 0 ? [] : s.slice(i + 1).split(',') };
}

const SSH_AGENT_FAILURE = 5;
const SSH_AGENTC_REQUEST_IDENTITIES = 11;
const SSH_AGENT_IDENTITIES_ANSWER = 12;
const SSH_AGENTC_SIGN_REQUEST = 13;
const SSH_AGENT_SIGN_RESPONSE = 14;
/** The largest message an agent takes (OpenSSH's AGENT_MAX_LEN). */
const MAX_MESSAGE = 256 * 1024;

function frame(payload: Buffer): Buffer {
  return sshString(payload);
}
const FAILURE = frame(Buffer.from([SSH_AGENT_FAILURE]));

/** Reads length-prefixed agent messages from a socket, one at a time. */
class MessageReader {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;
  constructor(sock: Socket) {
    sock.on('data', (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.wake();
    };
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', end);
  }
  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
  /** The next message's payload; undefined at the end or for a message too large. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      if (this.buf.length >= 4) {
        const n = this.buf.readUInt32BE(0);
        if (n === 0 || n > MAX_MESSAGE) return undefined;
        if (this.buf.length >= 4 + n) {
          const msg = this.buf.subarray(4, 4 + n);
          this.buf = this.buf.subarray(4 + n);
          return msg;
        }
      }
      if (this.ended) return undefined;
      await new Promise<void>((r) => (this.waiting = r));
    }
  }
}

/** Answers a request with keys of our own: list and sign only. */
function answer(keys: AgentKey[], msg: Buffer): Buffer {
  if (msg[0] === SSH_AGENTC_REQUEST_IDENTITIES) {
    const n = Buffer.alloc(4);
    n.writeUInt32BE(keys.length);
    return frame(Buffer.concat([Buffer.from([SSH_AGENT_IDENTITIES_ANSWER]), n, ...keys.flatMap((k) => [sshString(k.blob), sshString(k.comment)])]));
  }
  if (msg[0] === SSH_AGENTC_SIGN_REQUEST) {
    try {
      let pos = 1;
      const str = (): Buffer => {
        const len = msg.readUInt32BE(pos);
        const v = msg.subarray(pos + 4, pos + 4 + len);
        if (v.length !== len) throw new Error('truncated');
        pos += 4 + len;
        return v;
      };
      const blob = str();
      const data = str();
      const flags = pos + 4 <= msg.length ? msg.readUInt32BE(pos) : 0;
      const key = keys.find((k) => k.blob.equals(blob));
      if (!key) return FAILURE;
      return frame(Buffer.concat([Buffer.from([SSH_AGENT_SIGN_RESPONSE]), sshString(key.sign(data, flags))]));
    } catch {
      return FAILURE;
    }
  }
  return FAILURE;
}

/** Serves one client with our keys. */
async function serveKeys(client: Socket, keys: AgentKey[]): Promise<void> {
  const r = new MessageReader(client);
  for (let msg = await r.next(); msg; msg = await r.next()) client.write(answer(keys, msg));
  client.end();
}

/** Serves one client through the agent at `upstream`, passing only list and sign requests. */
async function serveProxy(client: Socket, upstream: string): Promise<void> {
  const up = createConnection(upstream);
  up.on('error', () => client.destroy());
  client.on('close', () => up.destroy());
  const fromClient = new MessageReader(client);
  const fromAgent = new MessageReader(up);
  for (let msg = await fromClient.next(); msg; msg = await fromClient.next()) {
    if (msg[0] !== SSH_AGENTC_REQUEST_IDENTITIES && msg[0] !== SSH_AGENTC_SIGN_REQUEST) {
      client.write(FAILURE);
      continue;
    }
    up.write(frame(msg));
    const reply = await fromAgent.next();
    if (!reply) break;
    client.write(frame(reply));
  }
  client.end();
  up.end();
}

type Source = { kind: 'socket'; path: string } | { kind: 'keys'; keys: AgentKey[] };

/** A socket served for one use; close() stops it (the socket file goes with the caller's dir). */
export interface ServedAgent {
  path: string;
  close(): Promise<void>;
}

export class SshForwards {
  /** Served sockets and their clients (ended with the socket). */
  private readonly servers = new Map<Server, Set<Socket>>();

  private constructor(private readonly sources: Map<string, Source>) {}

  /**
   * Checks and loads the `--ssh` values (key files parsed now: a bad one fails the build before
   * it starts). `env` gives SSH_AUTH_SOCK for an id without paths.
   */
  static async open(specs: SshSpec[], env: NodeJS.ProcessEnv): Promise<SshForwards> {
    const sources = new Map<string, Source>();
    for (const spec of specs) {
      const paths = spec.paths.filter((p) => p !== '');
      if (paths.length === 0) {
        const sock = env.SSH_AUTH_SOCK;
        if (!sock) throw new InvalidArgumentError(`--ssh ${spec.id}: invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set`);
        paths.push(sock);
      }
      let socket: string | undefined;
      const keys: AgentKey[] = [];
      for (const p of paths) {
        const st = await stat(p).catch((e: NodeJS.ErrnoException) => {
          throw new ImgbuildError(e.code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT', `--ssh ${spec.id}: ${p}: ${e.code === 'ENOENT' ? 'no such file or socket' : e.message}`, { cause: e });
        });
        if (socket !== undefined || (st.isSocket() && keys.length)) throw new InvalidArgumentError(`--ssh ${spec.id}: invalid combination of keys and sockets`);
        if (st.isSocket()) {
          socket = p;
          continue;
        }
        // Listed without comment, as BuildKit's keyring lists the keys it loads.
        keys.push({ ...parsePrivateKey(await readFile(p, 'utf8'), `--ssh ${spec.id}: ${p}`), comment: '' });
      }
      // A later value for the same id wins (buildx removes duplicates so).
      sources.set(spec.id, socket !== undefined ? { kind: 'socket', path: socket } : { kind: 'keys', keys });
    }
    return new SshForwards(sources);
  }

  has(id: string): boolean {
    return this.sources.has(id);
  }

  /** The agent socket of `id` usable on the host as is (an agent socket given), else undefined. */
  hostSocket(id: string): string | undefined {
    const s = this.sources.get(id);
    return s?.kind === 'socket' ? s.path : undefined;
  }

  /**
   * Serves agent `id` on a new socket `<dir>/<name>` owned by uid:gid with `mode` (BuildKit's
   * socket options). The socket is bound through /proc/self/fd so that no length limit of a
   * socket path applies to `dir`.
   */
  async serve(id: string, dir: string, name: string, o: { uid?: number; gid?: number; mode?: number } = {}): Promise<ServedAgent> {
    const src = this.sources.get(id);
    if (!src) throw new ImgbuildError('NOT_FOUND', `no SSH key ${JSON.stringify(id)} forwarded from the client (use --ssh ${id}=...)`);
    const clients = new Set<Socket>();
    const server = createServer((client) => {
      clients.add(client);
      client.on('close', () => clients.delete(client));
      client.on('error', () => {});
      const done = src.kind === 'keys' ? serveKeys(client, src.keys) : serveProxy(client, src.path);
      done.catch(() => client.destroy());
    });
    const fd = openSync(dir, 'r');
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(`/proc/self/fd/${fd}/${name}`, () => resolve());
      });
    } finally {
      closeSync(fd);
    }
    this.servers.set(server, clients);
    const path = join(dir, name);
    await chown(path, o.uid ?? 0, o.gid ?? 0);
    await chmod(path, (o.mode ?? 0o600) & 0o777);
    return {
      path,
      close: () => this.stop(server),
    };
  }

  private stop(server: Server): Promise<void> {
    const clients = this.servers.get(server);
    this.servers.delete(server);
    return new Promise((r) => {
      server.close(() => r());
      for (const c of clients ?? []) c.destroy();
    });
  }

  /** Stops every socket still served. */
  async close(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((s) => this.stop(s)));
  }
}
