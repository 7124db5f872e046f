/*
 * imgbuild-sandbox: creates the namespaces, mounts and credentials of one container process and
 * execs it. Exec'd by src/sandbox/native.ts with fd 3 = bootstrap records (read to EOF) and
 * fd 4 = status records (see protocol.h). One program, no JSON parser, no libraries.
 *
 * Process layout (foreground):  node ─ helper (STAGE_PARENT, monitor) ─ container init
 *   detached:  node ─ helper (exits) ;  monitor (setsid, orphaned) ─ container init
 *   exec:      node ─ helper (setns into the target) ─ process
 * The container init runs STAGE_CHILD (namespace sync) then STAGE_INIT (rootfs, pivot_root,
 * credentials, execve). Its error records travel over a CLOEXEC pipe to the monitor, which
 * forwards them to fd 4: an empty pipe at EOF means execve succeeded.
 *
 * As root with a user namespace the rootfs is mounted by the helper in a private mount
 * namespace before the clone (overlay needs host privileges for trusted.* xattrs). Rootless
 * (not root on the host) everything, the rootfs included, is mounted inside the user namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <arpa/inet.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stddef.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "idmap.h"
#include "protocol.h"

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define cleanup_free __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))
static inline void cleanup_freep(void *p) { free(*(void **)p); }
static inline void cleanup_closep(int *fd) {
  if (*fd >= 0) close(*fd);
}

/* ---------- status records and bail ---------- */

static int g_stage = STAGE_PARENT;
static int g_errfd = 4;      /* where error records go: fd 4, or the exec pipe in children */
static pid_t g_kill_on_bail; /* child to kill when the parent bails */
static int g_ctl = -1;       /* optional control stream (fd 5): WINSIZE records while running */
static bool g_rootless;      /* not root on the host: everything happens inside the user namespace */

/* /proc/self/setgroups says "deny": a user namespace whose gid map was written unprivileged. */
static bool setgroups_denied(void) {
  char buf[16] = {0};
  int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 && strncmp(buf, "deny", 4) == 0;
}

static void send_rec(int fd, int stage, int32_t value, const char *msg) {
  char buf[4096];
  uint32_t len = msg ? (uint32_t)strnlen(msg, sizeof buf - 9) : 0;
  buf[0] = (char)stage;
  memcpy(buf + 1, &value, 4);
  memcpy(buf + 5, &len, 4);
  if (len) memcpy(buf + 9, msg, len);
  /* One write below PIPE_BUF: records never interleave. */
  ssize_t r;
  do r = write(fd, buf, 9 + len);
  while (r < 0 && errno == EINTR);
}

/* Writes one error record naming the stage, errno and "syscall: detail", then _exit(1). */
__attribute__((format(printf, 2, 3), noreturn)) static void bail_errno(int err, const char *fmt, ...) {
  char msg[3000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (g_kill_on_bail > 0) kill(g_kill_on_bail, SIGKILL);
  send_rec(g_errfd, g_stage, err, msg);
  _exit(1);
}
#define bail(...) bail_errno(errno, __VA_ARGS__)

static void xwrite_all(int fd, const void *p, size_t n, const char *what) {
  const char *c = p;
  while (n) {
    ssize_t r = write(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) bail("write: %s", what);
    c += r;
    n -= (size_t)r;
  }
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) bail_errno(ENOMEM, "realloc: out of memory");
  return q;
}

/* ---------- bootstrap ---------- */

struct mnt {
  uint32_t flags, prop;
  char *type, *src, *dst, *data, *cwd;
  int tree; /* a bind's source, cloned by the helper before the clone (open_tree), or -1 */
};
struct rl {
  uint32_t res;
  uint64_t soft, hard;
};

struct cfg {
  uint32_t mode;
  char **argv; size_t nargv;
  char **env; size_t nenv;
  char *cwd;
  uint32_t uid, gid;
  gid_t *addgids; size_t naddgids;
  uint32_t nsflags;
  char *uidmap, *gidmap;
  struct mnt *rootfs; size_t nrootfs;
  struct mnt *mounts; size_t nmounts;
  char *hostname;
  char *domainname;
  struct rl *rl; size_t nrl;
  uint64_t caps;
  bool nnp, init, terminal, ro_rootfs, privileged, exec_detached;
  struct dev { uint32_t mode, major, minor, uid, gid; char *path; } *devs; size_t ndevs;
  struct sock_filter *seccomp; size_t nseccomp;
  char **masked; size_t nmasked;
  char **ro; size_t nro;
  char *netns;
  char *net_iface;
  char *pidns, *ipcns;
  char **cgroups; size_t ncgroups;
  char *rootdir;
  uint32_t target;
  char *logpath, *statuspath, *stdinpath;
  uint16_t rows, cols;
  bool control;
  bool rootfs_idmap;
  bool lifeline;
  bool chroot; /* chroot isolation: what cannot be made is done without (see chroot_namespaces) */
  bool own_userns; /* chroot isolation as root: a user namespace added (identity map), the rootfs mounted inside */
};

#define PUSH(arr, n, v)                                     \
  do {                                                     \
    (arr) = xrealloc((arr), ((n) + 2) * sizeof *(arr));    \
    (arr)[(n)++] = (v);                                    \
    memset(&(arr)[(n)], 0, sizeof *(arr));                 \
  } while (0)

static char *dupstr(const char *p, uint32_t len) {
  char *s = xrealloc(NULL, (size_t)len + 1);
  memcpy(s, p, len);
  s[len] = 0;
  return s;
}

static uint32_t get_u32(const char *v, uint32_t len, uint16_t tag) {
  uint32_t x;
  if (len < 4) bail_errno(EINVAL, "bootstrap: tag %u too short", tag);
  memcpy(&x, v, 4);
  return x;
}

static void parse_mount(struct mnt *m, const char *v, uint32_t len) {
  if (len < 8) bail_errno(EINVAL, "bootstrap: short mount record");
  memcpy(&m->flags, v, 4);
  memcpy(&m->prop, v + 4, 4);
  m->tree = -1;
  char *s = dupstr(v + 8, len - 8), *end = s + (len - 8);
  char **fields[] = {&m->type, &m->src, &m->dst, &m->data, &m->cwd};
  for (size_t i = 0; i < 5; i++) {
    if (s >= end) bail_errno(EINVAL, "bootstrap: mount record has %zu of 5 fields", i);
    *fields[i] = s;
    s += strlen(s) + 1;
  }
}

static void read_bootstrap(struct cfg *c) {
  size_t cap = 65536, n = 0;
  char *buf = xrealloc(NULL, cap);
  for (;;) {
    if (n == cap) buf = xrealloc(buf, cap *= 2);
    ssize_t r = read(3, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) bail("read: bootstrap fd 3");
    if (r == 0) break;
    n += (size_t)r;
  }
  close(3);
  memset(c, 0, sizeof *c);
  c->caps = UINT64_MAX;
  for (size_t off = 0; off < n;) {
    uint16_t tag;
    uint32_t len;
    if (n - off < 6) bail_errno(EINVAL, "bootstrap: truncated record header");
    memcpy(&tag, buf + off, 2);
    memcpy(&len, buf + off + 2, 4);
    off += 6;
    if (n - off < len) bail_errno(EINVAL, "bootstrap: truncated value of tag %u", tag);
    const char *v = buf + off;
    off += len;
    switch (tag) {
    case TAG_MODE: c->mode = get_u32(v, len, tag); break;
    case TAG_ARGV: PUSH(c->argv, c->nargv, dupstr(v, len)); break;
    case TAG_ENV: PUSH(c->env, c->nenv, dupstr(v, len)); break;
    case TAG_CWD: c->cwd = dupstr(v, len); break;
    case TAG_UID: c->uid = get_u32(v, len, tag); break;
    case TAG_GID: c->gid = get_u32(v, len, tag); break;
    case TAG_ADDGID: PUSH(c->addgids, c->naddgids, (gid_t)get_u32(v, len, tag)); break;
    case TAG_NS_FLAGS: c->nsflags = get_u32(v, len, tag); break;
    case TAG_UIDMAP: c->uidmap = dupstr(v, len); break;
    case TAG_GIDMAP: c->gidmap = dupstr(v, len); break;
    case TAG_ROOTFS_MOUNT:
    case TAG_MOUNT: {
      struct mnt m;
      parse_mount(&m, v, len);
      if (tag == TAG_MOUNT) PUSH(c->mounts, c->nmounts, m);
      else PUSH(c->rootfs, c->nrootfs, m);
      break;
    }
    case TAG_HOSTNAME: c->hostname = dupstr(v, len); break;
    case TAG_DOMAINNAME: c->domainname = dupstr(v, len); break;
    case TAG_RLIMIT: {
      struct rl r;
      if (len < 24) bail_errno(EINVAL, "bootstrap: short rlimit record");
      memcpy(&r.res, v, 4);
      memcpy(&r.soft, v + 8, 8);
      memcpy(&r.hard, v + 16, 8);
      PUSH(c->rl, c->nrl, r);
      break;
    }
    case TAG_CAPS:
      if (len < 8) bail_errno(EINVAL, "bootstrap: short caps record");
      memcpy(&c->caps, v, 8);
      break;
    case TAG_NO_NEW_PRIVS: c->nnp = get_u32(v, len, tag) != 0; break;
    case TAG_MASKED: PUSH(c->masked, c->nmasked, dupstr(v, len)); break;
    case TAG_READONLY: PUSH(c->ro, c->nro, dupstr(v, len)); break;
    case TAG_NETNS_PATH: c->netns = dupstr(v, len); break;
    case TAG_NET_IFACE: c->net_iface = dupstr(v, len); break;
    case TAG_PIDNS_PATH: c->pidns = dupstr(v, len); break;
    case TAG_IPCNS_PATH: c->ipcns = dupstr(v, len); break;
    case TAG_CGROUP_PATH: PUSH(c->cgroups, c->ncgroups, dupstr(v, len)); break;
    case TAG_INIT: c->init = get_u32(v, len, tag) != 0; break;
    case TAG_TERMINAL: c->terminal = get_u32(v, len, tag) != 0; break;
    case TAG_READONLY_ROOTFS: c->ro_rootfs = get_u32(v, len, tag) != 0; break;
    case TAG_ROOTFS_DIR: c->rootdir = dupstr(v, len); break;
    case TAG_TARGET_PID: c->target = get_u32(v, len, tag); break;
    case TAG_LOG_PATH: c->logpath = dupstr(v, len); break;
    case TAG_STDIN_PATH: c->stdinpath = dupstr(v, len); break;
    case TAG_STATUS_PATH: c->statuspath = dupstr(v, len); break;
    case TAG_SECCOMP:
      /* A BPF program compiled by src/sandbox/seccomp/bpf.ts (struct sock_filter[]). */
      if (len == 0 || len % sizeof(struct sock_filter) || len / sizeof(struct sock_filter) > BPF_MAXINSNS)
        bail_errno(EINVAL, "bootstrap: seccomp program of %u bytes", len);
      c->seccomp = xrealloc(NULL, len);
      memcpy(c->seccomp, v, len);
      c->nseccomp = len / sizeof(struct sock_filter);
      break;
    case TAG_CONTROL: c->control = get_u32(v, len, tag) != 0; break;
    case TAG_ROOTFS_IDMAP: c->rootfs_idmap = get_u32(v, len, tag) != 0; break;
    case TAG_LIFELINE: c->lifeline = get_u32(v, len, tag) != 0; break;
    case TAG_PRIVILEGED: c->privileged = get_u32(v, len, tag) != 0; break;
    case TAG_CHROOT: c->chroot = get_u32(v, len, tag) != 0; break;
    case TAG_EXEC_DETACHED: c->exec_detached = get_u32(v, len, tag) != 0; break;
    case TAG_DEVICE: {
      struct dev d;
      if (len <= 20) bail_errno(EINVAL, "bootstrap: short device record");
      memcpy(&d, v, 20);
      d.path = dupstr(v + 20, len - 20);
      if (d.path[0] != '/') bail_errno(EINVAL, "bootstrap: device path %s is not absolute", d.path);
      PUSH(c->devs, c->ndevs, d);
      break;
    }
    case TAG_WINSIZE:
      if (len < 4) bail_errno(EINVAL, "bootstrap: short winsize record");
      memcpy(&c->rows, v, 2);
      memcpy(&c->cols, v + 2, 2);
      break;
    default: bail_errno(EINVAL, "bootstrap: unknown tag %u", tag);
    }
  }
  free(buf);
  if (c->nargv == 0) bail_errno(EINVAL, "bootstrap: no ARGV");
  if (!c->cwd) c->cwd = dupstr("/", 1);
  if (c->mode != MODE_EXEC) {
    if (!c->rootdir) bail_errno(EINVAL, "bootstrap: no ROOTFS_DIR");
    if (c->nrootfs == 0) bail_errno(EINVAL, "bootstrap: no ROOTFS_MOUNT");
    /* Without its own uts namespace, sethostname would rename the host. */
    if ((c->hostname || c->domainname) && !(c->nsflags & CLONE_NEWUTS) && !c->chroot) bail_errno(EINVAL, "sethostname: a hostname needs a uts namespace");
  } else if (c->target == 0) {
    bail_errno(EINVAL, "bootstrap: exec mode without TARGET_PID");
  }
  if (c->mode == MODE_DETACHED && (!c->logpath || !c->statuspath))
    bail_errno(EINVAL, "bootstrap: detached mode needs LOG_PATH and STATUS_PATH");
}

