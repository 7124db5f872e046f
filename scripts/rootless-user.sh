#!/usr/bin/env bash
# The unprivileged users the rootless tests run imgbuild as: `imgbuild-ci`, with a subordinate uid
# and gid range in /etc/subuid and /etc/subgid (as podman's rootless mode wants), and
# `imgbuild-ci-nosub`, without one (imgbuild falls back to mapping the user alone).
#   rootless-user.sh ensure   creates what is missing (safe to run again, and concurrently)
#   rootless-user.sh remove   removes the user and its ranges, if there
# A run killed half-way leaves either state, and the next `ensure` or `remove` finishes the job.
set -euo pipefail
USER_NAME=${IMGBUILD_TEST_USER:-imgbuild-ci}
PLAIN_NAME=$USER_NAME-nosub
# 65536 ids far above the usual 100000-based ranges, so the user never shares one with a real user.
RANGE_START=${IMGBUILD_TEST_SUBID_START:-3000000000}
RANGE_SIZE=65536
if [ "$(id -u)" != 0 ]; then echo "rootless-user.sh: must run as root" >&2; exit 1; fi
exec 9>/run/imgbuild-rootless-user.lock
flock 9
has_range() { grep -q "^$USER_NAME:" "$1" 2>/dev/null; }
case ${1:-} in
  ensure)
    for u in "$USER_NAME" "$PLAIN_NAME"; do
      if ! id -u "$u" >/dev/null 2>&1; then
        useradd --system --user-group --create-home --home-dir "/var/lib/$u" --shell /usr/sbin/nologin "$u"
      fi
    done
    touch /etc/subuid /etc/subgid
    has_range /etc/subuid || usermod --add-subuids "$RANGE_START-$((RANGE_START + RANGE_SIZE - 1))" "$USER_NAME"
    has_range /etc/subgid || usermod --add-subgids "$RANGE_START-$((RANGE_START + RANGE_SIZE - 1))" "$USER_NAME"
    ;;
  remove)
    for u in "$USER_NAME" "$PLAIN_NAME"; do
      if id -u "$u" >/dev/null 2>&1; then
        # userdel refuses while the user has processes: those are a test's leftovers, reported here.
        if pgrep -u "$u" >/dev/null; then echo "rootless-user.sh: $u still has processes: $(pgrep -u "$u" | tr '\n' ' ')" >&2; exit 1; fi
        userdel --remove "$u" 2>/dev/null || userdel "$u"
      fi
    done
    for f in /etc/subuid /etc/subgid; do
      if has_range "$f"; then sed -i "/^$USER_NAME:/d" "$f"; fi
    done
    ;;
  *) echo "usage: rootless-user.sh ensure|remove" >&2; exit 2 ;;
esac
