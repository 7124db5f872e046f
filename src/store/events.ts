/**
 * The event journal: what happened to containers, images, volumes and the build cache, for
 * `imgbuild events`. With no daemon to ask, every imgbuild process appends its own events to one
 * file under the store root, and `events` reads (and follows) that file.
 *
 * Each event is one JSON line written with a single write(2) on an O_APPEND descriptor, so
 * concurrent writers never interleave inside a line. The journal is bounded: once the file passes
 * MAX_BYTES it is renamed to `events.1.jsonl` (the older half, replaced at the next rotation) under
 * a lock, so at most twice MAX_BYTES are kept. Writing an event never fails the operation that
 * emits it: a full disk or a read-only root loses the event, not the container.
 */
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import { withLock } from '../lock.js';
import { eventsFile, eventsOldFile } from './paths.js';

/** Past this size the journal is rotated (one older generation is kept). */
export const MAX_BYTES = 4 * 1024 * 1024;

export type EventType = 'container' | 'image' | 'volume' | 'network' | 'builder' | 'daemon';

/** An event as Docker's API reports it (`docker events --format '{{json .}}'`). */
export interface StoredEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Seconds since the epoch. */
  time: number;
  /** Nanoseconds since the epoch, as a decimal string (a double cannot hold it exactly). */
  timeNano: string;
  /** Docker's older fields, kept for containers and images as Docker does. */
  status?: string;
  id?: string;
  from?: string;
}

export interface EmitEvent {
  type: EventType;
  /** `create`, `start`, `die`, `pull`, `tag`, `exec_start: sh -c ...` as Docker names them. */
  action: string;
  /** A container id, an image reference or id, a volume name. */
  id: string;
  attributes?: Record<string, string | undefined>;
  /** When it happened, if not now (a container's end noticed later: its finishedAt). */
  timeNano?: bigint;
}

// Wall-clock time at start-up plus the monotonic clock since: nanosecond timestamps that never go
// backwards within a process, so one run's events keep their order in the journal.
const WALL_AT_START = BigInt(Date.now()) * 1_000_000n;
const HR_AT_START = process.hrtime.bigint();

function nowNano(): bigint {
  return WALL_AT_START + (process.hrtime.bigint() - HR_AT_START);
}

/** Nanoseconds since the epoch of an ISO time (a record's finishedAt); undefined if unparsable. */
export function isoToNano(iso: string | undefined): bigint | undefined {
  const ms = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(ms)) return undefined;
  const frac = /\.(\d+)/.exec(iso!)?.[1] ?? '';
  const sub = frac.length > 3 ? BigInt(frac.slice(3, 9).padEnd(6, '0')) : 0n;
  return BigInt(ms) * 1_000_000n + sub;
}

export function toStoredEvent(e: EmitEvent, nano: bigint = nowNano()): StoredEvent {
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.attributes ?? {})) if (v !== undefined) attributes[k] = v;
  const legacy = e.type === 'container' || e.type === 'image';
  return {
    ...(legacy ? { status: e.action, id: e.id, ...(attributes.image !== undefined && e.type === 'container' ? { from: attributes.image } : {}) } : {}),
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.id, Attributes: attributes },
    scope: 'local',
    time: Number(nano / 1_000_000_000n),
    timeNano: nano.toString(),
  };
}

/**
 * Appends events to the journal of the store at `root`. Never throws: the journal is a record of
 * what happened, not a precondition of it.
 */
export async function emitEvents(root: string, events: readonly EmitEvent[], o: { maxBytes?: number } = {}): Promise<void> {
  if (events.length === 0) return;
  const line = events.map((e) => `${JSON.stringify(toStoredEvent(e, e.timeNano))}\n`).join('');
  // Synchronous calls: four small ones cost microseconds each, where each thread-pool round trip
  // of the asynchronous ones cost ~0.1 ms, and `run --rm` appends four times.
  let size: number;
  let fd: number | undefined;
  try {
    fd = openSync(eventsFile(root), 'a', 0o600);
    writeSync(fd, line);
    size = fstatSync(fd).size;
  } catch {
    // (see above: losing an event must not fail the operation)
    return;
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
  const max = o.maxBytes ?? MAX_BYTES;
  if (size > max) await rotate(root, max).catch(() => {});
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing left to lose
  }
}

/** One event (see emitEvents). */
export function emitEvent(root: string, e: EmitEvent): Promise<void> {
  return emitEvents(root, [e]);
}

