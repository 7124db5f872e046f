#!/usr/bin/env bash
# Installs what imgbuild and its tests need on a fresh Debian 12 machine (as root), then builds
# with `npm ci` (TypeScript to dist/, the native sandbox helper with the system C compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(build-essential busybox-static skopeo umoci docker-registry buildah podman runc oci-image-tool time
  zstd pigz iproute2 iptables uidmap apache2-utils jq attr hyperfine util-linux git openssh-client xz-utils bzip2 dropbear-bin debootstrap slirp4netns passt
  fuse-overlayfs libcap2-bin chromium)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: missing Debian packages (${missing[*]}); run as root" >&2; exit 1; fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Rootless networks (slirp4netns, pasta) open /dev/net/tun as the user: 0666 as udev makes it on a
# standard Debian system, where a bare VM may have left it 0600.
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then chmod 0666 /dev/net/tun; fi
# /dev/fuse is 0666 wherever udev runs (systemd's 50-udev-default.rules); a machine without udev
# leaves it 0600 and fuse-overlayfs unusable to an unprivileged user.
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then chmod 0666 /dev/fuse; fi
# The unprivileged user the rootless tests run imgbuild as (idempotent; .ci/run removes it again).
if [ "$(id -u)" = 0 ]; then bash scripts/rootless-user.sh ensure; fi
if [ ! -x node_modules/.bin/tsc ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ "${IMGBUILD_FORCE_NPM_CI:-}" = 1 ]; then
  npm ci --no-audit --no-fund
else
  npm run -s build
fi
