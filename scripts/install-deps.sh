#!/usr/bin/env bash
# Installs what the test suite drives:
#   - Debian packages: fusermount3 (fuse3), rsync, python3, jq (a per-file JSON reader of segments),
#     e2fsprogs for the loop-mounted ENOSPC image,
#     fio for the bench's physical-limit column, and promtool (prometheus) to check every metrics exposition;
#   - versitygw, the S3 gateway over a directory that the tiered-storage tests run as their object store,
#     built from the Go module proxy into $(go env GOPATH)/bin.
set -euo pipefail
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v rsync >/dev/null || need+=(rsync)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v fio >/dev/null || need+=(fio)
command -v python3 >/dev/null || need+=(python3)
command -v jq >/dev/null || need+=(jq)
command -v promtool >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "install-deps: need root to apt-get install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The tests look for versitygw on PATH, then in GOPATH/bin. The version is pinned: its CLI and its S3
# answers are what the tests were written against.
VERSITYGW_VERSION=v1.8.0
gobin="$(go env GOPATH)/bin"
if ! { command -v versitygw || [[ -x $gobin/versitygw ]]; } >/dev/null 2>&1; then
  echo "install-deps: building versitygw $VERSITYGW_VERSION (about two minutes)" >&2
  go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi
[[ -e /dev/fuse ]] || echo "install-deps: WARNING: /dev/fuse is absent; FUSE tests will skip" >&2