/* ---------- small helpers ---------- */

static void write_file(const char *path, const char *data, size_t len) {
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) bail("open: %s", path);
  ssize_t r = write(fd, data, len);
  if (r < 0 || (size_t)r != len) bail("write: %s", path);
}

/* Opens `path` inside `rootfd` as if rootfd were "/": symlinks (absolute or `..`) never lead out. */
static int open_in_root(int rootfd, const char *path, int flags) {
  struct open_how how = {.flags = (uint64_t)(O_PATH | O_CLOEXEC | flags),
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  while (*path == '/') path++;
  if (!*path) path = ".";
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Like open_in_root, creating what is missing (dirs; a file at the end when `file`), as
 * securejoin's MkdirAll does: the path is walked one component at a time inside the root; a
 * dangling symlink is replaced by its target, read as if the rootfs were "/" (so an absolute or
 * `..` target stays inside), and each missing component is made with mkdirat/O_EXCL|O_NOFOLLOW
 * relative to a parent already resolved inside the root. Nothing is ever created outside. */
static int mkpath_in_root(int rootfd, const char *path, bool file) {
  char todo[PATH_MAX];
  snprintf(todo, sizeof todo, "%s", path);
  for (int hops = 0; hops < 40; hops++) {
    int fd = open_in_root(rootfd, todo, 0);
    if (fd >= 0 || errno != ENOENT) return fd;
    char done[PATH_MAX] = "", next[PATH_MAX];
    bool restarted = false;
    for (char *comp = todo, *end; *comp && !restarted; comp = end) {
      while (*comp == '/') comp++;
      end = strchrnul(comp, '/');
      bool last = *end == 0 || end[strspn(end, "/")] == 0;
      char name[NAME_MAX + 1];
      size_t nl = (size_t)(end - comp);
      if (nl == 0) break;
      if (nl > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
      }
      memcpy(name, comp, nl);
      name[nl] = 0;
      char cand[PATH_MAX];
      int cl = snprintf(cand, sizeof cand, "%s/%s", done, name);
      if (cl < 0 || (size_t)cl >= sizeof cand) {
        errno = ENAMETOOLONG;
        return -1;
      }
      int c = open_in_root(rootfd, cand, 0);
      if (c >= 0) {
        close(c);
        memcpy(done, cand, sizeof done);
        continue;
      }
      if (errno != ENOENT) return -1;
      cleanup_close int parent = open_in_root(rootfd, done, O_DIRECTORY);
      if (parent < 0) return -1;
      struct stat st;
      if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t tl = readlinkat(parent, name, target, sizeof target - 1);
        if (tl < 0) return -1;
        target[tl] = 0;
        int n = snprintf(next, sizeof next, "%s%s%s%s", target[0] == '/' ? "" : done, target[0] == '/' ? "" : "/",
                         target, end);
        if (n < 0 || (size_t)n >= sizeof next) {
          errno = ENAMETOOLONG;
          return -1;
        }
        memcpy(todo, next, sizeof todo);
        restarted = true;
        break;
      }
      if (last && file) {
        int f = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST) return -1;
        if (f >= 0) close(f);
      } else if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST) {
        return -1;
      }
      memcpy(done, cand, sizeof done);
    }
    if (!restarted) return open_in_root(rootfd, todo, 0);
  }
  errno = ELOOP;
  return -1;
}

/* Whether the comma-separated option list `data` has `opt`. */
static bool has_option(const char *data, const char *opt) {
  size_t n = strlen(opt);
  for (const char *p = data; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == 0)) return true;
  return false;
}

static void fdpath(char *buf, size_t n, int fd) { snprintf(buf, n, "/proc/self/fd/%d", fd); }

/* Mount flags a remount must keep: in a user namespace the kernel refuses to clear locked ones. */
static unsigned long kept_flags(const char *path) {
  struct statvfs s;
  if (statvfs(path, &s) < 0) return 0;
  unsigned long f = 0;
  if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
  if (s.f_flag & ST_RDONLY) f |= MS_RDONLY;
  return f;
}

static void remount_bind(const char *path, unsigned long flags) {
  unsigned long f = (flags | kept_flags(path)) & ~(unsigned long)(MS_REC | MS_BIND);
  if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | f, NULL) < 0) bail("mount: remount %s", path);
}

/* ---------- mounts ---------- */

/* `idmap_fd` >= 0: the layers are shown through that user namespace's mapping (idmap.h): each
 * overlay lowerdir, or a bind's tree; an overlay's upper dir is not, so what the container writes
 * is owned on the host by its mapped ids. */
