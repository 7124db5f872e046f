/* See idmap.h. */
#define _GNU_SOURCE
#include "idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

static int write_map(pid_t pid, const char *file, const char *map) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = strlen(map);
  ssize_t r = write(fd, map, n);
  int e = errno;
  close(fd);
  if (r != (ssize_t)n) {
    errno = r < 0 ? e : EIO;
    return -1;
  }
  return 0;
}

int idmap_userns_fd(const char *uidmap, const char *gidmap, const char **what) {
  /* A child unshares its user namespace and waits (it never runs anything else); the parent
   * writes the maps, keeps a reference to the namespace and kills it. */
  int ready[2], hold[2];
  *what = "pipe2: idmap namespace";
  if (pipe2(ready, O_CLOEXEC) < 0) return -1;
  if (pipe2(hold, O_CLOEXEC) < 0) {
    close(ready[0]);
    close(ready[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    char b = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'e';
    if (write(ready[1], &b, 1) != 1) _exit(1);
    (void)!read(hold[0], &b, 1);
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  int fd = -1, err = 0;
  if (pid < 0) {
    *what = "fork: idmap namespace";
    err = errno;
  } else {
    char b = 0;
    ssize_t r;
    do r = read(ready[0], &b, 1);
    while (r < 0 && errno == EINTR);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
    if (r != 1 || b != 'u') {
      *what = "unshare: CLONE_NEWUSER for idmapped mounts";
      err = r == 1 ? EPERM : EIO;
    } else if (write_map(pid, "uid_map", uidmap) < 0) {
      *what = "write: uid_map of the idmap namespace";
      err = errno;
    } else if (write_map(pid, "gid_map", gidmap) < 0) {
      *what = "write: gid_map of the idmap namespace";
      err = errno;
    } else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
      *what = "open: idmap namespace";
      err = errno;
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  close(ready[0]);
  close(hold[1]);
  if (fd < 0) errno = err;
  return fd;
}

int idmap_tree(const char *path, int userns_fd, const char **what) {
  int t = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (t < 0) {
    *what = "open_tree";
    return -1;
  }
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned long long)userns_fd};
  if (syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
    int e = errno;
    close(t);
    errno = e;
    *what = "mount_setattr: MOUNT_ATTR_IDMAP (the store's filesystem or this kernel cannot idmap mounts)";
    return -1;
  }
  return t;
}

char *idmap_overlay_data(const char *data, int userns_fd, int *fds, size_t max, size_t *nfds, const char **what) {
  *nfds = 0;
  size_t cap = strlen(data) + 64 * max + 1, n = 0;
  char *out = malloc(cap);
  char *copy = strdup(data);
  if (!out || !copy) {
    free(out);
    free(copy);
    *what = "malloc";
    errno = ENOMEM;
    return NULL;
  }
  out[0] = 0;
  char *save = NULL;
  for (char *opt = strtok_r(copy, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
    n += (size_t)snprintf(out + n, cap - n, "%s", n ? "," : "");
    if (strncmp(opt, "lowerdir=", 9) != 0) {
      n += (size_t)snprintf(out + n, cap - n, "%s", opt);
      continue;
    }
    n += (size_t)snprintf(out + n, cap - n, "lowerdir=");
    char *save2 = NULL;
    bool first = true;
    for (char *dir = strtok_r(opt + 9, ":", &save2); dir; dir = strtok_r(NULL, ":", &save2)) {
      if (*nfds == max) {
        *what = "idmap: too many lower layers";
        errno = E2BIG;
        goto fail;
      }
      int t = idmap_tree(dir, userns_fd, what);
      if (t < 0) goto fail;
      fds[(*nfds)++] = t;
      n += (size_t)snprintf(out + n, cap - n, "%s/proc/self/fd/%d", first ? "" : ":", t);
      first = false;
    }
  }
  free(copy);
  return out;
fail: {
  int e = errno;
  for (size_t i = 0; i < *nfds; i++) close(fds[i]);
  *nfds = 0;
  free(copy);
  free(out);
  errno = e;
  return NULL;
}
}
