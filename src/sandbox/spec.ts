/**
 * The sandbox specification: a strict subset of the OCI runtime-spec `config.json` vocabulary, so
 * that a runc/crun backend can consume the same data (see oci-config.ts). Snapshotters return
 * `Mount[]` and never mount; the runner consumes them.
 */

export interface Mount {
  /**
   * `fuse.fuse-overlayfs` is a snapshotter's rootfs that a userspace daemon serves: the host
   * mounts it (snapshots/mount.ts) and the sandbox gets a bind of it, never this entry itself.
   */
  type: 'overlay' | 'bind' | 'tmpfs' | 'proc' | 'sysfs' | 'devpts' | 'mqueue' | 'fuse.fuse-overlayfs';
  source: string;
  target?: string;
  options: string[];
  /**
   * Directory the mount is performed from: overlay snapshotters give RELATIVE lowerdir/upperdir/
   * workdir paths (resolved against `<overlay root>/snapshots`) to stay under the mount-data
   * page limit; the helper chdir()s here before mount(2).
   */
  cwd?: string;
}

export interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

export interface Rlimit {
  /** runtime-spec name, e.g. `RLIMIT_NOFILE`. */
  type: string;
  soft: number;
  hard: number;
}

/** A device node to make in the container's /dev (runtime-spec `linux.devices`). */
export interface Device {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export type NamespaceKind = 'user' | 'mount' | 'pid' | 'ipc' | 'uts' | 'net' | 'cgroup';

import type { SeccompProfile } from './seccomp/profile.js';

export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  noNewPrivileges?: boolean;
  rlimits?: Rlimit[];
  /** Capabilities kept (names like `CAP_CHOWN`); default: Docker's default set. */
  capabilities?: string[];
  /** Allocate a pseudo-terminal for stdin/stdout/stderr (`-t`). */
  terminal?: boolean;
}

export interface SandboxSpec {
  process: ProcessSpec;
  /** Mounts that make up `/` (straight from Snapshotter.prepare()); mounted in order on the rootfs dir. */
  rootfs: Mount[];
  mounts: (Mount & { destination: string })[];
  namespaces: NamespaceKind[];
  uidMappings?: IdMap[];
  gidMappings?: IdMap[];
  /**
   * With a user namespace (as root): the rootfs's layers are idmapped mounts through the
   * mappings, so files owned by 0 in the image are the container root's; an overlay's upper dir
   * is not, so what the container writes is owned on the host by the mapped ids.
   */
  rootfsIdmap?: boolean;
  hostname?: string;
  /** NIS domain name of the uts namespace (`--domainname`). */
  domainname?: string;
  readonlyRootfs?: boolean;
  /** Paths hidden (bind of /dev/null, or an empty read-only tmpfs for dirs). Omitted: DEFAULT_MASKED_PATHS. */
  maskedPaths?: string[];
  /** Paths remounted read-only. Omitted: DEFAULT_READONLY_PATHS. */
  readonlyPaths?: string[];
  /** Join this network namespace (e.g. /run/netns/x) instead of creating one. */
  netnsPath?: string;
  /** Pid and ipc namespaces to join (`--pid`/`--ipc container:X`); 'pid'/'ipc' are then not in `namespaces`. */
  pidnsPath?: string;
  ipcnsPath?: string;
  /** An interface of the joined namespace (netnsPath) that the sandbox gives its address and default route. */
  netIface?: { name: string; address: string; prefixLength: number; gateway: string };
  /** cgroup dirs the process is placed in before exec (v1: one per controller; v2: one). */
  cgroupPaths?: string[];
  /** A minimal reaper runs as pid 1 and the app as its child (`--init`). */
  init?: boolean;
  /**
   * The syscall filter: a Docker seccomp profile, Docker's default when omitted, none when false
   * (`--security-opt seccomp=unconfined`).
   */
  seccomp?: false | SeccompProfile;
  /** Device nodes made in /dev besides the standard ones (`--device`, `--privileged`). */
  devices?: Device[];
  /** `--privileged`: /sys writable (the caller gives every capability and device, no filter, no masks). */
  privileged?: boolean;
  /** Device cgroup rules for runtimes that apply them from config.json (`linux.resources.devices`). */
  deviceRules?: string[];
  /**
   * `chroot`: the namespaces, /proc, /sys and masks that can be made are, the rest is done
   * without; the root is pivoted, or chrooted where pivot_root is refused (buildah's
   * `--isolation chroot`, for unprivileged pods).
   * Default `oci`: all of it or a failure.
   */
  isolation?: Isolation;
}

/** How a process is isolated: the full set (pivot_root, own /proc) or as much as the host allows. */
export type Isolation = 'oci' | 'chroot';

/** Default masked paths (as Docker's, moby oci/defaults.go). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** runc's default allowed devices, which Docker keeps (null, zero, full, random, urandom, tty, ptmx, pts, tun; mknod of any). */
export const DEFAULT_DEVICE_RULES: readonly string[] = [
  'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:8 rwm', 'c 1:7 rwm', 'c 5:0 rwm', 'c 1:5 rwm', 'c 1:9 rwm',
  'c 136:* rwm', 'c 5:2 rwm', 'c 10:200 rwm',
];

/** Default read-only paths. */
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];