static void do_rootfs_mounts(const struct cfg *c, int idmap_fd) {
  for (size_t i = 0; i < c->nrootfs; i++) {
    const struct mnt *m = &c->rootfs[i];
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s/%s", c->rootdir, m->dst);
    if (m->cwd[0] && chdir(m->cwd) < 0) bail("chdir: rootfs mount cwd %s", m->cwd);
    /* nodev: device nodes in the image or made with mknod are inert; /dev is a separate tmpfs
     * holding bind mounts of the few host devices a container gets. --privileged, whose device
     * cgroup allows every device (as Docker's), keeps device nodes usable. */
    unsigned long flags = m->flags | (c->privileged ? 0 : MS_NODEV);
    int r;
    const char *what = NULL;
    if ((flags & MS_BIND) && idmap_fd >= 0) {
      cleanup_close int t = idmap_tree(m->src, idmap_fd, &what);
      if (t < 0) bail("%s: rootfs %s", what, m->src);
      r = (int)syscall(SYS_move_mount, t, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
      if (r == 0) remount_bind(target, flags);
    } else if (flags & MS_BIND) {
      r = mount(m->src, target, NULL, MS_BIND | (flags & MS_REC), NULL);
      if (r == 0) remount_bind(target, flags);
    } else if (idmap_fd >= 0 && strcmp(m->type, "overlay") == 0) {
      int fds[512];
      size_t nfds = 0;
      cleanup_free char *data = idmap_overlay_data(m->data, idmap_fd, fds, sizeof fds / sizeof *fds, &nfds, &what);
      if (!data) bail("%s: rootfs layer under %s", what, m->cwd);
      r = mount(m->src, target, m->type, flags, data);
      int e = errno;
      for (size_t j = 0; j < nfds; j++) close(fds[j]);
      errno = e;
    } else {
      r = mount(m->src, target, m->type, flags, m->data[0] ? m->data : NULL);
    }
    if (r < 0) bail("mount: rootfs %s %s on %s", m->type, m->src, target);
    if (chdir("/") < 0) bail("chdir: /");
  }
}

static void mount_in_root(int rootfd, const struct mnt *m, const char *data_override) {
  bool bind = (m->flags & MS_BIND) != 0, file = false;
  if (bind) {
    struct stat st;
    if (m->cwd[0] && chdir(m->cwd) < 0) bail("chdir: mount cwd %s", m->cwd);
    if ((m->tree >= 0 ? fstat(m->tree, &st) : stat(m->src, &st)) < 0) bail("stat: bind source %s", m->src);
    file = !S_ISDIR(st.st_mode);
  }
  cleanup_close int tfd = mkpath_in_root(rootfd, m->dst, file);
  if (tfd < 0) bail("mkdir: mount target %s", m->dst);
  char tpath[64];
  fdpath(tpath, sizeof tpath, tfd);
  if (m->cwd[0] && chdir(m->cwd) < 0) bail("chdir: mount cwd %s", m->cwd);
  const char *data = data_override ? data_override : (m->data[0] ? m->data : NULL);
  if (bind && m->tree >= 0) {
    if (syscall(SYS_move_mount, m->tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      bail("move_mount: bind %s on %s", m->src, m->dst);
  } else if (bind) {
    if (mount(m->src, tpath, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
      bail("mount: bind %s on %s", m->src, m->dst);
  } else if (mount(m->src, tpath, m->type, m->flags, data) < 0) {
    bail("mount: %s on %s", m->type, m->dst);
  }
  if (chdir("/") < 0) bail("chdir: /");
  if ((bind && (m->flags & ~(uint32_t)(MS_BIND | MS_REC))) || m->prop) {
    /* Reopen: the old fd names the dir under the new mount, not the mount's root. */
    cleanup_close int nfd = open_in_root(rootfd, m->dst, 0);
    if (nfd < 0) bail("open: mount target %s", m->dst);
    fdpath(tpath, sizeof tpath, nfd);
    if (bind && (m->flags & ~(uint32_t)(MS_BIND | MS_REC))) remount_bind(tpath, m->flags);
    if (m->prop && mount(NULL, tpath, NULL, m->prop, NULL) < 0) bail("mount: propagation of %s", m->dst);
  }
}

static void std_mount(int rootfd, const char *type, const char *src, const char *dst, unsigned long flags,
                      const char *data) {
  struct mnt m = {.flags = (uint32_t)flags, .prop = 0, .type = (char *)type, .src = (char *)src,
                  .dst = (char *)dst, .data = (char *)(data ? data : ""), .cwd = (char *)"", .tree = -1};
  mount_in_root(rootfd, &m, NULL);
}

static const struct {
  const char *name;
  unsigned major, minor;
} dev_nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

/* The container's device nodes are its own inodes, as runc's are, so chmod or chown inside
 * never changes the host's /dev (default capabilities include CAP_FOWNER and CAP_CHOWN). They
 * are made on a small tmpfs that allows devices and bound one by one onto files in /dev, which
 * stays nodev: a node the container makes there with CAP_MKNOD cannot be opened. The staging
 * tmpfs is unmounted again; the binds keep its nodes. In a user namespace mknod is refused and
 * the host's nodes are bound instead (the container's root does not own them there). */
static void setup_dev_nodes(int rootfd, const struct cfg *c) {
  cleanup_close int devfd = open_in_root(rootfd, "/dev", O_DIRECTORY);
  if (devfd < 0) bail("open: /dev");
  if (mkdirat(devfd, ".nodes", 0700) < 0) bail("mkdir: /dev/.nodes");
  cleanup_close int stage = open_in_root(rootfd, "/dev/.nodes", O_DIRECTORY);
  if (stage < 0) bail("open: /dev/.nodes");
  char sp[64];
  fdpath(sp, sizeof sp, stage);
  if (mount("tmpfs", sp, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=700,size=4k") < 0) bail("mount: tmpfs for device nodes");
  cleanup_close int nodes = open_in_root(rootfd, "/dev/.nodes", O_DIRECTORY);
  if (nodes < 0) bail("open: /dev/.nodes");
  fdpath(sp, sizeof sp, nodes);
  bool own = true;
  for (size_t i = 0; i < sizeof dev_nodes / sizeof *dev_nodes && own; i++) {
    const char *n = dev_nodes[i].name;
    if (mknodat(nodes, n, S_IFCHR | 0666, makedev(dev_nodes[i].major, dev_nodes[i].minor)) < 0) {
      if (errno != EPERM) bail("mknod: /dev/%s", n);
      own = false;
    } else if (fchmodat(nodes, n, 0666, 0) < 0) {
      bail("chmod: /dev/%s", n);
    }
  }
  for (size_t i = 0; i < sizeof dev_nodes / sizeof *dev_nodes; i++) {
    const char *n = dev_nodes[i].name;
    char src[PATH_MAX], dst[32];
    snprintf(dst, sizeof dst, "/dev/%s", n);
    if (own) snprintf(src, sizeof src, "%s/%s", sp, n);
    else snprintf(src, sizeof src, "/dev/%s", n);
    std_mount(rootfd, "bind", src, dst, MS_BIND, NULL);
  }
  /* --device and --privileged: made and bound the same way, each at its own path. */
  for (size_t i = 0; i < c->ndevs; i++) {
    const struct dev *d = &c->devs[i];
    char n[32], src[PATH_MAX];
    snprintf(n, sizeof n, "d%zu", i);
    if (own) {
      if (mknodat(nodes, n, d->mode, makedev(d->major, d->minor)) < 0) bail("mknod: %s", d->path);
      if (fchmodat(nodes, n, d->mode & 07777, 0) < 0) bail("chmod: %s", d->path);
      if (fchownat(nodes, n, d->uid, d->gid, 0) < 0) bail("chown: %s", d->path);
      snprintf(src, sizeof src, "%s/%s", sp, n);
    } else {
      snprintf(src, sizeof src, "%s", d->path);
    }
    std_mount(rootfd, "bind", src, d->path, MS_BIND, NULL);
  }
  if (umount2(sp, MNT_DETACH) < 0) bail("umount2: tmpfs for device nodes");
  if (unlinkat(devfd, ".nodes", AT_REMOVEDIR) < 0) bail("rmdir: /dev/.nodes");
}

static bool has_mount_at(const struct cfg *c, const char *dst) {
  for (size_t i = 0; i < c->nmounts; i++)
    if (strcmp(c->mounts[i].dst, dst) == 0) return true;
  return false;
}

static void setup_dev(int rootfd, const struct cfg *c) {
  std_mount(rootfd, "tmpfs", "tmpfs", "/dev", MS_NOSUID | (c->privileged ? 0 : MS_NODEV) | MS_STRICTATIME, "mode=755,size=65536k");
  setup_dev_nodes(rootfd, c);
  struct mnt pts = {.flags = MS_NOSUID | MS_NOEXEC, .prop = 0, .type = "devpts", .src = "devpts",
                    .dst = "/dev/pts", .data = "newinstance,ptmxmode=0666,mode=0620,gid=5", .cwd = "", .tree = -1};
  {
    /* gid=5 (tty) is refused when gid 5 is not mapped in a user namespace. */
    cleanup_close int t = mkpath_in_root(rootfd, "/dev/pts", false);
    char tp[64];
    if (t < 0) bail("mkdir: /dev/pts");
    fdpath(tp, sizeof tp, t);
    if (mount("devpts", tp, "devpts", pts.flags, pts.data) < 0 &&
        mount("devpts", tp, "devpts", pts.flags, "newinstance,ptmxmode=0666,mode=0620") < 0)
      bail("mount: devpts on /dev/pts");
  }
  /* A mount of the spec's own at /dev/shm (a sized one, say) takes the default's place, as in runc. */
  if (!has_mount_at(c, "/dev/shm"))
    std_mount(rootfd, "tmpfs", "shm", "/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  if (c->nsflags & CLONE_NEWIPC)
    std_mount(rootfd, "mqueue", "mqueue", "/dev/mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  cleanup_close int devfd = open_in_root(rootfd, "/dev", O_DIRECTORY);
  if (devfd < 0) bail("open: /dev");
  static const char *const links[][2] = {{"pts/ptmx", "ptmx"},         {"/proc/self/fd", "fd"},
                                         {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                                         {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++)
    if (symlinkat(links[i][0], devfd, links[i][1]) < 0 && errno != EEXIST) bail("symlink: /dev/%s", links[i][1]);
}

static void setup_sys(int rootfd, bool writable) {
  cleanup_close int t = mkpath_in_root(rootfd, "/sys", false);
  char tp[64];
  if (t < 0) bail("mkdir: /sys");
  fdpath(tp, sizeof tp, t);
  unsigned long f = (writable ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (mount("sysfs", tp, "sysfs", f, NULL) == 0) return;
  /* A user namespace that does not own its network namespace may not mount sysfs: bind the
   * host's read-only instead (as runc does). */
  if (errno != EPERM) bail("mount: sysfs on /sys");
  if (mount("/sys", tp, NULL, MS_BIND | MS_REC, NULL) < 0) bail("mount: bind /sys");
  cleanup_close int n = open_in_root(rootfd, "/sys", 0);
  fdpath(tp, sizeof tp, n);
  remount_bind(tp, f);
}

static void setup_mounts(const struct cfg *c) {
  cleanup_close int rootfd = open(c->rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) bail("open: rootfs dir %s", c->rootdir);
  std_mount(rootfd, "proc", "proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  setup_dev(rootfd, c);
  setup_sys(rootfd, c->privileged);
  for (size_t i = 0; i < c->nmounts; i++) mount_in_root(rootfd, &c->mounts[i], NULL);
  /* A missing working directory is created (as runc and Docker do), confined to the rootfs; if
   * that is impossible (a file in the way, read-only mount) the later chdir reports why. */
  int cwd = mkpath_in_root(rootfd, c->cwd, false);
  if (cwd >= 0) close(cwd);
}

/* crun's do_pivot: pivot_root(".", ".") stacks the old root on the new one; detach it. */
static void do_pivot(const char *rootdir) {
  cleanup_close int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) bail("open: /");
  cleanup_close int newroot = open(rootdir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0) bail("open: %s", rootdir);
  if (fchdir(newroot) < 0) bail("fchdir: new root");
  if (syscall(SYS_pivot_root, ".", ".") < 0) bail("pivot_root: %s", rootdir);
  if (fchdir(oldroot) < 0) bail("fchdir: old root");
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) bail("mount: make old root rslave");
  if (umount2(".", MNT_DETACH) < 0) bail("umount2: old root");
  if (chdir("/") < 0) bail("chdir: /");
}

static void mask_paths(const struct cfg *c) {
  for (size_t i = 0; i < c->nmasked; i++) {
    const char *p = c->masked[i];
    struct stat st;
    if (lstat(p, &st) < 0) {
      if (errno == ENOENT) continue;
      bail("stat: masked path %s", p);
    }
    if (S_ISDIR(st.st_mode)) {
      if (mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=755") < 0)
        bail("mount: mask %s", p);
    } else if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0) {
      bail("mount: mask %s", p);
    }
  }
  for (size_t i = 0; i < c->nro; i++) {
    const char *p = c->ro[i];
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
      if (errno == ENOENT) continue;
      bail("mount: bind read-only path %s", p);
    }
    remount_bind(p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  }
}

/* ---------- process credentials ---------- */

static int last_cap(void) {
  char buf[16] = {0};
  cleanup_close int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0) return 40;
  return atoi(buf);
}

static void drop_caps(uint64_t keep, int lastcap) {
  for (int cap = 0; cap <= lastcap && cap < 64; cap++)
    if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      bail("prctl: PR_CAPBSET_DROP %d", cap);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    bail("prctl: PR_CAP_AMBIENT_CLEAR_ALL");
}

static void set_caps(uint64_t keep) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) < 0) bail("capget");
  uint64_t prm = ((uint64_t)data[1].permitted << 32) | data[0].permitted;
  uint64_t k = keep & prm;
  for (int i = 0; i < 2; i++) {
    uint32_t v = (uint32_t)(k >> (32 * i));
    data[i].effective = v;
    data[i].permitted = v;
    data[i].inheritable = v;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) bail("capset");
}

static void setup_pty(const struct cfg *c, int sock) {
  int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) bail("open: /dev/ptmx");
  int unlock = 0;
  if (ioctl(m, TIOCSPTLCK, &unlock) < 0) bail("ioctl: TIOCSPTLCK");
  int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (s < 0) bail("ioctl: TIOCGPTPEER");
  if (fchown(s, c->uid, (gid_t)-1) < 0 && errno != EINVAL) bail("fchown: pty");
  if (c->rows && c->cols) {
    struct winsize ws = {.ws_row = c->rows, .ws_col = c->cols, .ws_xpixel = 0, .ws_ypixel = 0};
    ioctl(s, TIOCSWINSZ, &ws);
  }
  if (getsid(0) != getpid() && setsid() < 0) bail("setsid");
  if (ioctl(s, TIOCSCTTY, 0) < 0) bail("ioctl: TIOCSCTTY");
  for (int fd = 0; fd < 3; fd++)
    if (dup2(s, fd) < 0) bail("dup2: pty");
  if (s > 2) close(s);
  /* Hand the master to the monitor, which proxies it to the helper's stdin/stdout. */
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  char byte = 'p';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &m, sizeof(int));
  if (sendmsg(sock, &msg, 0) < 0) bail("sendmsg: pty master");
  close(m);
  close(sock);
}

/* ---------- seccomp ---------- */

/* The program comes compiled from the container's profile (Docker's default unless one is given). */
static void install_seccomp(const struct cfg *c) {
  struct sock_fprog prog = {.len = (unsigned short)c->nseccomp, .filter = c->seccomp};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) bail("prctl: PR_SET_SECCOMP");
}

/* PATH lookup inside the container (execvpe semantics with the container's env). */
__attribute__((noreturn)) static void do_exec(const struct cfg *c) {
  const char *file = c->argv[0];
  if (strchr(file, '/')) {
    execve(file, c->argv, c->env);
    bail("execve: %s", file);
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t i = 0; i < c->nenv; i++)
    if (strncmp(c->env[i], "PATH=", 5) == 0) path = c->env[i] + 5;
  int err = ENOENT;
  for (const char *p = path;; p++) {
    const char *e = strchrnul(p, ':');
    char full[PATH_MAX];
    size_t dl = (size_t)(e - p);
    if (dl == 0) snprintf(full, sizeof full, "%s", file);
    else snprintf(full, sizeof full, "%.*s/%s", (int)dl, p, file);
    execve(full, c->argv, c->env);
    if (errno == EACCES) err = EACCES;
    else if (errno != ENOENT && errno != ENOTDIR) bail("execve: %s", full);
    if (!*e) break;
    p = e;
  }
  bail_errno(err, "execve: %s: executable file not found in $PATH", file);
}

/* Enters the working directory as a path inside the container's root (the current "/"): links
 * are followed as if the root were "/", and /proc's magic links (/proc/self/fd/N, .../cwd) are
 * refused, so no path from the image or the user can name a directory outside. */
static void enter_cwd(const char *cwd) {
  cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) bail("open: /");
  cleanup_close int fd = open_in_root(root, cwd, O_DIRECTORY);
  if (fd < 0) bail("chdir: working directory %s", cwd);
  if (fchdir(fd) < 0) bail("chdir: working directory %s", cwd);
  char buf[PATH_MAX];
  /* getcwd names a directory outside the root "(unreachable)..." or fails: never run there. */
  if (!getcwd(buf, sizeof buf) || buf[0] != '/') bail_errno(EXDEV, "chdir: working directory %s is outside the container", cwd);
}

/* Working directory, terminal, rlimits, credentials, capabilities, then execve. */
__attribute__((noreturn)) static void finish_and_exec(const struct cfg *c, int ptysock, bool foreground) {
  for (size_t i = 0; i < c->nrl; i++) {
    struct rlimit cur, want = {.rlim_cur = c->rl[i].soft, .rlim_max = c->rl[i].hard};
    /* No CAP_SYS_RESOURCE is assumed: a hard limit is never raised above the current one. */
    if (getrlimit((int)c->rl[i].res, &cur) == 0 && want.rlim_max > cur.rlim_max) want.rlim_max = cur.rlim_max;
    if (want.rlim_cur > want.rlim_max) want.rlim_cur = want.rlim_max;
    if (setrlimit((int)c->rl[i].res, &want) < 0) bail("setrlimit: resource %u", c->rl[i].res);
  }
  enter_cwd(c->cwd);
  /* A detached container's stdin is the container's own /dev/null, never the host's; a detached
   * exec's output goes there too (its helper's stdio is the host's /dev/null). */
  if ((c->mode == MODE_DETACHED || c->exec_detached) && !c->terminal && !c->stdinpath) {
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul < 0 || dup2(nul, 0) < 0) bail("open: /dev/null as stdin");
    if (c->exec_detached && (dup2(nul, 1) < 0 || dup2(nul, 2) < 0)) bail("dup2: /dev/null as stdout");
    close(nul);
  }
  if (c->terminal) setup_pty(c, ptysock);
  /* Installed while CAP_SYS_ADMIN is still held (no no_new_privs needed); nothing after this
   * point uses a filtered syscall. */
  if (c->seccomp) install_seccomp(c);
  drop_caps(c->caps, last_cap());
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) bail("prctl: PR_SET_KEEPCAPS");
  /* Rootless: setgroups is denied in the user namespace (ours, or the one a rootless imgbuild runs
   * in with a single-id mapping, where the one mapped gid is all there is to be in). */
  if (setgroups(c->naddgids, c->addgids) < 0 && !(errno == EPERM && ((g_rootless && c->naddgids == 0) || setgroups_denied())))
    bail("setgroups");
  if (setresgid(c->gid, c->gid, c->gid) < 0) bail("setresgid: %u", c->gid);
  if (setresuid(c->uid, c->uid, c->uid) < 0) bail("setresuid: %u", c->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) bail("prctl: PR_SET_KEEPCAPS");
  set_caps(c->caps);
  if (c->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) bail("prctl: PR_SET_NO_NEW_PRIVS");
  /* Credential changes clear the parent-death signal; set it last. */
  if (foreground && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) bail("prctl: PR_SET_PDEATHSIG");
  /* Nothing inherited from Node beyond stdio and the exec pipe crosses execve. */
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  do_exec(c);
}

/* ---------- signals ---------- */

static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM};

