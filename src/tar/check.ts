/**
 * Checking a layer without applying it: every entry is read with the reader applyLayer uses and
 * held to the same rules (rules.ts), and nothing is written. `load` and `pull` check each new layer
 * this way before the image is tagged, so a hostile image is refused at once, naming the layer and
 * the entry, instead of at its first `run`. Applying still enforces everything on its own (and what
 * depends on the tree being written, such as symlink loops, only it can).
 *
 * LayerCheck takes a blob's compressed bytes as they arrive (a download's chunks, an archive
 * member's) and decompresses and parses them on the fly: gzip on libuv's thread pool and zstd in
 * its own process, so the decoding overlaps with the transfer, and only the tar headers reach
 * this thread's parser (bodies are skipped). A blob checked this way is never read back.
 *
 * What it costs is decompressing every new layer once (docs/architecture.md, "Measurements"). A
 * faster gzip decoder in a child process (ISA-L's `igzip -dc`) is not used: a second decoder can
 * read a stream differently from the one applying uses (igzip ignores trailing bytes that Node's
 * zlib rejects), and the check must see exactly what applying sees.
 */
import { createReadStream } from 'node:fs';
import { PassThrough, type Duplex, type Readable, type Transform } from 'node:stream';
import { AbortedError, ImgbuildError, isImgbuildError } from '../errors.js';
import { createDecoder, detectCompression, type Compression } from '../compress/compress.js';
import { InvalidWhiteoutError, UnsafePathError } from './errors.js';
import { readTar } from './reader.js';
import { planEntry } from './rules.js';

export interface CheckOptions {
  allowDevices?: boolean;
  signal?: AbortSignal;
}

/**
 * A layer refused before it was applied: an entry the rules refuse, or a blob that is not a
 * readable tar in the compression it claims. One line naming the layer, then the reason (which
 * names the tar entry when there is one).
 */
export class LayerRefusedError extends ImgbuildError {
  constructor(readonly layer: string, readonly reason: Error, readonly entry?: string) {
    super('INVALID_ARGUMENT', `layer ${layer} refused: ${reasonText(reason)}`, { cause: reason });
    this.name = 'LayerRefusedError';
  }

  /** True when an entry broke the rules (a hostile layer), false when the blob was unreadable. */
  get unsafe(): boolean {
    return this.entry !== undefined;
  }
}

function reasonText(e: Error): string {
  if (isImgbuildError(e)) return e.message;
  // zlib's errors ("unexpected end of file", "incorrect header check") say nothing of gzip
  const code = (e as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code.startsWith('Z_')) return `gzip data is truncated or corrupt (${e.message})`;
  return e.message;
}

