/*
 * Static multi-call entrypoint for the runner tests, so they need no distro image:
 *   test-init CMD [ARGS...] [+ CMD [ARGS...]]...
 * (`ssh-ids [SOCK]` lists an ssh agent's keys, for RUN --mount=type=ssh.)
 * Commands run in order; the status is the last command's. Escape probes print what the kernel
 * answered ("ok" or the errno name) and exit 0 only when the attempt was refused.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *ename(int e) { return strerrorname_np(e) ? strerrorname_np(e) : "E?"; }

/* `udp-echo PORT`: answers every datagram on 0.0.0.0:PORT with "echo:" and its bytes (busybox has no UDP server). */
static int udp_echo(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr = {.s_addr = htonl(INADDR_ANY)}};
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    printf("udp-echo: %s\n", ename(errno));
    return 1;
  }
  for (;;) {
    char buf[2048];
    memcpy(buf, "echo:", 5);
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &len);
    if (n < 0) continue;
    sendto(fd, buf, (size_t)n + 5, 0, (struct sockaddr *)&from, len);
  }
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cat_fd(int fd) {
  char buf[8192];
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0)
    if (write(1, buf, (size_t)r) != r) return 1;
  return r < 0;
}

/* Prints "<label>: ok" or "<label>: EPERM"; returns 1 when the attempt succeeded. */
static int probe(const char *label, int r) {
  printf("%s: %s\n", label, r == 0 ? "ok" : ename(errno));
  fflush(stdout);
  return r == 0;
}

static int write_str(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_TRUNC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, s, strlen(s));
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)strlen(s) ? 0 : -1;
}

static int status_line(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[512];
  int found = 1;
  if (!f) return 1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':') {
      fputs(line, stdout);
      found = 0;
    }
  fclose(f);
  return found;
}

/* For `ms` milliseconds, looks at every other process in the pid namespace, as an attacker
 * waiting for `imgbuild exec` would: through /proc/<pid>/fd/<n>/<marker> it tries to read (and
 * create) a file in a directory outside the container, and through /proc/<pid>/exe to hold a
 * binary that is not the container's. Prints one ESCAPE/EXE line per success, then a summary;
 * stops early when /tmp/stop-watching exists; exits 0 when nothing succeeded. */
static int watch_procs(int ms, const char *marker) {
  struct timespec now, end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += ms / 1000;
  end.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (end.tv_nsec >= 1000000000L) {
    end.tv_sec++;
    end.tv_nsec -= 1000000000L;
  }
  int bad = 0;
  /* denied: /proc/<pid>/exe refused (a helper, non-dumpable, before it execs the program) */
  long scans = 0, denied = 0, opened = 0;
  pid_t self = getpid();
  printf("watching\n");
  fflush(stdout);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) break;
    if (access("/tmp/stop-watching", F_OK) == 0) break;
    scans++;
    DIR *procs = opendir("/proc");
    if (!procs) return 1;
    struct dirent *p;
    while ((p = readdir(procs))) {
      if (p->d_name[0] < '1' || p->d_name[0] > '9' || atoi(p->d_name) == self) continue;
      char path[300];
      snprintf(path, sizeof path, "/proc/%s/fd", p->d_name);
      int fdd = open(path, O_RDONLY | O_DIRECTORY);
      if (fdd >= 0) {
        opened++;
        DIR *fds = fdopendir(fdd);
        struct dirent *f;
        while (fds && (f = readdir(fds))) {
          if (f->d_name[0] == '.') continue;
          char rel[600];
          snprintf(rel, sizeof rel, "%s/%s", f->d_name, marker);
          int t = openat(fdd, rel, O_RDONLY);
          if (t >= 0) {
            printf("ESCAPE read /proc/%s/fd/%s/%s\n", p->d_name, f->d_name, marker);
            close(t);
            snprintf(rel, sizeof rel, "%s/written-from-container", f->d_name);
            t = openat(fdd, rel, O_WRONLY | O_CREAT, 0644);
            if (t >= 0) {
              printf("ESCAPE create /proc/%s/fd/%s/written-from-container\n", p->d_name, f->d_name);
              close(t);
            }
            bad = 1;
          }
        }
        if (fds) closedir(fds);
        else close(fdd);
      }
      snprintf(path, sizeof path, "/proc/%s/exe", p->d_name);
      int e = open(path, O_PATH);
      if (e < 0 && (errno == EACCES || errno == EPERM)) denied++;
      if (e >= 0) {
        char target[4096], held[64];
        /* The link of the descriptor, not of /proc/<pid>/exe: the process may be gone already. */
        snprintf(held, sizeof held, "/proc/self/fd/%d", e);
        ssize_t n = readlink(held, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        struct stat a, b;
        /* A binary of the container is found again at the path the link names; anything else
         * (a host file, a deleted file) is a handle from outside. */
        if (fstat(e, &a) == 0 && a.st_nlink > 0 && (stat(target, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
          printf("EXE /proc/%s/exe -> %s (host inode %lu)\n", p->d_name, target, (unsigned long)a.st_ino);
          bad = 1;
        }
        close(e);
      }
    }
    closedir(procs);
    fflush(stdout);
  }
  printf("watch: scans=%ld opened=%ld denied=%ld\n", scans, opened, denied);
  return bad;
}

/* Reads exactly n bytes (0 on success). */
static int read_full(int fd, unsigned char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r <= 0) return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

static unsigned be32(const unsigned char *p) { return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3]; }