/**
 * Moves a full journal aside. Under a lock, and only if it is still over the limit: two writers
 * that both saw it full rotate once, and the older generation is not replaced by a nearly empty one.
 * A writer holding the old file open appends to the older generation, which readers still read.
 */
async function rotate(root: string, max: number): Promise<void> {
  const path = eventsFile(root);
  await withLock(path, async () => {
    const st = await stat(path).catch(() => undefined);
    if (st && st.size > max) await rename(path, eventsOldFile(root));
  });
}

/** Parses a journal line; undefined for a torn or foreign one. */
export function parseEventLine(line: string): StoredEvent | undefined {
  if (!line.trim()) return undefined;
  try {
    const e = JSON.parse(line) as StoredEvent;
    if (typeof e.Type !== 'string' || typeof e.Action !== 'string' || typeof e.timeNano !== 'string') return undefined;
    return e;
  } catch {
    return undefined;
  }
}

export interface ReadEventsOptions {
  /** Only events at or after this time (nanoseconds since the epoch). */
  sinceNano?: bigint;
  /** Only events at or before this time; with `follow`, stop once the clock passes it. */
  untilNano?: bigint;
  /** After what is recorded, keep reading what is appended until `signal` aborts (or `untilNano` passes). */
  follow?: boolean;
  /** How often a follower looks for new lines (default 100 ms). */
  pollMs?: number;
  signal?: AbortSignal;
}

const CHUNK = 1 << 16;

/** A journal file being read from an open descriptor, line by line. */
class Cursor {
  private rest = '';
  private pos = 0;
  private constructor(readonly fh: FileHandle, readonly ino: number) {}

  static async open(path: string): Promise<Cursor | undefined> {
    try {
      const fh = await open(path, 'r');
      return new Cursor(fh, (await fh.stat()).ino);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Every complete line appended since the last call. */
  async lines(): Promise<string[]> {
    const out: string[] = [];
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, CHUNK, this.pos);
      if (bytesRead === 0) break;
      this.pos += bytesRead;
      const text = this.rest + buf.subarray(0, bytesRead).toString('utf8');
      const parts = text.split('\n');
      this.rest = parts.pop() ?? '';
      out.push(...parts);
    }
    return out;
  }

  /** Skips what is there now (a follower that starts at the present). */
  async toEnd(): Promise<void> {
    this.pos = (await this.fh.stat()).size;
  }

  close(): Promise<void> {
    return this.fh.close().catch(() => {});
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((res) => {
    if (signal?.aborted) return res();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      res();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The journal's events in order: the older generation, then the current file; with `follow`, then
 * what is appended (across rotations) until aborted. Without `sinceNano`, a follower starts at the
 * present, as `docker events` does.
 */
export async function* readEvents(root: string, o: ReadEventsOptions = {}): AsyncGenerator<StoredEvent> {
  const keep = (e: StoredEvent): boolean => {
    const t = BigInt(e.timeNano);
    return (o.sinceNano === undefined || t >= o.sinceNano) && (o.untilNano === undefined || t <= o.untilNano);
  };
  const fromStart = !o.follow || o.sinceNano !== undefined;
  let cur = await Cursor.open(eventsFile(root));
  try {
    if (fromStart) {
      const old = await Cursor.open(eventsOldFile(root));
      // The older generation may be the file `cur` was before a rotation that just happened.
      if (old && old.ino !== cur?.ino) {
        try {
          for (const l of await old.lines()) {
            const e = parseEventLine(l);
            if (e && keep(e)) yield e;
          }
        } finally {
          await old.close();
        }
      } else await old?.close();
    } else await cur?.toEnd();
    for (;;) {
      if (cur) {
        for (const l of await cur.lines()) {
          const e = parseEventLine(l);
          if (e && keep(e)) yield e;
        }
      }
      if (!o.follow || o.signal?.aborted) return;
      if (o.untilNano !== undefined && BigInt(Date.now()) * 1_000_000n > o.untilNano) return;
      // A rotation (or the first event of a new store) puts another file at the path: what the
      // old descriptor still holds was read above, the new file is read from its start.
      const st = await stat(eventsFile(root)).catch(() => undefined);
      if (st && st.ino !== cur?.ino) {
        if (cur) {
          for (const l of await cur.lines()) {
            const e = parseEventLine(l);
            if (e && keep(e)) yield e;
          }
          await cur.close();
        }
        cur = await Cursor.open(eventsFile(root));
        continue;
      }
      await sleep(o.pollMs ?? 100, o.signal);
    }
  } finally {
    await cur?.close();
  }
}
