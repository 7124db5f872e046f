/**
 * The snapshotter interface (containerd `core/snapshots` vocabulary). A snapshotter hands out
 * `Mount[]` and never mounts: the runner (or `mount.ts` on the host) does that.
 *
 * Kinds: `active` snapshots are writable and may be committed; `view`s are read-only and can
 * never be committed; `committed` snapshots are immutable and are the only valid parents.
 */
import type { Mount } from '../sandbox/spec.js';
import type { Lease } from '../store/lease.js';

export type { Mount };

export type SnapshotKind = 'active' | 'view' | 'committed';

export interface SnapshotInfo {
  key: string;
  kind: SnapshotKind;
  parent?: string;
  labels: Record<string, string>;
  /** ISO-8601 timestamps. */
  created: string;
  updated: string;
}

export interface Usage {
  /** Bytes of file data held by this snapshot alone (not its parents). */
  size: number;
  inodes: number;
}

/**
 * An init layer of empty placeholders (e.g. /etc/hosts, /etc/resolv.conf, /etc/hostname and
 * volume mount points) that sits between the parent chain and the upper dir, so bind-mount
 * targets exist without being written to the snapshot. Never part of a commit or a diff.
 * Paths are absolute inside the rootfs.
 */
export interface InitLayer {
  files: string[];
  dirs: string[];
  /**
   * Files to mount other files on (binds of a file): made only where no layer below has the path,
   * so that the image's file, when there is one, is what a copy of the rootfs shows.
   */
  mountFiles?: string[];
}

/** Whether an init layer asks for any placeholder (none: the snapshot gets no init layer). */
export function hasPlaceholders(init: InitLayer | undefined): init is InitLayer {
  return !!init && (init.files.length > 0 || init.dirs.length > 0 || (init.mountFiles?.length ?? 0) > 0);
}

export interface SnapshotOptions {
  labels?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * The lease of the operation: an active snapshot or view made under it is temporary, removed by
   * prune once the lease's process is gone; a committed one is protected by it from prune.
   */
  lease?: Lease;
}

export interface PrepareOptions extends SnapshotOptions {
  init?: InitLayer;
}

export interface Snapshotter {
  /** Creates an active (writable) snapshot on top of the committed `parent`. */
  prepare(key: string, parent?: string, o?: PrepareOptions): Promise<Mount[]>;
  /** Creates a read-only view of the committed `parent`. */
  view(key: string, parent?: string, o?: SnapshotOptions): Promise<Mount[]>;
  /** Mounts of an existing snapshot (a committed one is returned read-only, like a view). */
  mounts(key: string): Promise<Mount[]>;
  /**
   * Turns the active snapshot `key` into the immutable committed snapshot `name`. `usage`: what
   * its layer holds, when the caller has just measured it (a diff's pack); else it is measured.
   */
  commit(name: string, key: string, o?: SnapshotOptions & { usage?: Usage }): Promise<void>;
  /** Removes a snapshot; refuses one that still has children. */
  remove(key: string): Promise<void>;
  stat(key: string): Promise<SnapshotInfo>;
  usage(key: string): Promise<Usage>;
  walk(fn: (i: SnapshotInfo) => void | Promise<void>): Promise<void>;
  /**
   * The directory holding this snapshot's own changes: the upper dir of an active snapshot
   * (where a diff is read and COPY may write), or the content of a committed one (read only).
   */
  upperDir(key: string): Promise<string>;
}

/** The xattr overlayfs marks an opaque directory with (`user.` in a user namespace). */
export type OpaqueXattr = 'trusted.overlay.opaque' | 'user.overlay.opaque';

/** What the kernel's overlayfs can do for a snapshotter root (probe.ts finds it out). */
export interface ProbeResult {
  /** 2 since `volatile` is probed: a probe.json of version 1 is made again. */
  version: 2;
  kernel: string;
  uid: number;
  /** True when not in the initial user namespace. */
  userNamespace: boolean;
  supported: boolean;
  /** Why overlay is unsupported (the mount error), when it is. */
  reason?: string;
  /** More than one lowerdir accepted (needed for any stack deeper than one layer). */
  multipleLowers: boolean;
  /** `userxattr` must be passed (rootless overlay). */
  userxattr: boolean;
  opaqueXattr: OpaqueXattr;
  /** Extra options for every overlay mount, e.g. ['index=off', 'redirect_dir=off', 'metacopy=off']. */
  options: string[];
  /**
   * The kernel takes overlay's `volatile` (Linux 5.10): a mount so made does not flush its upper
   * file system when it ends, so a build step can flush it beside the layer's hashing instead.
   */
  volatile: boolean;
  checkedAt: string;
}
