/**
 * The wire protocol with the native helper (native/protocol.h): bootstrap records written to
 * its fd 3 and status records read from its fd 4. The numeric constants mirror protocol.h; a
 * test parses the header and compares.
 */
import { InvalidArgumentError } from '../errors.js';

export const Tag = {
  MODE: 1,
  ARGV: 2,
  ENV: 3,
  CWD: 4,
  UID: 5,
  GID: 6,
  ADDGID: 7,
  NS_FLAGS: 8,
  UIDMAP: 9,
  GIDMAP: 10,
  ROOTFS_MOUNT: 11,
  MOUNT: 12,
  HOSTNAME: 13,
  RLIMIT: 14,
  CAPS: 15,
  NO_NEW_PRIVS: 16,
  MASKED: 17,
  READONLY: 18,
  NETNS_PATH: 19,
  CGROUP_PATH: 20,
  INIT: 21,
  TERMINAL: 22,
  READONLY_ROOTFS: 23,
  ROOTFS_DIR: 24,
  TARGET_PID: 25,
  LOG_PATH: 26,
  STATUS_PATH: 27,
  WINSIZE: 28,
  SECCOMP: 29,
  CONTROL: 30,
  PRIVILEGED: 31,
  DEVICE: 32,
  EXEC_DETACHED: 33,
  DOMAINNAME: 34,
  NET_IFACE: 35,
  PIDNS_PATH: 36,
  IPCNS_PATH: 37,
  STDIN_PATH: 38,
  ROOTFS_IDMAP: 39,
  LIFELINE: 40,
  CHROOT: 41,
} as const;

export const Mode = { RUN: 0, DETACHED: 1, EXEC: 2 } as const;

export const Stage = {
  PARENT: 1,
  CHILD: 2,
  INIT: 3,
  REC_FIRST_INFO: 64,
  REC_PID: 64,
  REC_MONITOR: 65,
  REC_EXIT: 66,
  REC_EXECED: 67,
} as const;

export const Sync = { USERMAP_PLS: 0x40, USERMAP_ACK: 0x41 } as const;

/** CLONE_NEW* flags (linux/sched.h). */
export const CloneFlags = {
  mount: 0x00020000,
  cgroup: 0x02000000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  net: 0x40000000,
} as const;

/** MS_* mount flags (linux/mount.h). */
export const MountFlags = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  REC: 16384,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
} as const;

const F = MountFlags;
/** runtime-spec mount option → [flags to set, flags to clear] (runc's mount option table). */
const FLAG_OPTIONS: Record<string, [set: number, clear: number]> = {
  ro: [F.RDONLY, 0],
  rw: [0, F.RDONLY],
  nosuid: [F.NOSUID, 0],
  suid: [0, F.NOSUID],
  nodev: [F.NODEV, 0],
  dev: [0, F.NODEV],
  noexec: [F.NOEXEC, 0],
  exec: [0, F.NOEXEC],
  sync: [F.SYNCHRONOUS, 0],
  async: [0, F.SYNCHRONOUS],
  dirsync: [F.DIRSYNC, 0],
  mand: [F.MANDLOCK, 0],
  nomand: [0, F.MANDLOCK],
  noatime: [F.NOATIME, 0],
  atime: [0, F.NOATIME],
  nodiratime: [F.NODIRATIME, 0],
  diratime: [0, F.NODIRATIME],
  relatime: [F.RELATIME, 0],
  norelatime: [0, F.RELATIME],
  strictatime: [F.STRICTATIME, 0],
  nostrictatime: [0, F.STRICTATIME],
  nosymfollow: [F.NOSYMFOLLOW, 0],
  bind: [F.BIND, 0],
  rbind: [F.BIND | F.REC, 0],
  defaults: [0, 0],
};
const PROPAGATION_OPTIONS: Record<string, number> = {
  private: F.PRIVATE,
  rprivate: F.PRIVATE | F.REC,
  shared: F.SHARED,
  rshared: F.SHARED | F.REC,
  slave: F.SLAVE,
  rslave: F.SLAVE | F.REC,
  unbindable: F.UNBINDABLE,
  runbindable: F.UNBINDABLE | F.REC,
};

export interface ParsedMountOptions {
  flags: number;
  propagation: number;
  /** Options passed to the filesystem (`lowerdir=...`, `mode=755`), comma-joined. */
  data: string;
}

