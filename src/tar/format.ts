/**
 * The tar header codec (ustar + PAX extended headers, read-compatible with GNU long names and
 * base-256 numbers).
 *
 * Why not tar-stream's codec: tar-stream@3 builds and parses PAX records as UTF-8 *text*
 * (`headers.encodePax` / `decodePax`), so a binary xattr value such as `security.capability`
 * (arbitrary bytes, stored raw in `SCHILY.xattr.*` by GNU tar, Go's archive/tar and umoci) is
 * corrupted in both directions; it also ignores PAX `uid`/`gid`/`mtime` on read and never adds the
 * trailing `/` to directory names. Layers are digested byte for byte, so this module owns every
 * byte of the header: PAX values are Buffers here.
 */
import { ImgbuildError } from '../errors.js';

export const BLOCK = 512;

export type EntryType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'char'
  | 'block'
  | 'dir'
  | 'fifo';

export interface TarHeader {
  /** Entry name as stored (directories without the trailing slash). */
  name: string;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (& 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Body size; 0 for everything but regular files. */
  size: number;
  /** Seconds since the epoch (integer). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** xattrs from `SCHILY.xattr.<name>` PAX records, raw bytes. */
  xattrs: Map<string, Buffer>;
}

export class TarFormatError extends ImgbuildError {
  constructor(reason: string, readonly offset?: number) {
    super('INVALID_ARGUMENT', `invalid tar stream${offset !== undefined ? ` at byte ${offset}` : ''}: ${reason}`);
    this.name = 'TarFormatError';
  }
}

const TYPEFLAG: Record<EntryType, number> = {
  file: 0x30, link: 0x31, symlink: 0x32, char: 0x33, block: 0x34, dir: 0x35, fifo: 0x36,
};

/** Largest value each numeric ustar field holds in octal. */
const MAX_OCT7 = 0o7777777; // uid, gid, mode, devmajor, devminor (8-byte fields)
const MAX_OCT11 = 0o77777777777; // size, mtime (12-byte fields)

/**
 * `value` in octal, zero-padded to width - 1 digits and a NUL (width includes the terminating NUL,
 * as GNU tar and Go write it). Digits are written in place (no string per field: a header is
 * encoded for every entry of every layer); the value fits, as callers clamp it.
 */
function writeOctal(buf: Buffer, off: number, width: number, value: number): void {
  let v = value;
  for (let i = off + width - 2; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  buf[off + width - 1] = 0;
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/** The UTF-8 bytes of `s`, cut at `width` bytes (an ASCII string, nearly all, is written directly). */
function writeString(buf: Buffer, off: number, width: number, s: string): void {
  if (s.length <= width && ASCII.test(s)) buf.write(s, off, s.length, 'latin1');
  else Buffer.from(s, 'utf8').copy(buf, off, 0, width);
}

/** One PAX record: "<len> <key>=<value>\n" where len counts the whole record in bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function padTo512(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function ustarBlock(h: {
  name: string; prefix: string; mode: number; uid: number; gid: number; size: number; mtime: number;
  typeflag: number; linkname: string; devmajor: number; devminor: number;
}): Buffer {
  // From Node's pool and zeroed: a block of its own per header weighed on the garbage collector.
  const b = Buffer.allocUnsafe(BLOCK).fill(0);
  writeString(b, 0, 100, h.name);
  writeOctal(b, 100, 8, h.mode);
  writeOctal(b, 108, 8, h.uid);
  writeOctal(b, 116, 8, h.gid);
  writeOctal(b, 124, 12, h.size);
  writeOctal(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156); // checksum is computed with spaces in its field
  b[156] = h.typeflag;
  writeString(b, 157, 100, h.linkname);
  b.write('ustar\x0000', 257, 8, 'binary');
  // uname/gname (265, 297) stay empty: ownership is numeric only, for reproducible layers.
  writeOctal(b, 329, 8, h.devmajor);
  writeOctal(b, 337, 8, h.devminor);
  writeString(b, 345, 155, h.prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'binary');
  return b;
}

function fitsAscii(s: string, max: number): boolean {
  return Buffer.byteLength(s, 'utf8') <= max && /^[\x01-\x7f]*$/.test(s);
}

/** Splits a long name into ustar prefix/name at a '/', when possible. */
function splitUstar(name: string): { prefix: string; name: string } | undefined {
  if (fitsAscii(name, 100)) return { prefix: '', name };
  if (!fitsAscii(name, 256)) return undefined;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const p = name.slice(0, i);
    const n = name.slice(i + 1);
    if (p.length <= 155 && n.length <= 100 && n.length > 0) return { prefix: p, name: n };
  }
  return undefined;
}

/**
 * Encodes the header block(s) for one entry: a PAX extended header ('x') first when a field does
 * not fit ustar (long or non-ASCII names, big numbers, xattrs), then the ustar block. Records are
 * emitted in a fixed order (sorted xattr names) so equal input gives equal bytes.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const wireName = h.type === 'dir' ? `${h.name}/` : h.name;
  const records: Buffer[] = [];
  const split = splitUstar(wireName);
  if (!split) records.push(paxRecord('path', Buffer.from(wireName, 'utf8')));
  const linkOk = fitsAscii(h.linkname, 100);
  if (!linkOk) records.push(paxRecord('linkpath', Buffer.from(h.linkname, 'utf8')));
  if (h.uid > MAX_OCT7) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCT7) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (h.size > MAX_OCT11) records.push(paxRecord('size', Buffer.from(String(h.size))));
  if (h.mtime > MAX_OCT11 || h.mtime < 0) records.push(paxRecord('mtime', Buffer.from(String(h.mtime))));
  for (const k of [...h.xattrs.keys()].sort()) records.push(paxRecord(`SCHILY.xattr.${k}`, h.xattrs.get(k)!));

  const ustar = ustarBlock({
    name: split ? split.name : truncateAscii(wireName, 100),
    prefix: split ? split.prefix : '',
    mode: h.mode & 0o7777,
    uid: Math.min(h.uid, MAX_OCT7),
    gid: Math.min(h.gid, MAX_OCT7),
    size: Math.min(h.size, MAX_OCT11),
    mtime: Math.max(0, Math.min(h.mtime, MAX_OCT11)),
    typeflag: TYPEFLAG[h.type],
    linkname: linkOk ? h.linkname : truncateAscii(h.linkname, 100),
    devmajor: Math.min(h.devmajor, MAX_OCT7),
    devminor: Math.min(h.devminor, MAX_OCT7),
  });
  if (records.length === 0) return ustar;
  const pax = Buffer.concat(records);
  const paxHeader = ustarBlock({
    // Fixed name (no pid, unlike GNU tar's default) to keep output reproducible; as Go writes it.
    name: truncateAscii(`PaxHeaders.0/${baseOf(h.name)}`, 100),
    prefix: '',
    mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: 0, typeflag: 0x78,
    linkname: '', devmajor: 0, devminor: 0,
  });
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padTo512(pax.length)), ustar]);
}

function baseOf(name: string): string {
  const i = name.lastIndexOf('/');
  return i < 0 ? name : name.slice(i + 1);
}

function truncateAscii(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[^\x01-\x7f]/g, '_').slice(0, max);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

export function paddingFor(size: number): number {
  return padTo512(size);
}

// ---------------------------------------------------------------- decoding

function readString(b: Buffer, off: number, width: number): string {
  let end = off;
  while (end < off + width && b[end] !== 0) end++;
  return b.toString('utf8', off, end);
}

function readNumber(b: Buffer, off: number, width: number, field: string, pos: number): number {
  const first = b[off]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as a flag.
    if (first === 0xff) throw new TarFormatError(`negative base-256 ${field}`, pos);
    let v = first & 0x7f;
    for (let i = 1; i < width; i++) v = v * 256 + b[off + i]!;
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`${field} too large`, pos);
    return v;
  }
  const s = b.toString('ascii', off, off + width).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad octal ${field} ${JSON.stringify(s)}`, pos);
  return parseInt(s, 8);
}

export type RawType = EntryType | 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink' | 'unsupported';

/** One header block as stored: TarHeader's fields before PAX/GNU records are folded in. */
export interface RawHeader extends Omit<TarHeader, 'type' | 'xattrs'> {
  rawType: RawType;
  typeflag: number;
}

/** Decodes one 512-byte header block; undefined for an all-zero block (end of archive). */
export function decodeBlock(b: Buffer, pos: number): RawHeader | undefined {
  let allZero = true;
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) { allZero = false; break; }
  if (allZero) return undefined;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  const stored = readNumber(b, 148, 8, 'checksum', pos);
  if (stored !== sum) {
    // Some historic writers summed signed chars.
    let signed = 0;
    for (let i = 0; i < BLOCK; i++) signed += i >= 148 && i < 156 ? 0x20 : (b[i]! << 24) >> 24;
    if (stored !== signed) throw new TarFormatError('header checksum mismatch (not a tar, or still compressed?)', pos);
  }
  const typeflag = b[156]!;
  let name = readString(b, 0, 100);
  const magic = b.toString('binary', 257, 263);
  if (magic === 'ustar\0' && b[345] !== 0) name = `${readString(b, 345, 155)}/${name}`;
  const rawType: RawType = (() => {
    switch (typeflag) {
      case 0: case 0x30: case 0x37: return name.endsWith('/') ? 'dir' : 'file';
      case 0x31: return 'link';
      case 0x32: return 'symlink';
      case 0x33: return 'char';
      case 0x34: return 'block';
      case 0x35: return 'dir';
      case 0x36: return 'fifo';
      case 0x78: return 'pax';
      case 0x67: return 'pax-global';
      case 0x4c: return 'gnu-longname';
      case 0x4b: return 'gnu-longlink';
      default: return 'unsupported';
    }
  })();
  return {
    name,
    rawType,
    typeflag,
    mode: readNumber(b, 100, 8, 'mode', pos) & 0o7777,
    uid: readNumber(b, 108, 8, 'uid', pos),
    gid: readNumber(b, 116, 8, 'gid', pos),
    size: readNumber(b, 124, 12, 'size', pos),
    mtime: readNumber(b, 136, 12, 'mtime', pos),
    linkname: readString(b, 157, 100),
    devmajor: readNumber(b, 329, 8, 'devmajor', pos),
    devminor: readNumber(b, 337, 8, 'devminor', pos),
  };
}

/** Parses PAX records keeping values as raw bytes (xattr values are binary). */
export function decodePax(buf: Buffer, pos: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break; // NUL padding
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) throw new TarFormatError('PAX record without length', pos);
    const len = Number(buf.toString('ascii', i, sp));
    if (!Number.isInteger(len) || len <= 0 || i + len > buf.length) throw new TarFormatError('bad PAX record length', pos);
    const rec = buf.subarray(sp + 1, i + len);
    if (rec[rec.length - 1] !== 0x0a) throw new TarFormatError('PAX record not newline-terminated', pos);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('PAX record without "="', pos);
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1, rec.length - 1)));
    i += len;
  }
  return out;
}
