#!/bin/bash
# Usage: bench/final-run.sh OUTDIR
# Every measurement BENCHMARKS.md reports, one after the other from one binary, so the file comes
# from one run of one tree. Run it on a quiet machine as root (fio, drop_caches, FUSE); it took
# 30 minutes on a 2-vCPU VM. Each step's command is logged with its start time to OUTDIR/steps.log.
# SKIP="tiered cost" leaves steps out (names: default seed tiered limits cost scrape).
set -euo pipefail
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
make build >/dev/null
B=$PWD/bin/segfs
VGW=${VERSITYGW:-$(command -v versitygw || echo "$HOME/go/bin/versitygw")}
skip() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
step() {
  printf '%s  %s\n' "$(date -u +%FT%TZ)" "$*" | tee -a "$OUT/steps.log"
  "$@"
}
quiet() { sync; sleep 3; }

{ git rev-parse --short HEAD; git status --porcelain; uptime; } > "$OUT/tree.txt"

if ! skip default; then
  quiet
  step "$B" bench --progress=never --json "$OUT/default-run.json" --plot "$OUT/default-run.svg" > "$OUT/default-run.txt"
fi

if ! skip seed; then
  quiet
  step "$B" bench --seed-compare --duration 30s --progress=never \
    --json "$OUT/seed-compare.json" --plot "$OUT/seed-compare.svg" > "$OUT/seed-compare.txt"
fi

if ! skip tiered; then
  # The store on tmpfs, so that its own disk writes do not count against the producers.
  port=17072; store=/dev/shm/segfs-final-vgw
  rm -rf "$store"; mkdir -p "$store/bench"
  ROOT_ACCESS_KEY=benchkey ROOT_SECRET_KEY=benchsecret123 "$VGW" --quiet --port 127.0.0.1:$port posix "$store" \
    > "$OUT/versitygw.log" 2>&1 &
  vgw=$!
  trap 'kill $vgw 2>/dev/null || true; rm -rf "$store"' EXIT
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port" && break; sleep 0.1; done
  export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret123 AWS_REGION=us-east-1
  for i in 1 2; do for rr in 0 32MiB; do
    quiet
    step "$B" bench --modes dsync-deferred,tiered --rate 40MiB --duration 10s --warmup 1s --segment-size 16MiB \
      --producers 2 --consumers 2 --tier s3://bench/f$i-$rr --tier-read-rate $rr --progress=never \
      --tier-options tier_endpoint=http://127.0.0.1:$port,local_retention_bytes=32MiB,tier_cache=64MiB \
      --json "$OUT/tiered-$i-$rr.json" > "$OUT/tiered-$i-$rr.txt"
  done; done
  kill $vgw; wait $vgw 2>/dev/null || true
  rm -rf "$store"; trap - EXIT
fi

if ! skip limits; then
  quiet
  step "$B" bench-limits --progress=never --json "$OUT/limits-run.json" > "$OUT/limits-run.txt"
fi

if ! skip cost; then
  quiet
  step env OUT="$OUT/cost-4k" ARMS="off rec on@1 on@0.1 curl@1" SEGFS="$B" \
    bench/cost/metrics-pairs.sh 8 15s -- --rate 8000000 --message-size 1000 --batch 4 > "$OUT/cost-4k.log"
  step env OUT="$OUT/cost-1m" ARMS="off rec on@1 on@0.1" SEGFS="$B" \
    bench/cost/metrics-pairs.sh 3 15s -- --rate 250000000 > "$OUT/cost-1m.log"
  python3 bench/cost/summary.py "$OUT/cost-4k" > "$OUT/cost-4k.summary"
  python3 bench/cost/summary.py "$OUT/cost-1m" > "$OUT/cost-1m.summary"
fi

if ! skip scrape; then
  step env SEGFS="$B" bench/cost/scrape-cpu.sh 4 1000 > "$OUT/scrape-4.txt"
  step env SEGFS="$B" bench/cost/scrape-cpu.sh 1000 200 > "$OUT/scrape-1000.txt"
fi

uptime >> "$OUT/tree.txt"
echo "done: $OUT" | tee -a "$OUT/steps.log"