static void monitor_sigset(sigset_t *s) {
  sigemptyset(s);
  for (size_t i = 0; i < sizeof fwd_signals / sizeof *fwd_signals; i++) sigaddset(s, fwd_signals[i]);
  sigaddset(s, SIGCHLD);
  sigaddset(s, SIGPIPE);
}

static void reset_signals(void) {
  sigset_t empty;
  sigemptyset(&empty);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  sigprocmask(SIG_SETMASK, &empty, NULL);
}

/* `init: true`: pid 1 forwards signals to the app, reaps every orphan, exits with the app. */
__attribute__((noreturn)) static void reaper(pid_t app) {
  sigset_t all;
  sigfillset(&all);
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      int st;
      pid_t p;
      while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        if (p == app) _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    } else {
      kill(app, sig);
    }
  }
}

/* ---------- the container side ---------- */

/* A new network namespace starts with `lo` down; bring it up (SIOCSIFFLAGS, as `ip link set lo
 * up` does) so that 127.0.0.1 works in a container without a network, as in Docker's `none`.
 * Run in the container's net namespace with the capabilities of its user namespace owner. */
static void loopback_up(void) {
  cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) bail("socket: AF_INET (loopback)");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) bail("ioctl: SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) bail("ioctl: SIOCSIFFLAGS lo up");
}

/*
 * TAG_NET_IFACE: gives the joined namespace's interface its IPv4 address and a default route, and
 * brings it and lo up, with the same ioctls as loopback_up. The host made the namespace and the
 * veth (one `ip` process); doing this side here spares a second process on every bridged run.
 * An address or route already there (a restart in the same namespace) is left as it is.
 */
