/*
 * Idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP, Linux >= 5.12; overlayfs takes idmapped lower
 * layers since 5.19) for a container in a user namespace of its own (--userns=auto): the image's
 * layers are shown through the container's mapping, so root's files are the container root's,
 * without a chowned copy of the image. Functions return -1 with errno set on failure; `what`
 * then names the step that failed, for the caller's error record.
 */
#ifndef IMGBUILD_IDMAP_H
#define IMGBUILD_IDMAP_H

#include <stddef.h>

/* A user namespace with these uid_map/gid_map contents, as an fd (the namespace outlives its
 * short-lived only member through the fd). */
int idmap_userns_fd(const char *uidmap, const char *gidmap, const char **what);

/* A detached copy of the tree at `path` (relative to the cwd), idmapped through `userns_fd`. */
int idmap_tree(const char *path, int userns_fd, const char **what);

/* Overlay mount data with each lowerdir replaced by an idmapped detached tree, named
 * /proc/self/fd/N. The fds are stored in `fds` (at most `max`; *nfds set) and must stay open
 * until the overlay is mounted. Returns a malloc'd string, or NULL. */
char *idmap_overlay_data(const char *data, int userns_fd, int *fds, size_t max, size_t *nfds, const char **what);

#endif
