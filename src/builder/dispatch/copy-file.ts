/**
 * COPY's copy of one small file, synchronously through one reused buffer. For the many small files
 * of a context this costs a fraction of `copyFile` on the thread pool: the pool's threads creating
 * files in one directory at once wait on its lock, and every round trip and path lookup is paid
 * per file, where the work itself is a few short syscalls. Larger files keep the kernel's copy
 * (copy.ts), which does not pass their bytes through the process.
 */
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, readSync, writeSync } from 'node:fs';

/**
 * Files up to this size are copied through the buffer; larger ones by the kernel (`copyFile`), 8
 * at once. Measured on 2 cores (COPY of 1,000-1,500 files of one size): 64 KiB files 0.10-0.13 s
 * through the buffer against 0.16-0.20 s by the kernel, 128 KiB even, 300 KiB 0.08-0.15 s against
 * 0.05-0.07 s. Also the buffer's size, so a file at the limit takes one read.
 */
export const SMALL_FILE_LIMIT = 128 << 10;

/** What the copy is given: the owner (left as created when 0:0), permission bits and mtime. */
export interface FileAttrs {
  uid: number;
  gid: number;
  mode: number;
  mtimeMs: number;
  /** The size the walk saw: a read of that many bytes needs no read of the end after it. */
  size?: number;
}

/** A buffer for copySmallFileSync, one per COPY (never shared across an await). */
export function copyBuffer(): Buffer {
  return Buffer.allocUnsafe(SMALL_FILE_LIMIT);
}

/**
 * Copies `src` to `dst`, which must not exist (O_EXCL), then sets its owner, mode and times on
 * the open file, in that order (a chown clears set-id bits, so the mode comes after it): the same
 * result as copyFile followed by lchown, chmod and lutimes on the path. Reads until end of file,
 * so a file that grew since it was walked is copied whole.
 */
export function copySmallFileSync(src: string, dst: string, buf: Buffer, a: FileAttrs): void {
  const from = openSync(src, constants.O_RDONLY);
  try {
    const to = openSync(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      for (;;) {
        const n = readSync(from, buf, 0, buf.length, null);
        if (n === 0) break;
        for (let off = 0; off < n; ) off += writeSync(to, buf, off, n - off);
        // A short read of as many bytes as the walk saw ended at the file's end (see hashFileSync).
        if (n === a.size && n < buf.length) break;
      }
      if (a.uid !== 0 || a.gid !== 0) fchownSync(to, a.uid, a.gid);
      fchmodSync(to, a.mode);
      futimesSync(to, a.mtimeMs / 1000, a.mtimeMs / 1000);
    } finally {
      closeSync(to);
    }
  } finally {
    closeSync(from);
  }
}