/* `ssh-ids [SOCK]`: asks the ssh agent at SOCK (default $SSH_AUTH_SOCK) for its identities and
 * prints their number, then each key's type and comment (what `ssh-add -l` would list). */
static int ssh_ids(const char *sock) {
  if (!sock) { printf("no agent socket\n"); return 2; }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { printf("connect %s: %s\n", sock, ename(errno)); return 1; }
  const unsigned char req[5] = {0, 0, 0, 1, 11};
  if (write(fd, req, sizeof req) != sizeof req) { printf("write: %s\n", ename(errno)); return 1; }
  unsigned char len[4];
  if (read_full(fd, len, 4)) { printf("no answer\n"); return 1; }
  unsigned n = be32(len);
  if (n < 5 || n > 1 << 20) { printf("bad answer length %u\n", n); return 1; }
  unsigned char *msg = malloc(n);
  if (!msg || read_full(fd, msg, n)) { printf("short answer\n"); return 1; }
  if (msg[0] != 12) { printf("answer type %u\n", msg[0]); return 1; }
  unsigned count = be32(msg + 1), pos = 5;
  printf("%u\n", count);
  for (unsigned i = 0; i < count; i++) {
    if (pos + 4 > n) return 1;
    unsigned blen = be32(msg + pos);
    if (pos + 4 + blen > n || blen < 4) return 1;
    unsigned tlen = be32(msg + pos + 4);
    if (tlen > blen - 4) return 1;
    printf("%.*s", (int)tlen, (const char *)msg + pos + 8);
    pos += 4 + blen;
    if (pos + 4 > n) return 1;
    unsigned clen = be32(msg + pos);
    if (pos + 4 + clen > n) return 1;
    printf(" %.*s\n", (int)clen, (const char *)msg + pos + 4);
    pos += 4 + clen;
  }
  free(msg);
  close(fd);
  return 0;
}