static void iface_up(const char *spec) {
  char name[IFNAMSIZ], addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
  unsigned prefix;
  if (sscanf(spec, "%15s %15s %u %15s", name, addr, &prefix, gw) != 4 || prefix > 32) bail_errno(EINVAL, "net iface: %s", spec);
  cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) bail("socket: AF_INET (%s)", name);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name)); /* at most IFNAMSIZ - 1 bytes (sscanf's %15s), NUL from memset */
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) bail_errno(EINVAL, "net iface: address %s", addr);
  if (ioctl(fd, SIOCSIFADDR, &ifr) < 0) bail("ioctl: SIOCSIFADDR %s %s", name, addr);
  sin->sin_addr.s_addr = prefix == 0 ? 0 : htonl(~0u << (32 - prefix));
  if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0) bail("ioctl: SIOCSIFNETMASK %s /%u", name, prefix);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) bail("ioctl: SIOCGIFFLAGS %s", name);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) bail("ioctl: SIOCSIFFLAGS %s up", name);
  struct rtentry rt;
  memset(&rt, 0, sizeof rt);
  ((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
  ((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
  struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway;
  g->sin_family = AF_INET;
  if (inet_pton(AF_INET, gw, &g->sin_addr) != 1) bail_errno(EINVAL, "net iface: gateway %s", gw);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = name;
  if (ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST) bail("ioctl: SIOCADDRT default via %s", gw);
  loopback_up();
}

struct chan {
  /* out_w: detached without a terminal, the write end of the pipe the monitor copies to the log. */
  int sync_r, exec_w, pty_child, out_w;
  /* -1, or where the child reports (one byte) that it moved itself into its v1 cgroups. */
  int joined_w;
};

static bool is_cgroup_v1(const char *dir) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/tasks", dir); /* v1 hierarchies have it, v2 has not */
  return access(path, F_OK) == 0;
}

/* Whether any of the container's cgroups is on a v1 hierarchy. */
static bool any_cgroup_v1(const struct cfg *c) {
  for (size_t i = 0; i < c->ncgroups; i++)
    if (is_cgroup_v1(c->cgroups[i])) return true;
  return false;
}

/* Moves the calling process, which must be single-threaded, into the container's v1 cgroups by
 * writing 0 ("this thread") to each `tasks` file. Why not the parent writing the child's pid to
 * cgroup.procs: on v1 that write takes the kernel's global threadgroup lock for writing, which
 * waits out an RCU grace period: ~10 ms of every start measured on this project's kernel (6.18),
 * longer than the child's whole rootfs setup that overlapped it. A thread moving itself skips that
 * lock (cgroup_procs_write_start). v2 cgroups are left to the parent (cgroup.procs). */
static void join_v1_cgroups_self(const struct cfg *c) {
  for (size_t i = 0; i < c->ncgroups; i++) {
    if (!is_cgroup_v1(c->cgroups[i])) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tasks", c->cgroups[i]);
    write_file(path, "0", 1);
  }
}

/* ---------- chroot isolation ---------- */

/* Whether unshare(flags) succeeds here, tried in a throwaway child. */
static bool can_unshare(uint32_t flags) {
  pid_t p = fork();
  if (p < 0) return false;
  if (p == 0) _exit(unshare((int)flags) == 0 ? 0 : 1);
  int st;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The namespaces of `want` that can be made: all of them when they can together (one trial),
 * else each one tried alone (a seccomp filter or a sysctl may refuse some: a pod's runtime
 * default refuses them all without CAP_SYS_ADMIN). A user namespace tried first: the others
 * may need the capabilities it gives. The cgroup namespace is tried later (wait_ack). */
static uint32_t chroot_namespaces(uint32_t want) {
  want &= (uint32_t)(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP);
  uint32_t cg = want & (uint32_t)CLONE_NEWCGROUP;
  want &= ~(uint32_t)CLONE_NEWCGROUP;
  if (can_unshare(want)) return want | cg;
  uint32_t got = 0, user = want & (uint32_t)CLONE_NEWUSER;
  if (user && can_unshare(user)) got = user;
  static const uint32_t order[] = {CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET};
  for (size_t i = 0; i < sizeof order / sizeof *order; i++)
    if ((want & order[i]) && can_unshare(got | order[i])) got |= order[i];
  return got | cg;
}

/* mount(2) of a filesystem or a recursive bind at `dst` inside the root; false when refused. */
static bool try_mount_in_root(int rootfd, const char *type, const char *src, const char *dst, unsigned long flags, const char *data) {
  cleanup_close int t = mkpath_in_root(rootfd, dst, false);
  if (t < 0) return false;
  char tp[64];
  fdpath(tp, sizeof tp, t);
  if (flags & MS_BIND) {
    if (mount(src, tp, NULL, MS_BIND | MS_REC, NULL) < 0) return false;
    /* Flags of a bind come with a remount, which a locked mount (one from the pod) may refuse. */
    cleanup_close int n = open_in_root(rootfd, dst, 0);
    if (n >= 0) {
      fdpath(tp, sizeof tp, n);
      unsigned long f = (flags | kept_flags(tp)) & ~(unsigned long)(MS_REC | MS_BIND);
      mount(NULL, tp, NULL, MS_REMOUNT | MS_BIND | f, NULL);
    }
    return true;
  }
  return mount(src, tp, type, flags, data) == 0;
}

/* Masks and read-only paths as far as they can be applied over what the pod itself mounted. */
static void mask_paths_soft(const struct cfg *c) {
  for (size_t i = 0; i < c->nmasked; i++) {
    const char *p = c->masked[i];
    struct stat st;
    if (lstat(p, &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=755");
    else mount("/dev/null", p, NULL, MS_BIND, NULL);
  }
  for (size_t i = 0; i < c->nro; i++) {
    const char *p = c->ro[i];
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) continue;
    unsigned long f = (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | kept_flags(p)) & ~(unsigned long)(MS_REC | MS_BIND);
    mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | f, NULL);
  }
}

/* do_pivot where pivot_root is allowed; false, nothing changed, where it is not (a seccomp
 * filter, a root that is no mount point). */
static bool try_pivot(const char *rootdir) {
  cleanup_close int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  cleanup_close int newroot = open(rootdir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0 || newroot < 0 || fchdir(newroot) < 0) return false;
  if (syscall(SYS_pivot_root, ".", ".") < 0) {
    if (fchdir(oldroot) < 0) bail("fchdir: old root");
    return false;
  }
  if (fchdir(oldroot) < 0) bail("fchdir: old root");
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) bail("mount: make old root rslave");
  if (umount2(".", MNT_DETACH) < 0) bail("umount2: old root");
  if (chdir("/") < 0) bail("chdir: /");
  return true;
}

/* Chroot isolation (buildah's --isolation chroot): with a mount namespace, the rootfs and the
 * spec's mounts as usual, /proc a new procfs where the pod allows one (own pid namespace and an
 * unmasked /proc) else a bind of the pod's, /dev as usual, /sys a sysfs or a read-only bind,
 * masks where they apply; then pivot_root where a filter allows it (the host's mounts gone from
 * the step's view, no chroot(2) to escape from), else chroot(2). Without a mount namespace
 * nothing is mounted: the rootfs must be a directory (the copying snapshotter's). */
static void enter_chroot(const struct cfg *c) {
  const char *root = c->rootdir;
  if (c->nsflags & CLONE_NEWNS) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) bail("mount: make / rprivate");
    if (!(c->nsflags & CLONE_NEWUSER) || g_rootless || c->own_userns) do_rootfs_mounts(c, -1);
    /* The helper mounted it (build --userns): a mount of our own for pivot_root, as below. */
    else mount(root, root, NULL, MS_BIND | MS_REC, NULL);
    cleanup_close int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) bail("open: rootfs dir %s", root);
    unsigned long pf = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (!((c->nsflags & CLONE_NEWPID) && try_mount_in_root(rootfd, "proc", "proc", "/proc", pf, NULL)))
      try_mount_in_root(rootfd, NULL, "/proc", "/proc", pf | MS_BIND, NULL);
    setup_dev(rootfd, c);
    unsigned long sf = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (!try_mount_in_root(rootfd, "sysfs", "sysfs", "/sys", sf, NULL)) try_mount_in_root(rootfd, NULL, "/sys", "/sys", sf | MS_BIND, NULL);
    for (size_t i = 0; i < c->nmounts; i++) mount_in_root(rootfd, &c->mounts[i], NULL);
    int cwd = mkpath_in_root(rootfd, c->cwd, false);
    if (cwd >= 0) close(cwd);
  } else {
    if (c->nrootfs != 1 || !(c->rootfs[0].flags & MS_BIND))
      bail_errno(EPERM, "chroot: no mount namespace can be made here, and the rootfs is not a directory (use the vfs storage driver)");
    root = c->rootfs[0].src;
  }
  if (!((c->nsflags & CLONE_NEWNS) && try_pivot(root))) {
    if (chdir(root) < 0) bail("chdir: %s", root);
    if (chroot(".") < 0) bail("chroot: %s", root);
    if (chdir("/") < 0) bail("chdir: /");
  }
  if (c->nsflags & CLONE_NEWNS) {
    if (c->ro_rootfs) mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
    mask_paths_soft(c);
  }
}

/* Waits for the parent's SYNC_USERMAP_ACK; then enters a new cgroup namespace (rooted at the
 * container's cgroup, which is why it waits for the ack). */
static void wait_ack(const struct cfg *c, int sync_r) {
  char b = 0;
  ssize_t r;
  do r = read(sync_r, &b, 1);
  while (r < 0 && errno == EINTR);
  if (r != 1 || b != SYNC_USERMAP_ACK) _exit(1); /* the parent failed and reported it */
  close(sync_r);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) bail("prctl: PR_SET_DUMPABLE");
  if ((c->nsflags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0 && !c->chroot) bail("unshare: CLONE_NEWCGROUP");
}

