#!/usr/bin/env bash
# The unprivileged user the rootless tests run imgbuild as: `imgbuild-ci`, with a subordinate uid
# and gid range in /etc/subuid and /etc/subgid (as podman's rootless mode wants).
#   rootless-user.sh ensure   creates what is missing (safe to run again, and concurrently)
#   rootless-user.sh remove   removes the user and its ranges, if there
# A run killed half-way leaves either state, and the next `ensure` or `remove` finishes the job.
set -euo pipefail
USER_NAME=${IMGBUILD_TEST_USER:-imgbuild-ci}
# 65536 ids far above the usual 100000-based ranges, so the user never shares one with a real user.
RANGE_START=${IMGBUILD_TEST_SUBID_START:-3000000000}
RANGE_SIZE=65536
if [ "$(id -u)" != 0 ]; then echo "rootless-user.sh: must run as root" >&2; exit 1; fi
exec 9>/run/imgbuild-rootless-user.lock
flock 9
has_range() { grep -q "^$USER_NAME:" "$1" 2>/dev/null; }
case ${1:-} in
  ensure)
    if ! id -u "$USER_NAME" >/dev/null 2>&1; then
      useradd --system --user-group --create-home --home-dir "/var/lib/$USER_NAME" --shell /usr/sbin/nologin "$USER_NAME"
    fi
    touch /etc/subuid /etc/subgid
    has_range /etc/subuid || usermod --add-subuids "$RANGE_START-$((RANGE_START + RANGE_SIZE - 1))" "$USER_NAME"
    has_range /etc/subgid || usermod --add-subgids "$RANGE_START-$((RANGE_START + RANGE_SIZE - 1))" "$USER_NAME"
    ;;
  remove)
    if id -u "$USER_NAME" >/dev/null 2>&1; then
      # userdel refuses while the user has processes: those are a test's leftovers, reported here.
      if pgrep -u "$USER_NAME" >/dev/null; then echo "rootless-user.sh: $USER_NAME still has processes: $(pgrep -u "$USER_NAME" | tr '\n' ' ')" >&2; exit 1; fi
      userdel --remove "$USER_NAME" 2>/dev/null || userdel "$USER_NAME"
    fi
    for f in /etc/subuid /etc/subgid; do
      if has_range "$f"; then sed -i "/^$USER_NAME:/d" "$f"; fi
    done
    ;;
  *) echo "usage: rootless-user.sh ensure|remove" >&2; exit 2 ;;
esac