/** The refusal for `layer`, from what reading or checking it threw (aborts pass through). */
export function layerRefusal(layer: string, e: unknown): Error {
  if (e instanceof AbortedError || e instanceof LayerRefusedError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const entry = e instanceof UnsafePathError || e instanceof InvalidWhiteoutError ? e.entry : undefined;
  return new LayerRefusedError(layer, err, entry);
}

/**
 * Reads an uncompressed layer tar to its end (so a verifying source gets to check its digest),
 * holding every entry to applyLayer's rules. Writes nothing; throws what applying would throw.
 */
export async function checkLayerTar(tar: Readable, o: CheckOptions = {}): Promise<{ entries: number }> {
  let entries = 0;
  try {
    for await (const { header } of readTar(tar, o.signal ? { signal: o.signal } : {})) {
      planEntry(header, o.allowDevices ? { allowDevices: true } : {});
      entries++;
    }
  } catch (e) {
    tar.destroy();
    throw e;
  }
  return { entries };
}

/** Compressed bytes a LayerCheck holds before it asks its writer to wait. */
const BACKLOG = 4 * 1024 * 1024;
/** Bytes gathered before they go to the decoder in one write. */
const BATCH = 256 * 1024;

/**
 * A streaming check of one layer blob: write() its bytes in order, then end(). Refusals and
 * unreadable data reject end() with LayerRefusedError (and are reported to onFail listeners as
 * soon as they are found; once failed, the check takes further bytes without looking at them).
 * With `compression` undefined it is detected from the first bytes.
 */
export class LayerCheck {
  /** Bytes written so far (a download may continue the check only from exactly here). */
  fed = 0;
  /** Where the blob's bytes go once the compression is known. */
  private decoder: Transform | Duplex | undefined;
  /** Bytes not yet handed to the decoder (the compression is detected from the first 4). */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private result: Promise<{ entries: number }> | undefined;
  private failure: Error | undefined;
  private readonly failListeners = new Set<(e: Error) => void>();
  private closed = false;
  /** The compression in use once known. */
  compression: Compression | undefined;

  constructor(readonly layer: string, compression: Compression | undefined, private readonly o: CheckOptions = {}) {
    if (compression !== undefined) this.start(compression);
  }

  private start(c: Compression): void {
    this.compression = c;
    // The decoder applying reads the layer through (compress.ts): the check must see exactly the
    // bytes applying will.
    const dec: Transform | Duplex = c === 'none' ? new PassThrough() : createDecoder(c, this.o.signal);
    dec.on('error', () => {}); // reported through the reader below
    this.decoder = dec;
    this.result = checkLayerTar(dec as Readable, this.o).catch((e: unknown) => {
      throw this.fail(layerRefusal(this.layer, e));
    });
    this.result.catch(() => {});
  }

  private fail(e: Error): Error {
    if (this.failure) return this.failure;
    this.failure = e;
    this.decoder?.destroy();
    for (const fn of this.failListeners) fn(e);
    this.failListeners.clear();
    return e;
  }

  /** The refusal found so far, if any. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** Calls `fn` once if the check fails before end() (at once if it has). Returns an unsubscribe. */
  onFail(fn: (e: Error) => void): () => void {
    if (this.failure) {
      fn(this.failure);
      return () => {};
    }
    this.failListeners.add(fn);
    return () => this.failListeners.delete(fn);
  }

  /**
   * Takes the next bytes of the blob. False: the decoder is behind; wait for onceDrain before
   * writing more (memory stays bounded while a fast download outruns the decompression).
   */
  write(chunk: Buffer): boolean {
    if (this.closed) throw new Error(`layer check of ${this.layer}: write after end`);
    this.fed += chunk.length;
    if (this.failure) return true; // nothing more to learn; the caller is told through onFail
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    if (!this.decoder && this.pendingLen >= 4) this.start(detectCompression(Buffer.concat(this.pending)));
    if (this.decoder && this.pendingLen >= BATCH) this.flush();
    return (this.decoder?.writableLength ?? 0) + this.pendingLen < BACKLOG;
  }

  /** Hands what was written to the decoder, as one buffer: a download's chunks are small, and each write costs the decoder a round trip. */
  private flush(): void {
    if (this.pendingLen === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    this.decoder!.write(data);
  }

  /** Calls `fn` when the decoder has taken what it was given (or at once when that is so). */
  onceDrain(fn: () => void): void {
    const d = this.decoder;
    if (!d || this.failure || d.writableLength === 0 || d.destroyed) {
      queueMicrotask(fn);
      return;
    }
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      d.off('drain', once);
      off();
      fn();
    };
    d.on('drain', once);
    const off = this.onFail(once); // a failed check never drains: let the writer go on
  }

  /** All bytes were written: resolves when the whole layer passed, rejects with LayerRefusedError. */
  async end(): Promise<{ entries: number }> {
    if (this.failure) throw this.failure;
    if (!this.closed) {
      this.closed = true;
      if (!this.decoder) this.start(detectCompression(Buffer.concat(this.pending)));
      this.flush();
      this.decoder!.end();
    }
    return this.result!;
  }

  /** Stops the check (the blob was abandoned); its result no longer matters. */
  destroy(): void {
    this.closed = true;
    this.failListeners.clear();
    this.result?.catch(() => {});
    this.decoder?.destroy();
  }
}

/** Checks a blob file (a download whose streaming check could not follow it, a stored blob). */
export async function checkLayerFile(path: string, layer: string, compression: Compression | undefined, o: CheckOptions = {}): Promise<{ entries: number }> {
  const check = new LayerCheck(layer, compression, o);
  try {
    for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      if (!check.write(c as Buffer)) await new Promise<void>((r) => check.onceDrain(r));
      if (check.failed) break;
    }
  } catch (e) {
    check.destroy();
    throw e;
  }
  return check.end();
}

/** Checks a blob held in memory (a small archive member). */
export async function checkLayerBuffer(data: Buffer, layer: string, compression: Compression | undefined, o: CheckOptions = {}): Promise<{ entries: number }> {
  const check = new LayerCheck(layer, compression, o);
  check.write(data);
  return check.end();
}