__attribute__((noreturn)) static void container_child(const struct cfg *c, struct chan ch) {
  g_stage = STAGE_CHILD;
  g_errfd = ch.exec_w;
  g_kill_on_bail = 0;
  close(4);
  if (g_ctl >= 0) close(g_ctl);
  bool foreground = c->mode == MODE_RUN;
  if (foreground && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) bail("prctl: PR_SET_PDEATHSIG");
  /* The parent acks once the id maps are written and the child is in its cgroups. With a user
   * namespace nothing can be done before the maps exist, so wait right away. Without one, build
   * the rootfs meanwhile and wait only before anything runs (fork or exec), overlapping the
   * parent's cgroup.procs writes (v2 only, when the child joins its v1 cgroups itself below). */
  bool early_ack = (c->nsflags & CLONE_NEWUSER) != 0;
  if (ch.joined_w >= 0) {
    join_v1_cgroups_self(c);
    char b = 'j';
    if (write(ch.joined_w, &b, 1) != 1) bail("write: cgroup join pipe");
    close(ch.joined_w);
  }
  if (early_ack) wait_ack(c, ch.sync_r);
  /* A session of its own: no controlling terminal of the host (/dev/tty gives ENXIO), and
   * terminal-generated signals reach it only through the monitor's relay. */
  if (setsid() < 0) bail("setsid");
  if (c->nsflags & CLONE_NEWUSER) {
    if (setresgid(0, 0, 0) < 0) bail("setresgid: 0 (is container gid 0 mapped?)");
    if (setresuid(0, 0, 0) < 0) bail("setresuid: 0 (is container uid 0 mapped?)");
  }
  if (ch.out_w >= 0) {
    if (dup2(ch.out_w, 1) < 0 || dup2(ch.out_w, 2) < 0) bail("dup2: output pipe");
    close(ch.out_w);
  }
  g_stage = STAGE_INIT;
  if ((c->nsflags & CLONE_NEWNET) && !c->netns) loopback_up();
  if (c->net_iface && !((c->nsflags & CLONE_NEWUSER) && !g_rootless)) iface_up(c->net_iface);
  if (c->chroot) {
    enter_chroot(c);
  } else {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) bail("mount: make / rprivate");
    if (!(c->nsflags & CLONE_NEWUSER) || g_rootless) {
      do_rootfs_mounts(c, -1);
    } else if (mount(c->rootdir, c->rootdir, NULL, MS_BIND | MS_REC, NULL) < 0) {
      /* Mounts copied from the helper's more privileged namespace are locked, and pivot_root
       * refuses a locked new root: bind it onto itself to get a mount of our own. */
      bail("mount: bind rootfs onto itself");
    }
    setup_mounts(c);
    do_pivot(c->rootdir);
    if (c->ro_rootfs) remount_bind("/", MS_RDONLY);
    mask_paths(c);
  }
  /* A uts namespace whose sethostname a seccomp filter refuses (a pod's runtime default without
   * CAP_SYS_ADMIN) keeps the pod's name under chroot isolation. */
  bool uts = (c->nsflags & CLONE_NEWUTS) != 0;
  if (uts && c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0 && !(c->chroot && errno == EPERM)) bail("sethostname: %s", c->hostname);
  if (uts && c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0 && !(c->chroot && errno == EPERM)) bail("setdomainname: %s", c->domainname);
  if (!early_ack) wait_ack(c, ch.sync_r);
  if (c->init) {
    /* Everything stays blocked in the reaper (it takes signals with sigwaitinfo); the app
     * starts with the default dispositions and an empty mask. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    pid_t app = fork();
    if (app < 0) bail("fork: app under init");
    if (app == 0) {
      reset_signals();
      finish_and_exec(c, ch.pty_child, foreground);
    }
    close(ch.exec_w);
    if (ch.pty_child >= 0) close(ch.pty_child);
    g_errfd = -1;
    drop_caps(c->caps, last_cap());
    set_caps(c->caps);
    reaper(app);
  }
  reset_signals();
  finish_and_exec(c, ch.pty_child, foreground);
}

/* ---------- the monitor side ---------- */

static int recv_fd(int sock) {
  char cbuf[CMSG_SPACE(sizeof(int))], byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t r;
  do r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return -1;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

/* When the process exec'd (the monitor saw its exec pipe close), on the clock Node's
 * process.hrtime reads: a build's trace splits the sandbox's set-up from the command by it. */
static void send_exec_time(void) {
  struct timespec ts;
  char ns[32];
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(ns, sizeof ns, "%llu", (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec);
  send_rec(4, REC_EXECED, 0, ns);
}

/* Reads the child's exec pipe to EOF. Error records are forwarded to fd 4 (returns false). */
static bool wait_exec(int exec_r) {
  char buf[4096];
  size_t total = 0;
  for (;;) {
    ssize_t r = read(exec_r, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    total += (size_t)r;
    xwrite_all(4, buf, (size_t)r, "status fd 4");
  }
  close(exec_r);
  return total == 0;
}

/* Where the monitor notes when log output arrived: `logs -t/--since/--until` read it. */
struct logtimes {
  int fd;       /* <log>.times, or -1 */
  off_t off;    /* the log's size: where the next chunk goes */
  int64_t last; /* ns of the last record */
};

/* One record per chunk read, {u64 log offset; i64 ns since the epoch} little-endian, written
 * before the chunk so a reader never sees output without its time. Chunks within a millisecond of
 * the last record share it: bulk output costs no extra write per read. */
static void note_time(struct logtimes *t, ssize_t n) {
  if (t->fd < 0) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  if (now - t->last >= 1000000) {
    uint64_t rec[2] = {(uint64_t)t->off, (uint64_t)now};
    if (write(t->fd, rec, sizeof rec) == (ssize_t)sizeof rec) t->last = now;
  }
  t->off += n;
}

static void copy_some(int from, int to, bool *open_from, struct logtimes *t) {
  char buf[16384];
  ssize_t r = read(from, buf, sizeof buf);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (r <= 0) {
    *open_from = false;
    return;
  }
  note_time(t, r);
  for (ssize_t off = 0; off < r;) {
    ssize_t w = write(to, buf + off, (size_t)(r - off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return; /* reader gone: drop output, keep the container running */
    off += w;
  }
}

static void read_control(int master) {
  static char buf[256];
  static size_t have;
  ssize_t r = read(g_ctl, buf + have, sizeof buf - have);
  if (r <= 0) {
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
    close(g_ctl);
    g_ctl = -1;
    return;
  }
  have += (size_t)r;
  while (have >= 6) {
    uint16_t tag;
    uint32_t len;
    memcpy(&tag, buf, 2);
    memcpy(&len, buf + 2, 4);
    if (len > sizeof buf - 6) { /* malformed: stop listening */
      close(g_ctl);
      g_ctl = -1;
      return;
    }
    if (have < 6 + len) break;
    if (tag == TAG_WINSIZE && len >= 4 && master >= 0) {
      struct winsize ws = {0, 0, 0, 0};
      memcpy(&ws.ws_row, buf + 6, 2);
      memcpy(&ws.ws_col, buf + 8, 2);
      ioctl(master, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH to the foreground group */
    }
    memmove(buf, buf + 6 + len, have - 6 - len);
    have -= 6 + len;
  }
}

/* Forwards signals, proxies the terminal and waits for the child; returns its wait status. */
/* `master` is the output to copy (a pty master or a pipe); input read from `in_fd` goes to `in_to`
 * (the pty master, or the pipe that is a detached container's stdin). */
static int monitor(pid_t child, int master, int in_fd, int in_to, int out_fd, struct logtimes *times) {
  sigset_t set;
  monitor_sigset(&set);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) bail("signalfd");
  bool master_open = master >= 0, in_open = in_fd >= 0 && in_to >= 0, exited = false;
  int status = 0;
  /* Input to the pty goes through a buffer and a non-blocking master, so a process that does
   * not read its terminal never stalls the monitor (signals, output, exit). */
  char inbuf[4096];
  size_t inlen = 0, inoff = 0;
  if (master >= 0) fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  if (in_to >= 0 && in_to != master) fcntl(in_to, F_SETFL, fcntl(in_to, F_GETFL) | O_NONBLOCK);
  bool to_master = in_to >= 0 && in_to == master;
  while (!exited || master_open) {
    short mev = (short)(POLLIN | (to_master && inlen > inoff ? POLLOUT : 0));
    struct pollfd p[5] = {{sfd, POLLIN, 0},
                          {master_open ? master : -1, mev, 0},
                          {in_open && inlen == inoff ? in_fd : -1, POLLIN, 0},
                          {exited ? -1 : g_ctl, POLLIN, 0},
                          {!to_master && in_to >= 0 && inlen > inoff && !exited ? in_to : -1, POLLOUT, 0}};
    int n = poll(p, 5, exited ? 100 : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) bail("poll");
    if (n == 0 && exited) break; /* nothing left in the pty after the container ended */
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          if (waitpid(child, &status, WNOHANG) == child) exited = true;
        } else if (si.ssi_signo != SIGPIPE && !exited) {
          kill(child, (int)si.ssi_signo);
        }
      }
    }
    if (master_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) copy_some(master, out_fd, &master_open, times);
    if (inlen > inoff && ((to_master && master_open && (p[1].revents & POLLOUT)) || (p[4].revents & (POLLOUT | POLLERR | POLLHUP)))) {
      ssize_t w = write(in_to, inbuf + inoff, inlen - inoff);
      if (w > 0) inoff += (size_t)w;
      else if (w < 0 && errno != EAGAIN && errno != EINTR) inoff = inlen; /* terminal gone: drop input */
    }
    if (in_open && inlen == inoff && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = read(in_fd, inbuf, sizeof inbuf);
      if (r > 0) {
        inlen = (size_t)r;
        inoff = 0;
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        in_open = false;
      }
    }
    if (g_ctl >= 0 && (p[3].revents & (POLLIN | POLLHUP | POLLERR))) read_control(master);
  }
  close(sfd);
  if (master >= 0) close(master);
  return status;
}

static void write_status(const struct cfg *c, int st) {
  bool oom = false;
  for (size_t i = 0; i < c->ncgroups; i++) {
    static const char *const files[] = {"memory.oom_control", "memory.events"};
    for (size_t f = 0; f < 2; f++) {
      char path[PATH_MAX], buf[1024];
      snprintf(path, sizeof path, "%s/%s", c->cgroups[i], files[f]);
      cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t r = read(fd, buf, sizeof buf - 1);
      if (r <= 0) continue;
      buf[r] = 0;
      char *k = strstr(buf, "oom_kill ");
      if (k && atol(k + 9) > 0) oom = true;
    }
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[64], sig[32] = "null", out[512], tmp[PATH_MAX];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (WIFSIGNALED(st)) snprintf(sig, sizeof sig, "\"SIG%s\"", sigabbrev_np(WTERMSIG(st)) ?: "UNKNOWN");
  int n = snprintf(out, sizeof out, "{\"exitCode\":%d,\"signal\":%s,\"oomKilled\":%s,\"finishedAt\":\"%s.%03ldZ\"}\n",
                   code, sig, oom ? "true" : "false", when, ts.tv_nsec / 1000000);
  snprintf(tmp, sizeof tmp, "%s.tmp", c->statuspath);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, out, (size_t)n) == n && fsync(fd) == 0) {
    close(fd);
    rename(tmp, c->statuspath);
  } else {
    close(fd);
  }
}

/* Moves `pid` into the container's cgroups; with skip_v1, only into those on v2 (the child joined
 * its v1 cgroups itself). */
static void join_cgroups(const struct cfg *c, pid_t pid, bool skip_v1) {
  char num[32];
  int n = snprintf(num, sizeof num, "%d", pid);
  for (size_t i = 0; i < c->ncgroups; i++) {
    if (skip_v1 && is_cgroup_v1(c->cgroups[i])) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cgroup.procs", c->cgroups[i]);
    write_file(path, num, (size_t)n);
  }
}

static int run_container(const struct cfg *c) {
  bool detached = c->mode == MODE_DETACHED;
  if (detached) {
    pid_t m = fork();
    if (m < 0) bail("fork: monitor");
    if (m > 0) _exit(0); /* Node sees the helper exit; the monitor lives on, orphaned */
    if (setsid() < 0) bail("setsid: monitor");
    /* A long-lived process must not pin the caller's working directory (or its mount). */
    if (chdir("/") < 0) bail("chdir: /");
    /* The monitor's own stdio: stdin an empty pipe (what the container starts with until it
     * opens its own /dev/null), stdout and stderr the host's /dev/null, which the container
     * never gets (its output is a pipe). */
    int nul = open("/dev/null", O_RDWR), in[2];
    if (nul < 0) bail("open: /dev/null");
    if (pipe(in) < 0) bail("pipe");
    close(in[1]);
    dup2(in[0], 0);
    if (in[0] != 0) close(in[0]);
    dup2(nul, 1);
    dup2(nul, 2);
    if (nul > 2) close(nul);
  } else if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
    bail("prctl: PR_SET_PDEATHSIG");
  }
  sigset_t set;
  monitor_sigset(&set);
  sigprocmask(SIG_BLOCK, &set, NULL);

  uint32_t ns = c->nsflags;
  if (c->netns) {
    cleanup_close int fd = open(c->netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) bail("open: netns %s", c->netns);
    if (setns(fd, CLONE_NEWNET) < 0) bail("setns: netns %s", c->netns);
    ns &= ~(uint32_t)CLONE_NEWNET;
  }
  /* --pid/--ipc container:X: joined here, so that the container's process, cloned next, is in
   * them (a pid namespace applies to the children of whoever joins it). */
  const struct { const char *path; int type; const char *name; } joins[] = {{c->pidns, CLONE_NEWPID, "pid"}, {c->ipcns, CLONE_NEWIPC, "ipc"}};
  for (size_t i = 0; i < sizeof joins / sizeof joins[0]; i++) {
    if (!joins[i].path) continue;
    cleanup_close int fd = open(joins[i].path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) bail("open: %s namespace %s", joins[i].name, joins[i].path);
    if (setns(fd, joins[i].type) < 0) bail("setns: %s namespace %s", joins[i].name, joins[i].path);
    ns &= ~(uint32_t)joins[i].type;
  }
  /* Chroot isolation makes the namespaces it can: those refused are given up, and the child
   * learns which through its copy of the config. */
  struct cfg chc;
  if (c->chroot) {
    uint32_t want = ns | CLONE_NEWNS;
    uint32_t got = chroot_namespaces(want);
    chc = *c;
    /* Root without CAP_SYS_ADMIN (a pod run as root) can still make a user namespace, which gives
     * the capabilities the others need: every id mapped to itself, so owners stay as they are. */
    if (!g_rootless && !(want & CLONE_NEWUSER) && got != want) {
      uint32_t with = chroot_namespaces(want | CLONE_NEWUSER);
      if ((with & CLONE_NEWUSER) && with != (uint32_t)CLONE_NEWUSER) {
        want |= CLONE_NEWUSER;
        got = with;
        chc.nsflags |= CLONE_NEWUSER;
        chc.uidmap = chc.gidmap = (char *)"0 0 4294967295\n";
        chc.own_userns = true;
      }
    }
    chc.nsflags = (chc.nsflags & ~(want & ~got)) | (got & (uint32_t)CLONE_NEWNS);
    ns = got;
    c = &chc;
  }
  if ((ns & CLONE_NEWUSER) && !g_rootless && !c->own_userns) {
    /* The rootfs (overlay) needs host privileges: mount it in a private mount namespace of the
     * helper; the container's user-owned mount namespace starts as a copy of it. */
    if (unshare(CLONE_NEWNS) < 0) bail("unshare: CLONE_NEWNS");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) bail("mount: make / rprivate");
    bool idmapped_binds = false;
    for (size_t i = 0; i < c->nmounts; i++) idmapped_binds |= (c->mounts[i].flags & MS_BIND) && has_option(c->mounts[i].data, "idmap");
    cleanup_close int idmap_fd = -1;
    if (c->rootfs_idmap || idmapped_binds) {
      const char *what = NULL;
      idmap_fd = idmap_userns_fd(c->uidmap, c->gidmap, &what);
      if (idmap_fd < 0) bail("%s", what);
    }
    do_rootfs_mounts(c, c->rootfs_idmap ? idmap_fd : -1);
    /* The container's root is not root on the host: it may not even reach a bind's source (a
     * store under a 0700 dir). The helper clones each source tree now; the child moves the
     * clones into place. */
    for (size_t i = 0; i < c->nmounts; i++) {
      struct mnt *m = &c->mounts[i];
      if (!(m->flags & MS_BIND)) continue;
      if (m->cwd[0] && chdir(m->cwd) < 0) bail("chdir: mount cwd %s", m->cwd);
      m->tree = (int)syscall(SYS_open_tree, AT_FDCWD, m->src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((m->flags & MS_REC) ? AT_RECURSIVE : 0));
      if (m->tree < 0) bail("open_tree: bind source %s", m->src);
      /* `idmap`: the source's owners are shown through the container's mapping. */
      if (has_option(m->data, "idmap")) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)idmap_fd};
        if (syscall(SYS_mount_setattr, m->tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) bail("mount_setattr: idmap %s", m->src);
      }
      if (chdir("/") < 0) bail("chdir: /");
    }
    /* A joined network namespace belongs to the host's user namespace: its interface is set up
     * here, with the host's privileges, rather than by the container's root. */
    if (c->net_iface) iface_up(c->net_iface);
  }
  int syncp[2], execp[2], ptys[2] = {-1, -1}, joinp[2] = {-1, -1}, outp[2] = {-1, -1};
  if (pipe2(syncp, O_CLOEXEC) < 0 || pipe2(execp, O_CLOEXEC) < 0) bail("pipe2");
  /* Detached, the container writes to a pipe and the monitor owns the log file: a process
   * inside never holds a host file it could fill and chmod (a setuid binary left on the host). */
  if (detached && !c->terminal && pipe2(outp, O_CLOEXEC) < 0) bail("pipe2");
  /* In a user namespace the child has no rights on the host's cgroup files: the parent moves it. */
  bool self_join = !(ns & CLONE_NEWUSER) && any_cgroup_v1(c);
  if (self_join && pipe2(joinp, O_CLOEXEC) < 0) bail("pipe2");
  if (c->terminal && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ptys) < 0) bail("socketpair");
  /* A detached container created with -i: a FIFO beside its log that `attach` writes into, copied
   * by the monitor (which holds it open for reading and writing, so it never reads EOF) into the
   * container's stdin, a pipe (or its terminal). The container never holds the FIFO itself. */
  int fifo = -1, in_w = -1;
  if (detached && c->stdinpath) {
    unlink(c->stdinpath);
    if (mkfifo(c->stdinpath, 0600) < 0) bail("mkfifo: %s", c->stdinpath);
    fifo = open(c->stdinpath, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fifo < 0) bail("open: %s", c->stdinpath);
    if (!c->terminal) {
      int inp[2];
      if (pipe2(inp, O_CLOEXEC) < 0) bail("pipe2");
      /* The read end becomes fd 0, which the child keeps across exec. */
      if (dup2(inp[0], 0) < 0) bail("dup2: stdin");
      close(inp[0]);
      in_w = inp[1];
    }
  }
  unsigned long flags = (c->chroot ? 0 : CLONE_NEWNS) | (ns & (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET));
  /* An unprivileged parent may write the child's id maps only while the child is dumpable
   * (a non-dumpable process's /proc files belong to root); the child, alone in its new pid
   * namespace until then, turns it off again once the maps are written (wait_ack). */
  bool maps_by_user = (ns & CLONE_NEWUSER) && g_rootless;
  if (maps_by_user) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  pid_t child = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (maps_by_user && child != 0) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (child < 0) bail("clone: namespaces 0x%lx", flags);
  if (child == 0) {
    close(syncp[1]);
    close(execp[0]);
    if (ptys[0] >= 0) close(ptys[0]);
    if (joinp[0] >= 0) close(joinp[0]);
    if (outp[0] >= 0) close(outp[0]);
    container_child(c, (struct chan){syncp[0], execp[1], ptys[1], outp[1], joinp[1]});
  }
  g_kill_on_bail = child;
  close(syncp[0]);
  close(execp[1]);
  if (outp[1] >= 0) close(outp[1]);
  if (in_w >= 0) {
    /* Only the child reads the stdin pipe. */
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0 && nul != 0) {
      dup2(nul, 0);
      close(nul);
    }
  }
  int logfd = -1;
  struct logtimes times = {-1, 0, 0};
  if (detached) {
    /* Opened only now, so the container never inherits it; private and never executable. */
    logfd = open(c->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd < 0) bail("open: log %s", c->logpath);
    char tpath[PATH_MAX];
    snprintf(tpath, sizeof tpath, "%s.times", c->logpath);
    times.fd = open(tpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat lst;
    if (times.fd >= 0 && fstat(logfd, &lst) == 0) times.off = lst.st_size;
  }
  bool joined = true;
  if (self_join) {
    /* The pid is reported (and the container may be killed through its cgroups) only once the
     * child is in them. No byte: the child failed, and its error record is on execp. */
    close(joinp[1]);
    char b;
    ssize_t r;
    do r = read(joinp[0], &b, 1);
    while (r < 0 && errno == EINTR);
    close(joinp[0]);
    joined = r == 1;
  }
  if (ptys[1] >= 0) close(ptys[1]);
  if (ns & CLONE_NEWUSER) {
    char path[64];
    if (g_rootless) {
      /* An unprivileged writer may map only its own ids, and only after denying setgroups. */
      snprintf(path, sizeof path, "/proc/%d/setgroups", child);
      write_file(path, "deny", 4);
    }
    if (c->uidmap) {
      snprintf(path, sizeof path, "/proc/%d/uid_map", child);
      write_file(path, c->uidmap, strlen(c->uidmap));
    }
    if (c->gidmap) {
      snprintf(path, sizeof path, "/proc/%d/gid_map", child);
      write_file(path, c->gidmap, strlen(c->gidmap));
    }
  }
  if (joined) join_cgroups(c, child, self_join);
  send_rec(4, REC_PID, child, NULL);
  if (detached) send_rec(4, REC_MONITOR, getpid(), NULL);
  char ack = SYNC_USERMAP_ACK;
  /* EPIPE: the child already failed building the rootfs; its error record follows on execp. */
  ssize_t wr;
  do wr = write(syncp[1], &ack, 1);
  while (wr < 0 && errno == EINTR);
  if (wr < 0 && errno != EPIPE) bail("write: sync pipe");
  close(syncp[1]);
  int master = -1;
  if (ptys[0] >= 0) {
    master = recv_fd(ptys[0]);
    close(ptys[0]);
  }
  if (!wait_exec(execp[0])) {
    if (master >= 0) close(master);
    int st;
    waitpid(child, &st, 0);
    return 1;
  }
  g_kill_on_bail = 0;
  if (detached) close(4); /* EOF: Node's startDetached returns */
  else send_exec_time();
  /* The monitor copies the pty master, or the output pipe, into the log. */
  int st = monitor(child, master >= 0 ? master : outp[0], detached ? fifo : 0, master >= 0 ? master : in_w, detached ? logfd : 1, &times);
  if (detached) write_status(c, st);
  else send_rec(4, REC_EXIT, st, NULL);
  return 0;
}