export function parseMountOptions(type: string, options: readonly string[]): ParsedMountOptions {
  let flags = type === 'bind' ? F.BIND : 0;
  let propagation = 0;
  const data: string[] = [];
  for (const o of options) {
    const fl = FLAG_OPTIONS[o];
    const pr = PROPAGATION_OPTIONS[o];
    if (fl) flags = (flags | fl[0]) & ~fl[1];
    else if (pr !== undefined) propagation = pr;
    else data.push(o);
  }
  if (type === 'bind' && options.includes('rbind')) flags |= F.REC;
  return { flags: flags >>> 0, propagation, data: data.join(',') };
}

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** Accumulates bootstrap records {u16 tag; u32 len; value} in host (little-endian) order. */
export class BootstrapWriter {
  private readonly parts: Buffer[] = [];

  private record(tag: number, value: Buffer): this {
    const h = Buffer.alloc(6);
    h.writeUInt16LE(tag, 0);
    h.writeUInt32LE(value.length, 2);
    this.parts.push(h, value);
    return this;
  }

  bytes(tag: number, v: Buffer): this {
    return this.record(tag, v);
  }

  u32(tag: number, v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new InvalidArgumentError(`value ${v} of tag ${tag} is not a u32`);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v, 0);
    return this.record(tag, b);
  }

  u64(tag: number, v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v, 0);
    return this.record(tag, b);
  }

  str(tag: number, s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.includes(0)) throw new InvalidArgumentError(`NUL byte in ${JSON.stringify(s)}`);
    return this.record(tag, b);
  }

  mount(tag: number, m: { flags: number; propagation: number; type: string; source: string; destination: string; data: string; cwd: string }): this {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(m.flags >>> 0, 0);
    h.writeUInt32LE(m.propagation >>> 0, 4);
    const fields = [m.type, m.source, m.destination, m.data, m.cwd].map((s) => {
      const b = Buffer.from(s, 'utf8');
      if (b.includes(0)) throw new InvalidArgumentError(`NUL byte in mount field ${JSON.stringify(s)}`);
      return Buffer.concat([b, Buffer.from([0])]);
    });
    return this.record(tag, Buffer.concat([h, ...fields]));
  }

  rlimit(resource: number, soft: bigint, hard: bigint): this {
    const b = Buffer.alloc(24);
    b.writeUInt32LE(resource, 0);
    b.writeBigUInt64LE(soft, 8);
    b.writeBigUInt64LE(hard, 16);
    return this.record(Tag.RLIMIT, b);
  }

  device(d: { mode: number; major: number; minor: number; uid: number; gid: number; path: string }): this {
    const h = Buffer.alloc(20);
    [d.mode, d.major, d.minor, d.uid, d.gid].forEach((v, i) => h.writeUInt32LE(v >>> 0, i * 4));
    const p = Buffer.from(d.path, 'utf8');
    if (p.includes(0)) throw new InvalidArgumentError(`NUL byte in device path ${JSON.stringify(d.path)}`);
    return this.record(Tag.DEVICE, Buffer.concat([h, p]));
  }

  winsize(rows: number, cols: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt16LE(Math.min(rows, 0xffff), 0);
    b.writeUInt16LE(Math.min(cols, 0xffff), 2);
    return this.record(Tag.WINSIZE, b);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface StatusRecord {
  stage: number;
  /** errno for error records; a pid or wait status for the others. */
  value: number;
  message: string;
}

/** Incremental decoder of fd-4 records (they may arrive split across reads). */
export class RecordDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): StatusRecord[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: StatusRecord[] = [];
    while (this.buf.length >= 9) {
      const len = this.buf.readUInt32LE(5);
      if (this.buf.length < 9 + len) break;
      out.push({
        stage: this.buf.readUInt8(0),
        value: this.buf.readInt32LE(1),
        message: this.buf.subarray(9, 9 + len).toString('utf8'),
      });
      this.buf = this.buf.subarray(9 + len);
    }
    return out;
  }

  /** Bytes of an incomplete record left at EOF (a helper bug if non-zero). */
  get pending(): number {
    return this.buf.length;
  }
}

export function decodeRecords(buf: Buffer): StatusRecord[] {
  return new RecordDecoder().push(buf);
}
