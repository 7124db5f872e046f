#!/bin/sh
# Imports a minimal busybox image as busybox:latest into the imgbuild store, built locally from
# Debian's busybox-static (no registry needed). The store is IMGBUILD_ROOT or --root DIR.
#   scripts/base-image.sh [--root DIR] [NAME]      (NAME defaults to busybox:latest)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
main="$repo/dist/cli/bin.cjs"
exe="$repo/bin/imgbuild"
root_args=
name=busybox:latest
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root_args="--root ${2:?--root needs a directory}"; shift 2 ;;
    --root=*) root_args="--root ${1#--root=}"; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) name=$1; shift ;;
  esac
done
if ! [ -f "$main" ]; then
  echo "base-image: $main missing; run 'npm run build' first" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-base.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
sh "$here/busybox-rootfs.sh" "$tmp/rootfs"
# shellcheck disable=SC2086 # root_args is intentionally split into flag and value
"$exe" $root_args import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["sh"]' \
  --message 'busybox rootfs from busybox-static' \
  "$tmp/rootfs" "$name"