/* ---------- exec into a running container ---------- */

static int run_exec(const struct cfg *c) {
  if (c->exec_detached) {
    /* As a detached container's monitor: orphaned, in a session of its own, with the host's
     * /dev/null as stdio; it reaps the process and leaves with it. */
    pid_t m = fork();
    if (m < 0) bail("fork: monitor");
    if (m > 0) _exit(0);
    if (setsid() < 0) bail("setsid: monitor");
    int nul = open("/dev/null", O_RDWR);
    if (nul < 0) bail("open: /dev/null");
    dup2(nul, 0);
    dup2(nul, 1);
    dup2(nul, 2);
    if (nul > 2) close(nul);
  } else if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
    bail("prctl: PR_SET_PDEATHSIG");
  }
  sigset_t set;
  monitor_sigset(&set);
  sigprocmask(SIG_BLOCK, &set, NULL);
  /* user first (it grants the capabilities for the rest); mnt last (it changes root and cwd). */
  static const struct {
    const char *name;
    int type;
  } order[] = {{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET},
               {"cgroup", CLONE_NEWCGROUP}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};
  int fds[7];
  for (size_t i = 0; i < 7; i++) {
    char path[64], self[64];
    struct stat a, b;
    snprintf(path, sizeof path, "/proc/%u/ns/%s", c->target, order[i].name);
    snprintf(self, sizeof self, "/proc/self/ns/%s", order[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) bail("open: %s", path);
    /* Joining one's own user namespace is EINVAL; skip namespaces already shared. */
    if (fstat(fds[i], &a) == 0 && stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
      close(fds[i]);
      fds[i] = -1;
    }
  }
  /* This helper is single-threaded: it moves itself (fast on v1, see join_v1_cgroups_self). */
  join_v1_cgroups_self(c);
  join_cgroups(c, getpid(), true);
  g_stage = STAGE_CHILD;
  /* A namespace the container's user namespace does not own (a network namespace the host made
   * for a --userns=auto container) is joined first, while the helper has the host's privileges:
   * inside the user namespace it no longer could. */
  struct stat us;
  bool joins_user = fds[0] >= 0;
  if (fds[0] >= 0 && fstat(fds[0], &us) == 0) {
    for (size_t i = 1; i < 6; i++) {
      if (fds[i] < 0) continue;
      int owner = ioctl(fds[i], NS_GET_USERNS);
      struct stat os;
      bool own = owner >= 0 && fstat(owner, &os) == 0 && os.st_ino == us.st_ino && os.st_dev == us.st_dev;
      if (owner >= 0) close(owner);
      if (own) continue;
      if (setns(fds[i], order[i].type) < 0) bail("setns: %s of pid %u", order[i].name, c->target);
      close(fds[i]);
      fds[i] = -1;
    }
  }
  for (size_t i = 0; i < 7; i++) {
    if (fds[i] < 0) continue;
    if (setns(fds[i], order[i].type) < 0) bail("setns: %s of pid %u", order[i].name, c->target);
    close(fds[i]);
  }
  int execp[2], ptys[2] = {-1, -1};
  if (pipe2(execp, O_CLOEXEC) < 0) bail("pipe2");
  if (c->terminal && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ptys) < 0) bail("socketpair");
  pid_t child = fork(); /* enters the target's pid namespace */
  if (child < 0) bail("fork");
  if (child == 0) {
    g_stage = STAGE_INIT;
    g_errfd = execp[1];
    close(execp[0]);
    close(4);
    if (g_ctl >= 0) close(g_ctl);
    if (ptys[0] >= 0) close(ptys[0]);
    reset_signals();
    if (setsid() < 0) bail("setsid");
    /* Host root is nobody in the container's user namespace: become its root first, as its init
     * did, so that what it makes (a terminal) is owned by an id the namespace knows. */
    if (joins_user && !g_rootless) {
      if (setresgid(0, 0, 0) < 0) bail("setresgid: 0 (is container gid 0 mapped?)");
      if (setresuid(0, 0, 0) < 0) bail("setresuid: 0 (is container uid 0 mapped?)");
    }
    finish_and_exec(c, ptys[1], !c->exec_detached);
  }
  g_stage = STAGE_PARENT;
  g_kill_on_bail = child;
  close(execp[1]);
  if (ptys[1] >= 0) close(ptys[1]);
  send_rec(4, REC_PID, child, NULL);
  int master = -1;
  if (ptys[0] >= 0) {
    master = recv_fd(ptys[0]);
    close(ptys[0]);
  }
  if (!wait_exec(execp[0])) {
    int st;
    waitpid(child, &st, 0);
    return 1;
  }
  g_kill_on_bail = 0;
  struct logtimes none = {-1, 0, 0};
  if (c->exec_detached) {
    close(4); /* EOF: Node's exec returns */
    monitor(child, -1, -1, -1, 1, &none);
    return 0;
  }
  int st = monitor(child, master, 0, master, 1, &none);
  send_rec(4, REC_EXIT, st, NULL);
  return 0;
}

