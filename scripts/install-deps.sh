#!/usr/bin/env bash
# Installs the Debian packages the test suite drives: fusermount3 (fuse3), rsync, python3, e2fsprogs
# for the loop-mounted ENOSPC image, and fio for the bench's physical-limit column.
set -euo pipefail
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v rsync >/dev/null || need+=(rsync)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v fio >/dev/null || need+=(fio)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "install-deps: need root to apt-get install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
[[ -e /dev/fuse ]] || echo "install-deps: WARNING: /dev/fuse is absent; FUSE tests will skip" >&2
