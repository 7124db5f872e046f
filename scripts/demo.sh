#!/usr/bin/env bash
# The main job on a fresh machine (as root): install and build, make the busybox base image from
# Debian's busybox-static, build the sample image in fixtures/demo, and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
imgbuild() { bin/imgbuild "$@"; }
imgbuild inspect busybox:latest >/dev/null 2>&1 || bash scripts/base-image.sh
imgbuild build --progress=plain -t demo fixtures/demo
imgbuild run --rm demo