/* ---------- start-up ---------- */

/* Closes every descriptor above the protocol's (0-2 stdio, 3 bootstrap, 4 status, 5 control,
 * 6 lifeline):
 * whatever the caller leaked (a directory, a host file) must not be reachable through
 * /proc/self/fd from a path the image or the user names, nor be held by a process that enters
 * a container. Closed, not marked close-on-exec: paths are resolved before execve. */
static void close_inherited(unsigned from) {
  if (syscall(SYS_close_range, from, ~0U, 0) == 0) return;
  struct rlimit r;
  unsigned max = getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_max != RLIM_INFINITY ? (unsigned)r.rlim_max : 1U << 20;
  for (unsigned fd = from; fd < max; fd++) close((int)fd);
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#define ALL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* Runs the helper from a sealed, anonymous copy of itself (as runc does since CVE-2019-5736):
 * a process in a container that gets hold of /proc/<pid>/exe of a helper process finds a
 * memfd that nobody can write, never the binary on the host disk. Returns when already sealed. */
static void reexec_sealed(char **argv) {
  cleanup_close int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) bail("open: /proc/self/exe");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & ALL_SEALS) == ALL_SEALS) return;
  int mfd = memfd_create("imgbuild-sandbox", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = memfd_create("imgbuild-sandbox", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) bail("memfd_create: sealed copy of the helper");
  struct stat st;
  if (fstat(self, &st) < 0) bail("fstat: /proc/self/exe");
  for (off_t left = st.st_size; left > 0;) {
    ssize_t n = sendfile(mfd, self, NULL, (size_t)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) bail("sendfile: sealed copy of the helper");
    left -= n;
  }
  if (fcntl(mfd, F_ADD_SEALS, ALL_SEALS) < 0) bail("fcntl: F_ADD_SEALS");
  fexecve(mfd, argv, environ);
  bail("fexecve: sealed copy of the helper");
}

int main(int argc, char **argv) {
  (void)argc;
  close_inherited(7);
  /* Non-dumpable until the container's program is exec'd: no process inside can ptrace a
   * helper or open its /proc/<pid>/{fd,exe,cwd,root,mem}. execve resets it for that program. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) bail("prctl: PR_SET_DUMPABLE");
  if (fcntl(4, F_GETFD) < 0) {
    fprintf(stderr, "imgbuild-sandbox: fd 4 (status) is not open; this program is run by imgbuild\n");
    return 2;
  }
  reexec_sealed(argv);
  prctl(PR_SET_NAME, "imgbuild-sandbox", 0, 0, 0);
  if (fcntl(4, F_SETFD, FD_CLOEXEC) < 0) bail("fcntl: status fd 4");
  struct cfg c;
  read_bootstrap(&c);
  if (c.control && fcntl(5, F_SETFD, FD_CLOEXEC) == 0) g_ctl = 5;
  else close(5);
  /* Kept by this process and the monitor alone (close-on-exec): its peer, a rootless network
   * helper's exit fd, sees it close exactly when the container has ended and the monitor goes. */
  if (!(c.lifeline && fcntl(6, F_SETFD, FD_CLOEXEC) == 0)) close(6);
  g_rootless = geteuid() != 0;
  return c.mode == MODE_EXEC ? run_exec(&c) : run_container(&c);
}