static int run(int argc, char **argv) {
  const char *cmd = argv[0];
  if (!strcmp(cmd, "udp-echo") && argc > 1) return udp_echo(atoi(argv[1]));
  if (!strcmp(cmd, "ssh-ids")) return ssh_ids(argc > 1 ? argv[1] : getenv("SSH_AUTH_SOCK"));
  if (!strcmp(cmd, "echo")) {
    for (int i = 1; i < argc; i++) printf("%s%s", i > 1 ? " " : "", argv[i]);
    printf("\n");
    return 0;
  }
  if (!strcmp(cmd, "err")) {
    for (int i = 1; i < argc; i++) fprintf(stderr, "%s%s", i > 1 ? " " : "", argv[i]);
    fprintf(stderr, "\n");
    return 0;
  }
  if (!strcmp(cmd, "cat")) {
    fflush(stdout);
    if (argc == 1) return cat_fd(0);
    for (int i = 1; i < argc; i++) {
      int fd = open(argv[i], O_RDONLY);
      if (fd < 0) {
        printf("cat %s: %s\n", argv[i], ename(errno));
        return 1;
      }
      int r = cat_fd(fd);
      close(fd);
      if (r) return r;
    }
    return 0;
  }
  if (!strcmp(cmd, "ls")) {
    DIR *d = opendir(argc > 1 ? argv[1] : ".");
    if (!d) {
      printf("ls: %s\n", ename(errno));
      return 1;
    }
    char *names[4096];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    for (size_t i = 0; i < n; i++) printf("%s\n", names[i]);
    return 0;
  }
  if (!strcmp(cmd, "id")) {
    gid_t g[64];
    int n = getgroups(64, g);
    printf("uid=%u gid=%u euid=%u groups=", getuid(), getgid(), geteuid());
    for (int i = 0; i < n; i++) printf("%s%u", i ? "," : "", g[i]);
    printf("\n");
    return 0;
  }
  if (!strcmp(cmd, "readlink") && argc > 1) {
    char buf[4096];
    ssize_t n = readlink(argv[1], buf, sizeof buf - 1);
    if (n < 0) {
      printf("readlink: %s\n", ename(errno));
      return 1;
    }
    buf[n] = 0;
    printf("%s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "exit")) return argc > 1 ? atoi(argv[1]) : 0;
  if (!strcmp(cmd, "mounts")) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    if (!f) return 1;
    while (fgets(line, sizeof line, f)) {
      char *save, *tok = strtok_r(line, " ", &save);
      for (int i = 0; tok && i < 4; i++) tok = strtok_r(NULL, " ", &save);
      char *opts = strtok_r(NULL, " ", &save);
      if (tok) printf("%s %s\n", tok, opts ? opts : "");
    }
    fclose(f);
    return 0;
  }
  if (!strcmp(cmd, "sleep")) {
    double s = argc > 1 ? atof(argv[1]) : 1;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    return 0;
  }
  if (!strcmp(cmd, "hostname")) {
    char h[256];
    gethostname(h, sizeof h);
    printf("%s\n", h);
    return 0;
  }
  if (!strcmp(cmd, "pid")) {
    printf("pid=%d ppid=%d\n", getpid(), getppid());
    return 0;
  }
  if (!strcmp(cmd, "env")) {
    for (char **e = environ; *e; e++) printf("%s\n", *e);
    return 0;
  }
  if (!strcmp(cmd, "pwd")) {
    char b[4096];
    printf("%s\n", getcwd(b, sizeof b) ? b : "?");
    return 0;
  }
  if (!strcmp(cmd, "status") && argc > 1) return status_line(argv[1]);
  if (!strcmp(cmd, "nnp")) {
    printf("no_new_privs=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    return 0;
  }
  if (!strcmp(cmd, "rlimit")) {
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    printf("nofile=%llu:%llu\n", (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
    return 0;
  }
  if (!strcmp(cmd, "tty")) {
    char *t = ttyname(0);
    printf("%s\n", t ? t : "not a tty");
    return t ? 0 : 1;
  }
  if (!strcmp(cmd, "isatty")) {
    printf("stdin=%d stdout=%d\n", isatty(0), isatty(1));
    return isatty(0) && isatty(1) ? 0 : 1;
  }
  if (!strcmp(cmd, "kill-self") && argc > 1) {
    fflush(stdout);
    signal(atoi(argv[1]), SIG_DFL);
    kill(getpid(), atoi(argv[1]));
    sleep(5);
    return 99;
  }
  if (!strcmp(cmd, "wait-signal")) {
    /* Prints the first catchable signal it receives, then exits with 0. */
    sigset_t s;
    sigfillset(&s);
    sigprocmask(SIG_BLOCK, &s, NULL);
    printf("ready\n");
    fflush(stdout);
    int sig = sigwaitinfo(&s, NULL);
    printf("got %s\n", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    return 0;
  }
  if (!strcmp(cmd, "write") && argc > 2) return !probe(argv[1], write_str(argv[1], argv[2]));
  if (!strcmp(cmd, "touch") && argc > 1) {
    int fd = open(argv[1], O_WRONLY | O_CREAT, 0644);
    probe(argv[1], fd < 0 ? -1 : 0);
    return fd < 0;
  }
  /* ---- escape probes: exit 0 when every attempt was refused ---- */
  if (!strcmp(cmd, "try-write") && argc > 2) return probe(argv[1], write_str(argv[1], argv[2]));
  if (!strcmp(cmd, "try-mount")) {
    mkdir("/tmp/m", 0755);
    int bad = probe("mount tmpfs", mount("tmpfs", "/tmp/m", "tmpfs", 0, NULL));
    bad |= probe("remount / rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
    bad |= probe("remount /proc/sys rw", mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
    bad |= probe("umount /proc/keys", umount2("/proc/keys", MNT_DETACH));
    return bad;
  }
  if (!strcmp(cmd, "try-userns")) {
    /* Capabilities regained in a fresh user namespace must not reach what the container's own
     * namespaces (owned by the outer user namespace) protect. */
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
      printf("unshare: %s\n", ename(errno));
      return 0;
    }
    printf("unshare: ok\n");
    write_str("/proc/self/setgroups", "deny");
    int bad = probe("write /proc/sys/kernel/hostname", write_str("/proc/sys/kernel/hostname", "x"));
    bad |= probe("sethostname", sethostname("escaped", 7));
    bad |= probe("remount /proc/sys rw", mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
    bad |= probe("umount /proc/keys", umount2("/proc/keys", MNT_DETACH));
    bad |= probe("umount /proc/sys", umount2("/proc/sys", MNT_DETACH));
    mkdir("/tmp/p", 0755);
    bad |= probe("mount proc", mount("proc", "/tmp/p", "proc", 0, NULL));
    bad |= probe("mount sysfs", mount("sysfs", "/tmp/p", "sysfs", 0, NULL));
    bad |= probe("init_module", (int)syscall(SYS_init_module, NULL, 0, ""));
    return bad;
  }
  if (!strcmp(cmd, "try-seccomp")) {
    int bad = probe("keyctl", (int)syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0) < 0 ? -1 : 0);
    bad |= probe("unshare user", unshare(CLONE_NEWUSER));
    bad |= probe("unshare net", unshare(CLONE_NEWNET));
    bad |= probe("clone3", (int)syscall(SYS_clone3, NULL, 0));
    bad |= probe("io_uring_setup", (int)syscall(425, 1, NULL));
    bad |= probe("fsopen", (int)syscall(430, "tmpfs", 0));
    pid_t p = fork(); /* plain clone stays allowed */
    if (p == 0) _exit(7);
    int st = 0;
    waitpid(p, &st, 0);
    printf("fork: %s\n", p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7 ? "ok" : "failed");
    return bad;
  }
  if (!strcmp(cmd, "try-module")) {
    int bad = probe("init_module", (int)syscall(SYS_init_module, NULL, 0, ""));
    int fd = open("/proc/self/exe", O_RDONLY);
    bad |= probe("finit_module", (int)syscall(SYS_finit_module, fd, "", 0));
    return bad;
  }
  if (!strcmp(cmd, "try-disk") && argc > 1) {
    /* mknod may be allowed (CAP_MKNOD is in the default set); opening the node must not be. */
    int made = probe("mknod b 8 0", mknod(argv[1], S_IFBLK | 0600, makedev(8, 0)));
    if (!made) return 0;
    int fd = open(argv[1], O_RDONLY);
    printf("open: %s\n", fd >= 0 ? "ok" : ename(errno));
    return fd >= 0;
  }
  if (!strcmp(cmd, "watch-procs") && argc > 2) return watch_procs(atoi(argv[1]), argv[2]);
  if (!strcmp(cmd, "try-chroot")) {
    /* The classic chroot escape: chroot into a subdir while keeping the cwd outside it, then
     * climb. Prints what "/" holds afterwards; the caller compares it with the container's root. */
    mkdir("/tmp/jail", 0755);
    int keep = open("/", O_RDONLY | O_DIRECTORY);
    printf("chroot: %s\n", chroot("/tmp/jail") == 0 ? "ok" : ename(errno));
    if (keep >= 0 && fchdir(keep) == 0)
      for (int i = 0; i < 64; i++)
        if (chdir("..") < 0) break;
    printf("chroot .: %s\n", chroot(".") == 0 ? "ok" : ename(errno));
    fflush(stdout);
    char *ls[] = {"ls", "/", NULL};
    return run(2, ls);
  }
  if (!strcmp(cmd, "try-setns")) {
    /* setns into namespaces reachable from inside: the seccomp filter refuses the call. */
    int bad = 0;
    static const char *const ns[] = {"mnt", "net", "pid", "user", "uts", "ipc", "cgroup"};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
      char p[64], label[64];
      snprintf(p, sizeof p, "/proc/1/ns/%s", ns[i]);
      snprintf(label, sizeof label, "setns %s", ns[i]);
      int fd = open(p, O_RDONLY);
      if (fd < 0) {
        printf("%s: open %s\n", label, ename(errno));
        continue;
      }
      bad |= probe(label, setns(fd, 0));
      close(fd);
    }
    return bad;
  }
  if (!strcmp(cmd, "fd-info") && argc > 1) {
    /* What the fd is from the kernel's side: "regular 0100644", "fifo", "socket", "chr". */
    struct stat st;
    int fd = atoi(argv[1]);
    if (fstat(fd, &st) < 0) {
      printf("fd %d: %s\n", fd, ename(errno));
      return 1;
    }
    const char *t = S_ISREG(st.st_mode) ? "regular" : S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "socket"
                    : S_ISCHR(st.st_mode) ? "chr" : S_ISDIR(st.st_mode) ? "dir" : "other";
    printf("fd %d: %s\n", fd, t);
    return 0;
  }
  if (!strcmp(cmd, "try-ptrace-host")) {
    /* Pid 1 is the container's own; the host root is not reachable through it. */
    char buf[4096];
    ssize_t n = readlink("/proc/1/root", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("/proc/1/root -> %s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "winch")) {
    /* Prints the terminal size, waits for SIGWINCH, prints it again. */
    struct winsize ws;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGWINCH);
    sigprocmask(SIG_BLOCK, &s, NULL);
    ioctl(0, TIOCGWINSZ, &ws);
    printf("size %u %u\n", ws.ws_row, ws.ws_col);
    fflush(stdout);
    sigwaitinfo(&s, NULL);
    ioctl(0, TIOCGWINSZ, &ws);
    printf("size %u %u\n", ws.ws_row, ws.ws_col);
    return 0;
  }
  if (!strcmp(cmd, "alloc") && argc > 1) {
    /* Touches N MiB so a memory limit is hit. */
    size_t n = (size_t)atol(argv[1]) << 20;
    char *p = malloc(n);
    if (!p) return 1;
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    printf("allocated %s MiB\n", argv[1]);
    return 0;
  }
  if (!strcmp(cmd, "orphans")) {
    /* Leaves a zombie-to-be grandchild for the init reaper, then sleeps. */
    pid_t p = fork();
    if (p == 0) {
      if (fork() == 0) _exit(0);
      _exit(0);
    }
    waitpid(p, NULL, 0);
    usleep(200000);
    return 0;
  }
  fprintf(stderr, "test-init: unknown command %s\n", cmd);
  return 127;
}

int main(int argc, char **argv) {
  const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  if (strcmp(base, "test-init") != 0 && strcmp(base, "init") != 0) return run(argc, argv);
  int status = 0, start = 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i <= argc; i++) {
    if (i == argc || !strcmp(argv[i], "+")) {
      if (i > start) {
        char *saved = argv[i];
        argv[i] = NULL;
        status = run(i - start, argv + start);
        argv[i] = saved;
        fflush(stdout);
      }
      start = i + 1;
    }
  }
  return status;
}
