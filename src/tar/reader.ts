/**
 * A pull-based streaming tar reader: `for await (const e of readTar(stream))` yields one entry at a
 * time, its body an async iterable of the underlying chunks (no copies for bodies). The consumer
 * may leave a body unread; it is skipped before the next header. Memory stays at one chunk of the
 * source plus one header, whatever the layer size.
 *
 * After the end-of-archive marker the rest of the input is read and discarded, so a verifying
 * source (digest checked at EOF) always gets to check — a tar that stops early must not let an
 * unverified blob pass as applied.
 */
import type { Readable } from 'node:stream';
import { throwIfAborted } from '../errors.js';
import { BLOCK, TarFormatError, decodeBlock, decodePax, paddingFor, type TarHeader } from './format.js';

export interface TarEntry {
  header: TarHeader;
  /** Header fields from PAX records that imgbuild does not interpret (kept for diagnostics). */
  body: AsyncIterable<Buffer>;
}

class ByteSource {
  private readonly it: AsyncIterator<Buffer | string>;
  private chunks: Buffer[] = [];
  private len = 0;
  private eof = false;
  /** Absolute offset of the first unread byte. */
  offset = 0;

  constructor(input: Readable) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.it.next();
    if (r.done) {
      this.eof = true;
      return false;
    }
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    if (b.length > 0) {
      this.chunks.push(b);
      this.len += b.length;
    }
    return true;
  }

  /** Exactly n bytes, or undefined at a clean EOF before any byte; throws when truncated. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.len < n) if (!(await this.pull())) break;
    if (this.len === 0) return undefined;
    if (this.len < n) throw new TarFormatError(`unexpected end of data (wanted ${n} bytes, have ${this.len})`, this.offset);
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let o = 0;
      while (o < n) {
        const c = this.chunks[0]!;
        const take = Math.min(c.length, n - o);
        c.copy(out, o, 0, take);
        o += take;
        if (take === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(take);
      }
    }
    this.len -= n;
    this.offset += n;
    return out;
  }

  /** Yields up to n bytes as they arrive (slices of source chunks). */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.len === 0 && !(await this.pull())) {
        throw new TarFormatError(`unexpected end of data inside an entry body (${left} bytes missing)`, this.offset);
      }
      if (this.len === 0) continue;
      const c = this.chunks[0]!;
      const take = Math.min(c.length, left);
      const out = c.subarray(0, take);
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
      this.len -= take;
      this.offset += take;
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) { /* discard */ }
  }

  /** Skips up to n bytes; true when all were there, false at EOF (no error). */
  async skipLenient(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.len === 0 && !(await this.pull())) return false;
      if (this.len === 0) continue;
      const c = this.chunks[0]!;
      const take = Math.min(c.length, left);
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
      this.len -= take;
      this.offset += take;
      left -= take;
    }
    return true;
  }

  async drain(): Promise<void> {
    this.chunks = [];
    this.len = 0;
    while (await this.pull()) {
      this.offset += this.len;
      this.chunks = [];
      this.len = 0;
    }
  }
}

export interface ReadTarOptions {
  signal?: AbortSignal;
  /**
   * Told how the archive ended before the rest is drained: at its end-of-archive marker, or at
   * the end of the data without one (accepted, as GNU tar does; an image archive cut at an entry
   * boundary looks like that).
   */
  onEnd?: (how: 'marker' | 'eof') => void;
}

export async function* readTar(input: Readable, opts: ReadTarOptions = {}): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input);
  let pax: Map<string, Buffer> | undefined;
  let globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    throwIfAborted(opts.signal);
    const pos = src.offset;
    const block = await src.read(BLOCK);
    if (!block) {
      opts.onEnd?.('eof'); // EOF without end marker: accepted, as GNU tar does
      break;
    }
    const raw = decodeBlock(block, pos);
    if (!raw) {
      opts.onEnd?.('marker');
      break;
    }
    const padded = raw.size + paddingFor(raw.size);
    switch (raw.rawType) {
      case 'pax':
      case 'pax-global': {
        if (raw.size > 16 * 1024 * 1024) throw new TarFormatError(`PAX header of ${raw.size} bytes`, pos);
        const data = (await src.read(padded)) ?? Buffer.alloc(0);
        const recs = decodePax(data.subarray(0, raw.size), pos);
        if (raw.rawType === 'pax-global') globalPax = new Map([...globalPax, ...recs]);
        else pax = recs;
        continue;
      }
      case 'gnu-longname':
      case 'gnu-longlink': {
        if (raw.size > 1024 * 1024) throw new TarFormatError(`GNU long name of ${raw.size} bytes`, pos);
        const data = (await src.read(padded)) ?? Buffer.alloc(0);
        let end = data.indexOf(0);
        if (end < 0 || end > raw.size) end = raw.size;
        const s = data.toString('utf8', 0, end);
        if (raw.rawType === 'gnu-longname') longName = s;
        else longLink = s;
        continue;
      }
      case 'unsupported':
        throw new TarFormatError(`entry ${JSON.stringify(raw.name)} has unsupported type flag ${JSON.stringify(String.fromCharCode(raw.typeflag))}`, pos);
      default:
        break;
    }
    const recs = pax ? new Map([...globalPax, ...pax]) : globalPax;
    pax = undefined;
    const str = (k: string): string | undefined => recs.get(k)?.toString('utf8');
    const num = (k: string, dflt: number): number => {
      const v = str(k);
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new TarFormatError(`bad PAX ${k} ${JSON.stringify(v)}`, pos);
      return n;
    };
    let name = str('path') ?? longName ?? raw.name;
    longName = undefined;
    const linkname = str('linkpath') ?? longLink ?? raw.linkname;
    longLink = undefined;
    const type = raw.rawType;
    if (type === 'dir' && name.endsWith('/')) name = name.replace(/\/+$/, '');
    const size = num('size', raw.size);
    if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`bad size for ${JSON.stringify(name)}`, pos);
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of recs) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    const header: TarHeader = {
      name,
      type,
      mode: raw.mode,
      uid: num('uid', raw.uid),
      gid: num('gid', raw.gid),
      // Hard links and others carry no body in layers (a 'link' with size is a GNU oddity: skip it).
      size: type === 'file' ? size : 0,
      mtime: Math.floor(num('mtime', raw.mtime)),
      linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs,
    };
    const bodyLen = size;
    let consumed = false;
    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => {
        if (consumed) throw new Error(`body of ${name} read twice`);
        consumed = true;
        return src.stream(type === 'file' ? bodyLen : 0)[Symbol.asyncIterator]();
      },
    };
    const before = src.offset;
    yield { header, body };
    // Whatever the consumer left unread of the body, then the padding. A stream that ends right
    // after a complete body, without padding or end marker, is accepted: umoci 0.4 `insert` writes
    // such layers, and no entry data is missing.
    const read = src.offset - before;
    if (read < bodyLen) await src.skip(bodyLen - read);
    if (!(await src.skipLenient(paddingFor(bodyLen)))) {
      opts.onEnd?.('eof');
      break;
    }
  }
  await src.drain();
}
