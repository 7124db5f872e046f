/**
 * A fluent in-memory tar builder for layer tests (containerd `tartest.TarContext`). Built on
 * tar-stream, independently of imgbuild's own tar writer, so apply tests do not trust the code
 * they test. Entries are written exactly in call order, names verbatim (so hostile names such as
 * `../x` or duplicate entries can be produced).
 *
 *   const tar = await new TarBuilder().dir('etc').file('etc/passwd', 'root:x:0:0::/root:/bin/sh\n')
 *     .symlink('bin/sh', 'busybox').whiteout('etc/shadow').opaque('var').buffer();
 */
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';

export interface EntryOpts {
  mode?: number;
  uid?: number;
  gid?: number;
  /** seconds since the epoch (default 1700000000) */
  mtime?: number;
  /** xattrs as PAX SCHILY.xattr.* records (text values only: tar-stream encodes PAX as UTF-8) */
  xattrs?: Record<string, string>;
}

/** What tar-stream accepts for a new entry: a name, the rest defaulted. */
type Header = Partial<tarStream.Header> & Pick<tarStream.Header, 'name'>;

export class TarBuilder {
  private readonly entries: { header: Header; body?: Buffer }[] = [];

  private add(header: Header, body?: Buffer, o: EntryOpts = {}): this {
    const h: Header = {
      mode: o.mode ?? (header.type === 'directory' ? 0o755 : 0o644),
      uid: o.uid ?? 0,
      gid: o.gid ?? 0,
      mtime: new Date((o.mtime ?? 1_700_000_000) * 1000),
      ...header,
    };
    if (o.xattrs) h.pax = Object.fromEntries(Object.entries(o.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
    this.entries.push(body ? { header: h, body } : { header: h });
    return this;
  }

  file(name: string, content: string | Buffer = '', o: EntryOpts = {}): this {
    const body = typeof content === 'string' ? Buffer.from(content) : content;
    return this.add({ name, type: 'file', size: body.length }, body, o);
  }

  dir(name: string, o: EntryOpts = {}): this {
    return this.add({ name: name.endsWith('/') ? name : `${name}/`, type: 'directory' }, undefined, o);
  }

  symlink(name: string, target: string, o: EntryOpts = {}): this {
    return this.add({ name, type: 'symlink', linkname: target }, undefined, { mode: 0o777, ...o });
  }

  hardlink(name: string, target: string, o: EntryOpts = {}): this {
    return this.add({ name, type: 'link', linkname: target }, undefined, o);
  }

  /** `dir/.wh.base` for `dir/base` */
  whiteout(name: string): this {
    const i = name.lastIndexOf('/');
    return this.file(i < 0 ? `.wh.${name}` : `${name.slice(0, i)}/.wh.${name.slice(i + 1)}`, '', { mode: 0o600 });
  }

  /** `dir/.wh..wh..opq` */
  opaque(dir: string): this {
    return this.file(dir === '' || dir === '.' ? '.wh..wh..opq' : `${dir.replace(/\/$/, '')}/.wh..wh..opq`, '', { mode: 0o600 });
  }

  char(name: string, major: number, minor: number, o: EntryOpts = {}): this {
    return this.add({ name, type: 'character-device', devmajor: major, devminor: minor }, undefined, { mode: 0o666, ...o });
  }

  block(name: string, major: number, minor: number, o: EntryOpts = {}): this {
    return this.add({ name, type: 'block-device', devmajor: major, devminor: minor }, undefined, { mode: 0o660, ...o });
  }

  fifo(name: string, o: EntryOpts = {}): this {
    return this.add({ name, type: 'fifo' }, undefined, o);
  }

  async buffer(): Promise<Buffer> {
    const pack = tarStream.pack();
    const chunks: Buffer[] = [];
    const done = (async () => {
      for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
    })();
    for (const e of this.entries) {
      await new Promise<void>((res, rej) => {
        const cb = (err?: Error | null): void => (err ? rej(err) : res());
        if (e.body) pack.entry({ ...e.header }, e.body, cb);
        else pack.entry({ ...e.header }, cb);
      });
    }
    pack.finalize();
    await done;
    return Buffer.concat(chunks);
  }

  async stream(): Promise<Readable> {
    return Readable.from([await this.buffer()]);
  }
}

export const tar = (): TarBuilder => new TarBuilder();

// ------------------------------------------------------------------ tree snapshots for assertions

import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join as joinPath } from 'node:path';

export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: number;
  mtime?: number;
}

/** A sorted listing of everything under `root` (root itself excluded), for deep-equal assertions. */
export function snapshotTree(root: string, o: { mtime?: boolean } = {}): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (abs: string, rel: string): void => {
    for (const name of readdirSync(abs).sort()) {
      const p = joinPath(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const type: TreeEntry['type'] = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink'
        : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'socket';
      const e: TreeEntry = { path: r, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (type === 'file') {
        e.size = st.size;
        e.sha256 = createHash('sha256').update(readFileSync(p)).digest('hex');
      }
      if (type === 'symlink') e.link = readlinkSync(p);
      if (type === 'char' || type === 'block') e.rdev = st.rdev;
      if (o.mtime && type !== 'symlink') e.mtime = Math.floor(st.mtimeMs / 1000);
      out.push(e);
      if (type === 'dir') walk(p, r);
    }
  };
  walk(root, '');
  return out;
}

/** Files and dirs under `dir` (empty array for an empty or missing dir). */
export function listAll(dir: string): string[] {
  try {
    return snapshotTree(dir).map((e) => e.path);
  } catch {
    return [];
  }
}
