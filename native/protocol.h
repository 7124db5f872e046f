/*
 * Wire protocol between src/sandbox/native.ts and the sandbox helper.
 *
 * fd 3 (bootstrap, read to EOF): a flat stream of records {u16 tag; u32 len; u8 value[len]}
 * in host byte order (the helper always runs on the same machine as Node). Strings are not
 * NUL-terminated on the wire. Repeated tags (ARGV, ENV, ...) keep their order.
 *
 * fd 4 (status, CLOEXEC): records {u8 stage; i32 err; u32 len; char msg[len]}. A stage below
 * REC_FIRST_INFO is an error record (err = errno, msg = "syscall: detail") and the helper
 * exits 1; the others carry a value in `err`. Order: REC_PID (and REC_MONITOR when detached)
 * once the container process exists; then either one error record, or — when execve worked —
 * REC_EXECED (foreground run: when the process exec'd, for the build's trace) and REC_EXIT with
 * the wait status (foreground, exec) or plain EOF (detached: the monitor closes fd 4 right after
 * the execve, so EOF without an error record means the process is running).
 * src/sandbox/protocol.ts parses this header in a test to check that its constants match.
 *
 * fd 5 (optional control stream, terminal mode, announced by TAG_CONTROL): further WINSIZE
 * records while the process runs; each resizes the terminal.
 *
 * Every other descriptor the helper inherits is closed before it does anything else.
 */
#ifndef IMGBUILD_PROTOCOL_H
#define IMGBUILD_PROTOCOL_H

/* Bootstrap tags. u32/u64 values are host-endian. */
enum boot_tag {
  TAG_MODE = 1,           /* u32: MODE_* */
  TAG_ARGV = 2,           /* string, repeated */
  TAG_ENV = 3,            /* string "K=V", repeated */
  TAG_CWD = 4,            /* string */
  TAG_UID = 5,            /* u32 */
  TAG_GID = 6,            /* u32 */
  TAG_ADDGID = 7,         /* u32, repeated */
  TAG_NS_FLAGS = 8,       /* u32: CLONE_NEW* flags of namespaces to create */
  TAG_UIDMAP = 9,         /* string: uid_map contents ("cid hid size\n"...) */
  TAG_GIDMAP = 10,        /* string: gid_map contents */
  TAG_ROOTFS_MOUNT = 11,  /* mount record (below), destination relative to the rootfs */
  TAG_MOUNT = 12,         /* mount record, destination inside the container */
  TAG_HOSTNAME = 13,      /* string */
  TAG_RLIMIT = 14,        /* u32 resource; u32 pad; u64 soft; u64 hard */
  TAG_CAPS = 15,          /* u64: bit mask of capabilities kept */
  TAG_NO_NEW_PRIVS = 16,  /* u32 0/1 */
  TAG_MASKED = 17,        /* string path, repeated */
  TAG_READONLY = 18,      /* string path, repeated */
  TAG_NETNS_PATH = 19,    /* string: network namespace to join */
  TAG_CGROUP_PATH = 20,   /* string: cgroup dir; the process is written to its cgroup.procs */
  TAG_INIT = 21,          /* u32 0/1: minimal reaper as pid 1 */
  TAG_TERMINAL = 22,      /* u32 0/1 */
  TAG_READONLY_ROOTFS = 23, /* u32 0/1 */
  TAG_ROOTFS_DIR = 24,    /* string: host dir the rootfs is mounted on (private mount ns) */
  TAG_TARGET_PID = 25,    /* u32: exec mode: host pid whose namespaces are joined */
  TAG_LOG_PATH = 26,      /* string: detached mode: stdout+stderr file */
  TAG_STATUS_PATH = 27,   /* string: detached mode: JSON exit status file */
  TAG_WINSIZE = 28,       /* u16 rows; u16 cols: initial terminal size */
  TAG_SECCOMP = 29,       /* struct sock_filter[]: the syscall filter to install */
  TAG_CONTROL = 30,       /* u32 0/1: fd 5 is the control stream (otherwise it is closed) */
  TAG_PRIVILEGED = 31,    /* u32 0/1: /sys writable (--privileged) */
  TAG_DEVICE = 32,        /* {u32 mode; u32 major; u32 minor; u32 uid; u32 gid; char path[]}: a device node to make */
  TAG_EXEC_DETACHED = 33, /* u32 0/1: exec mode: the helper stays as the process's monitor, detached (exec -d) */
  TAG_DOMAINNAME = 34,    /* string: NIS domain name of the uts namespace */
  TAG_PIDNS_PATH = 36,    /* string: pid namespace to join (children of the helper start in it) */
  TAG_IPCNS_PATH = 37,    /* string: ipc namespace to join */
  TAG_NET_IFACE = 35,     /* string "IFNAME ADDR PREFIX GATEWAY": an interface of the joined netns to configure (IPv4) */
  TAG_STDIN_PATH = 38,    /* string: detached mode: a FIFO the monitor makes and copies into the container's stdin */
  TAG_ROOTFS_IDMAP = 39,  /* u32 0/1: the rootfs's layers (overlay lowers, a bind's tree) are idmapped through UIDMAP/GIDMAP */
  TAG_LIFELINE = 40,      /* u32 1: fd 6 is held (close-on-exec) until the container has exited; a network helper watching its peer then ends */
  TAG_CHROOT = 41,        /* u32 0/1: chroot isolation: namespaces, /proc, /sys and masks as far as allowed; pivot_root, else chroot(2) */
};

/* Mount record value: u32 flags; u32 propagation; then five NUL-terminated strings:
 * type, source, destination, data, cwd (cwd may be empty). Flags are MS_* values computed by
 * the TS side from the runtime-spec option names. */

enum mode {
  MODE_RUN = 0,
  MODE_DETACHED = 1,
  MODE_EXEC = 2,
};

/* Status record stages. */
enum stage {
  STAGE_PARENT = 1, /* the helper itself: bootstrap, clone, id maps, cgroups, monitor */
  STAGE_CHILD = 2,  /* namespace setup in the child (sync, unshare, setns) */
  STAGE_INIT = 3,   /* the container's init: mounts, pivot_root, credentials, execve */
  REC_FIRST_INFO = 64,
  REC_PID = 64,     /* err = host pid of the container process (sent before execve) */
  REC_MONITOR = 65, /* err = host pid of the detached monitor */
  REC_EXIT = 66,    /* err = wait status of the container process */
  REC_EXECED = 67,  /* err = 0; msg = CLOCK_MONOTONIC nanoseconds (decimal) when execve succeeded */
};

/* Sync bytes on the internal parent→child pipe (uid/gid-map handshake). */
enum sync_msg {
  SYNC_USERMAP_PLS = 0x40, /* child → parent: write my maps (implicit: sent by clone) */
  SYNC_USERMAP_ACK = 0x41, /* parent → child: maps and cgroups done, go on */
};

#endif
